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
from a124_core.fields.deformation import DeformationField, active_levels
from a124_core.geometry import arap as arap_geometry
from a124_core.multiview_cameras import mvdream_camera_matrices
from a124_core.priors.zero123 import pose_embedding
from a124_core.training import coarse_stage
from a124_core.training.representations import Deformation, static_clips
from a124_core.training.terms import arap as arap_term
from a124_core.training.terms import clip_zero123_sds, controlnet, multiview_sds, zero123_sds
from a124_core.training.time_sampling import sample_clip_times

from . import clip_run, mesh_animation, multiview_setup, scenes, setup
from . import test_oracle_deformation as deformation


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


_draw_clip = static_clips.StaticCameraClips.draw


def reversed_clip(self, stage):
    view, starts = _draw_clip(self, stage)
    view.times = view.times.flip(0)
    return view, starts


def no_tv_weight(self, progress):
    return 0.0


def levels_reset(self, step):  # the code before issue 24: the count follows the step, also down
    self.levels.fill_(active_levels(step, self.deformation_config))


def canonical_frozen(self, field):  # the code before issue 24: refine trained the deformation only
    return None


def absolute_energy(neighbourhood, deformed, *args, **kwargs):
    """The energy before issue 24: the weighted mean of squared residuals in scene units (not divided by the rest
    lengths), on the same one-rings and rotations."""
    n = neighbourhood
    points = deformed[:, n.representative]
    edges = points[:, n.source] - points[:, n.target]
    rotations = arap_geometry.best_rotations(n.rest_edges, edges.detach(), n.weights, n.source, n.num_vertices)
    residual = edges - (rotations[:, n.source] @ n.rest_edges[..., None]).squeeze(-1)
    return (n.weights * residual.square().sum(-1)).sum() / (deformed.shape[0] * n.weights.sum())


def first_frame_only(frame_times, times):
    return torch.zeros(times.shape[0], dtype=torch.long, device=frame_times.device)


def clip_input(name: str) -> contextlib.AbstractContextManager:
    """The video-to-4D run's clip changed by `clip_run.CLIP_MUTATIONS[name]` before the stage sees it."""
    return patched(clip_run, "prepare_clip", clip_run.CLIP_MUTATIONS[name])


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
    "deformation-times-reversed": (
        "deformation",
        lambda: patched(static_clips.StaticCameraClips, "draw", reversed_clip),
    ),
    "deformation-tv-off": (
        "deformation",
        lambda: patched(deformation_terms(), "tv_weight", no_tv_weight),
    ),
    "deformation-refine-canonical-frozen": (
        "deformation-refine",
        lambda: patched(Deformation, "continue_in_refine", canonical_frozen),
    ),
    "deformation-refine-levels-reset": (
        "deformation-refine",
        lambda: patched(DeformationField, "set_progress", levels_reset),
    ),
    "mesh-arap-off": ("mesh", lambda: patched(arap_term.ARAP, "losses", lambda self, ctx: {})),
    "mesh-arap-length-squared": ("mesh", lambda: patched(arap_term, "arap_energy", absolute_energy)),
    "zero123-condition-frame-0": ("video", lambda: patched(clip_zero123_sds, "nearest_frames", first_frame_only)),
    **{name: ("video", lambda name=name: clip_input(name)) for name in clip_run.CLIP_MUTATIONS},
}


def deformation_terms():
    from a124_core.training.terms.video_x0 import DreamIn4DVideo

    return DreamIn4DVideo


def deformation_run(static, refine: bool = False):
    coarse = setup.coarse_run(
        static.scene, deformation.STEPS, video_size=deformation.VIDEO_SIZE, representation=deformation.REPRESENTATION
    )
    if not refine:
        return coarse
    result = setup.refine_run(
        coarse.scene, deformation.REFINE_STEPS, truth=scenes.refined, representation=deformation.REPRESENTATION
    )
    return f"{result}; levels {min(result.levels)}..{max(result.levels)}"


def mesh_runs() -> str:
    return "; ".join(f"{n} subdivisions: {mesh_animation.mesh_run(subdivisions=n)}" for n in (0, mesh_animation.DENSE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"mutations to run (default all): {', '.join(MUTATIONS)}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.names or list(MUTATIONS)
    stages = {MUTATIONS[n][0] for n in names}
    if "text" in stages:
        print(f"text, unmutated: {multiview_setup.text_run()}", flush=True)
        print(f"text, 2D prior alone: {multiview_setup.text_run(multiview=False)}", flush=True)
    static = setup.static_run() if stages - {"mesh", "text"} else None
    if static is not None:
        print(f"static, unmutated: {static}", flush=True)
    if "static" in stages:
        print(f"static, reconstruction only: {setup.static_run(pose=False)}", flush=True)
    coarse = setup.coarse_run(static.scene) if stages & {"coarse", "refine"} else None
    if coarse is not None:
        print(f"coarse, unmutated: {coarse}", flush=True)
    if "refine" in stages:
        print(f"refine, unmutated: {setup.refine_run(coarse.scene)}", flush=True)
    runs = {
        "static": lambda: setup.static_run(),
        "coarse": lambda: setup.coarse_run(static.scene),
        "refine": lambda: setup.refine_run(coarse.scene),
        "video": lambda: clip_run.video_run(static.scene),
        "deformation": lambda: deformation_run(static),
        "deformation-refine": lambda: deformation_run(static, refine=True),
        "mesh": mesh_runs,
        "text": multiview_setup.text_run,
    }
    for stage in ("video", "deformation", "deformation-refine", "mesh"):
        if stage in stages:
            print(f"{stage}, unmutated: {runs[stage]()}", flush=True)
    for name in names:
        stage, patch = MUTATIONS[name]
        with patch():
            result = runs[stage]()
        print(f"{stage}, mutation {name}: {result}", flush=True)


if __name__ == "__main__":
    main()
