"""`python -m a124_core animate-mesh --mesh model.glb --prompt "a robot is waving" --out OUT`: animate a user's mesh.

Fits the canonical field to the mesh, trains the deformation stage (video SDS, Zero123 on a front render of the
mesh unless --no-zero123, ARAP on the mesh's vertices) and writes the mesh back with one morph target per frame
(`OUT/meshes/animated_mesh.glb`: the input's vertices, faces, UVs and materials), orbit videos (`OUT/renders/`),
the stage checkpoints and `OUT/summary.json`. Bad input (not a mesh, a point cloud, too many faces, a missing
texture) stops with one line on stderr and exit status 2, before any model is built or file written.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from .cli_common import SEED_MAX, finish, non_negative_float, positive_int, seed
from .presets import PRESETS

#: The folders this command writes in --out (checked before any work).
OUTPUT_FOLDERS = ("checkpoints", "meshes", "renders", "previews", "tiny_models")


def add_parser(sub: Any) -> None:
    """The `animate-mesh` subcommand (its handler is `main`)."""
    p = sub.add_parser(
        "animate-mesh",
        help="a mesh (GLB/glTF/OBJ/PLY/STL) + a motion prompt -> the mesh animated",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--mesh", type=Path, required=True, help="the model: .glb, .gltf, .obj, .ply or .stl")
    p.add_argument("--prompt", required=True, help='motion prompt, e.g. "a robot is waving its arms"')
    p.add_argument("--out", type=Path, required=True, help="output folder (GLB, videos, checkpoints, summary.json)")
    p.add_argument("--preset", default="smoke", help=f"one of {', '.join(PRESETS)} (default smoke)")
    p.add_argument("--models-dir", type=Path, help="ComfyUI's models folder holding the priors (not for smoke)")
    p.add_argument("--video-model", default="text-to-video-ms-1.7b", help="folder under models/diffusers/")
    p.add_argument("--no-zero123", action="store_true", help="no Zero123 SDS on frame 0 (video SDS + ARAP only)")
    p.add_argument(
        "--arap-weight", type=non_negative_float, help="weight of the ARAP term (default: the preset's; 0: off)"
    )
    p.add_argument("--frames", type=positive_int, help="morph targets / video frames (default: the preset's)")
    p.add_argument("--fps", type=positive_int, default=25, help="frame rate of the animation and the videos")
    p.add_argument("--max-faces", type=positive_int, default=500_000, help="refuse meshes with more faces")
    p.add_argument("--allow-missing-textures", action="store_true", help="colour untextured faces, do not refuse")
    p.add_argument("--seed", type=seed, default=3407, help=f"seed of the fit and the stage (0 to {SEED_MAX})")
    p.add_argument(
        "--overwrite", action="store_true", help="delete the files of an earlier run in --out first (only those)"
    )
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: cuda when available)")
    p.set_defaults(handler=main)


def _validate(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Every check that needs no model, in order; returns (asset, preset, device). Writes nothing."""
    from .devices import resolve_device
    from .meshes import MeshCheckConfig, MeshLoadConfig
    from .meshes.animate import MESH_REPRESENTATION, load_input
    from .pipeline import ModelPaths
    from .presets import preset

    if not args.prompt.strip():
        raise ValueError("The motion prompt is empty; say what the model does, e.g. 'a robot is waving'.")
    chosen = preset(args.preset, MESH_REPRESENTATION).with_seed(args.seed)  # an unknown preset: one line
    device = resolve_device(args.device)
    load = MeshLoadConfig(MeshCheckConfig(args.max_faces), args.allow_missing_textures)
    asset = load_input(args.mesh, load)
    if chosen.name != "smoke":
        if args.models_dir is None:
            raise ValueError("Presets other than smoke need --models-dir (ComfyUI's models folder with the priors).")
        paths = ModelPaths.from_models_dir(args.models_dir, args.video_model)
        missing = [m for m in paths.missing_files() if str(paths.video) in m or str(paths.zero123) in m]
        if args.no_zero123:
            missing = [m for m in missing if str(paths.zero123) not in m]
        if missing:
            raise FileNotFoundError("Model files are missing (see README: model files): " + "; ".join(missing))
        from .weight_files import check_weight_files

        for folder in (paths.video,) if args.no_zero123 else (paths.video, paths.zero123):
            check_weight_files(folder)  # headers only: a truncated download fails here, in one line
    return asset, chosen, device


def _priors(args: argparse.Namespace, chosen: Any, out: Path) -> Any:
    from .pipeline import ModelPaths
    from .priors.video import TextToVideoPrior
    from .priors.zero123 import Zero123Prior
    from .training.coarse_stage import DynamicPriors

    if chosen.name == "smoke":
        from .priors.tiny import build_tiny_models

        root = build_tiny_models(out / "tiny_models").models_dir
    else:
        root = args.models_dir
    paths = ModelPaths.from_models_dir(root, args.video_model)
    zero123 = None if args.no_zero123 else Zero123Prior.from_pretrained(paths.zero123, device="cpu")
    return DynamicPriors(TextToVideoPrior.from_pretrained(paths.video, device="cpu"), zero123)


def animate_mesh(args: argparse.Namespace, should_cancel: Any = None) -> dict[str, Any]:
    """Validate, fit, train, write; returns the summary (also written as OUT/summary.json). `should_cancel` is polled
    before every training step (True: the stage is checkpointed and TrainingCancelled raised)."""
    from .checkpoint import atomic_write_json
    from .config_io import config_to_dict
    from .console import ConsoleProgress
    from .meshes import scene_from_mesh
    from .meshes.animate import animation_stage, mesh_animation_config, orbit_videos, write_animation
    from .outputs.export import write_video
    from .pipeline import SMOKE_WARNING
    from .run_folder import check_output_folder, clear_previous_run, refuse_previous_run
    from .training.runner import Callbacks, run_stage

    asset, chosen, device = _validate(args)
    out = Path(args.out)
    if not args.overwrite:
        refuse_previous_run(out, resume_flag=None)
    check_output_folder(out, subfolders=OUTPUT_FOLDERS)
    if args.overwrite and (removed := clear_previous_run(out)):
        sys.stderr.write(f"--overwrite: removed the earlier run's {', '.join(removed)} from {out}\n")
    for note in asset.notes:
        sys.stderr.write(f"note: {note}\n")
    if chosen.name == "smoke":
        sys.stderr.write(SMOKE_WARNING + "\n")
    config = mesh_animation_config(chosen, args.arap_weight)
    export = replace(config.export, fps=float(args.fps), num_frames=args.frames or config.export.num_frames)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    priors = _priors(args, chosen, out)
    seconds["load_priors"] = time.perf_counter() - start
    fit = scene_from_mesh(asset, config.fit, device=device)
    seconds["fit"] = fit.seconds["total"]
    checkpoints = out / "checkpoints"
    fit.scene.save(checkpoints / "mesh_fit.safetensors")
    start = time.perf_counter()
    stage = lambda: animation_stage(fit, config, priors, args.prompt, device=device)  # noqa: E731
    callbacks = Callbacks(on_progress=ConsoleProgress("animate_mesh", out / "previews"), should_cancel=should_cancel)
    scene = run_stage("coarse", stage, checkpoints, False, callbacks)
    seconds["animate"] = time.perf_counter() - start
    start = time.perf_counter()
    written = write_animation(asset, fit, scene.field, out / "meshes" / "animated_mesh.glb", export, device)
    orbit = replace(chosen.orbit, num_frames=export.num_frames)
    outputs = {"animated_mesh": str(written.path)}
    for name, video in orbit_videos(scene, orbit, config.stage.render).items():
        outputs[name] = str(write_video(video, out / "renders" / f"{name}.mp4", args.fps))
    seconds["write"] = time.perf_counter() - start
    summary = {
        "mesh": str(args.mesh),
        "prompt": args.prompt,
        "preset": chosen.name,
        "mesh_transform": fit.transform.to_dict(),
        "notes": [*asset.notes, written.note],
        "outputs": outputs,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "stage_config": config_to_dict(config.stage),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


def main(args: argparse.Namespace) -> int:
    """The subcommand's exit status: 0 done, 2 bad input or a failed write (one line on stderr), 130 interrupted
    (Ctrl+C saves the running stage's checkpoint)."""
    status, summary = finish(lambda cancel: animate_mesh(args, cancel), None)
    if status == 0:
        print(f"done: {summary['outputs']['animated_mesh']}")
    return status


__all__ = ["add_parser", "animate_mesh", "main"]
