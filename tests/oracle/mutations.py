"""Break the method's wiring on purpose and show the oracle runs notice: `python -m tests.oracle.mutations [name ...]`.

Each mutation patches one place of the stage code (where a real bug would sit), reruns the oracle measurement it
should break and prints the PSNR next to the unmutated one. Minutes on a CPU; not part of the test suite (the
tests assert the unmutated thresholds; this shows they separate right from wrong).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator

import torch

from a124_core.priors.zero123 import pose_embedding
from a124_core.training import coarse_stage
from a124_core.training.terms import clip_zero123_sds, controlnet, zero123_sds
from a124_core.training.time_sampling import sample_clip_times

from . import clip_run, setup


@contextlib.contextmanager
def patched(module: object, name: str, value: object) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def flipped_azimuth(polar, azimuth, *args, **kwargs):
    return pose_embedding(polar, -azimuth, *args, **kwargs)


def flipped_polar(polar, azimuth, *args, reference_polar: float = 90.0, **kwargs):
    return pose_embedding(2 * reference_polar - polar, azimuth, *args, reference_polar=reference_polar, **kwargs)


def reversed_times(config, generator=None):
    times, starts = sample_clip_times(config, generator)
    return times.flip(0), starts


def always_first_frame(config, generator=None):
    times, _ = sample_clip_times(config, generator)
    return times, True


_control_images = controlnet.ControlNetTarget.control_images


def swapped_control_view(self, view):
    return _control_images(self, view.select(list(range(len(view.cameras)))[::-1]))


def first_frame_only(frame_times, times):
    return torch.zeros(times.shape[0], dtype=torch.long, device=frame_times.device)


def clip_input(name: str) -> contextlib.AbstractContextManager:
    """The video-to-4D run's clip changed by `clip_run.CLIP_MUTATIONS[name]` before the stage sees it."""
    return patched(clip_run, "prepare_clip", clip_run.CLIP_MUTATIONS[name])


MUTATIONS: dict[str, tuple[str, Callable[[], contextlib.AbstractContextManager]]] = {
    "zero123-azimuth-sign": ("static", lambda: patched(zero123_sds, "pose_embedding", flipped_azimuth)),
    "zero123-polar-sign": ("static", lambda: patched(zero123_sds, "pose_embedding", flipped_polar)),
    "video-times-reversed": ("coarse", lambda: patched(coarse_stage, "sample_clip_times", reversed_times)),
    "first-frame-on-every-clip": ("coarse", lambda: patched(coarse_stage, "sample_clip_times", always_first_frame)),
    "controlnet-condition-other-view": (
        "refine",
        lambda: patched(controlnet.ControlNetTarget, "control_images", swapped_control_view),
    ),
    "zero123-condition-frame-0": ("video", lambda: patched(clip_zero123_sds, "nearest_frames", first_frame_only)),
    **{name: ("video", lambda name=name: clip_input(name)) for name in clip_run.CLIP_MUTATIONS},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"mutations to run (default all): {', '.join(MUTATIONS)}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.names or list(MUTATIONS)
    stages = {MUTATIONS[n][0] for n in names}
    static = setup.static_run()
    print(f"static, unmutated: {static}")
    if "static" in stages:
        print(f"static, reconstruction only: {setup.static_run(pose=False)}")
    coarse = setup.coarse_run(static.scene) if stages & {"coarse", "refine"} else None
    if coarse is not None:
        print(f"coarse, unmutated: {coarse}")
    if "refine" in stages:
        print(f"refine, unmutated: {setup.refine_run(coarse.scene)}")
    if "video" in stages:
        print(f"video, unmutated: {clip_run.video_run(static.scene)}")
    runs = {
        "static": setup.static_run,
        "coarse": lambda: setup.coarse_run(static.scene),
        "refine": lambda: setup.refine_run(coarse.scene),
        "video": lambda: clip_run.video_run(static.scene),
    }
    for name in names:
        stage, patch = MUTATIONS[name]
        with patch():
            result = runs[stage]()
        print(f"{stage}, mutation {name}: {result}")


if __name__ == "__main__":
    main()
