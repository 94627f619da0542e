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

from a124_core.cameras import make_cameras
from a124_core.multiview_cameras import mvdream_camera_matrices
from a124_core.priors.zero123 import pose_embedding
from a124_core.training import coarse_stage
from a124_core.training.terms import controlnet, multiview_sds, zero123_sds
from a124_core.training.time_sampling import sample_clip_times

from . import multiview_setup, setup


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


def views_shuffled(cameras):
    """Each view of a group given its neighbour's camera matrix."""
    matrices = mvdream_camera_matrices(cameras)
    return matrices.reshape(-1, 4, 4, 4).roll(1, dims=1).reshape(-1, 4, 4)


def matrices_transposed(cameras):
    return mvdream_camera_matrices(cameras).transpose(-1, -2)


def azimuth_flipped(cameras):
    mirrored = make_cameras(cameras.polar_deg, -cameras.azimuth_deg, cameras.radius, cameras.fov_y_deg)
    return mvdream_camera_matrices(mirrored)


def reversed_times(config, generator=None):
    times, starts = sample_clip_times(config, generator)
    return times.flip(0), starts


def always_first_frame(config, generator=None):
    times, _ = sample_clip_times(config, generator)
    return times, True


_control_images = controlnet.ControlNetTarget.control_images


def swapped_control_view(self, view):
    return _control_images(self, view.select(list(range(len(view.cameras)))[::-1]))


MUTATIONS: dict[str, tuple[str, Callable[[], contextlib.AbstractContextManager]]] = {
    "zero123-azimuth-sign": ("static", lambda: patched(zero123_sds, "pose_embedding", flipped_azimuth)),
    "zero123-polar-sign": ("static", lambda: patched(zero123_sds, "pose_embedding", flipped_polar)),
    "mvdream-views-shuffled": ("text", lambda: patched(multiview_sds, "mvdream_camera_matrices", views_shuffled)),
    "mvdream-matrix-transposed": (
        "text",
        lambda: patched(multiview_sds, "mvdream_camera_matrices", matrices_transposed),
    ),
    "mvdream-azimuth-flipped": ("text", lambda: patched(multiview_sds, "mvdream_camera_matrices", azimuth_flipped)),
    "video-times-reversed": ("coarse", lambda: patched(coarse_stage, "sample_clip_times", reversed_times)),
    "first-frame-on-every-clip": ("coarse", lambda: patched(coarse_stage, "sample_clip_times", always_first_frame)),
    "controlnet-condition-other-view": (
        "refine",
        lambda: patched(controlnet.ControlNetTarget, "control_images", swapped_control_view),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"mutations to run (default all): {', '.join(MUTATIONS)}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.names or list(MUTATIONS)
    stages = {MUTATIONS[n][0] for n in names}
    if "text" in stages:
        print(f"text, unmutated: {multiview_setup.text_run()}")
        print(f"text, 2D prior alone: {multiview_setup.text_run(multiview=False)}")
    static = setup.static_run() if stages - {"text"} else None
    if static is not None:
        print(f"static, unmutated: {static}")
    if "static" in stages:
        print(f"static, reconstruction only: {setup.static_run(pose=False)}")
    coarse = setup.coarse_run(static.scene) if stages & {"coarse", "refine"} else None
    if coarse is not None:
        print(f"coarse, unmutated: {coarse}")
    if "refine" in stages:
        print(f"refine, unmutated: {setup.refine_run(coarse.scene)}")
    for name in names:
        stage, patch = MUTATIONS[name]
        with patch():
            if stage == "text":
                result = multiview_setup.text_run()
            elif stage == "static":
                result = setup.static_run()
            elif stage == "coarse":
                result = setup.coarse_run(static.scene)
            else:
                result = setup.refine_run(coarse.scene)
        print(f"{stage}, mutation {name}: {result}")


if __name__ == "__main__":
    main()
