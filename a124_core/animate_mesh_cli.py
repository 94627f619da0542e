"""`python -m a124_core animate-mesh --mesh model.glb --prompt "a robot is waving" --out OUT`: animate a user's mesh.

Fits the canonical field to the mesh, trains the deformation stage (video SDS, Zero123 on a front render of the
mesh unless --no-zero123, ARAP on the mesh's vertices) and writes the mesh back with one morph target per frame.
With `--video clip.mp4` (a video of the mesh's front render in motion, e.g. from an image-to-video model) the motion
comes from the clip instead (`meshes/from_video.py`: per-frame reconstruction, Zero123 per frame, ARAP; the video
prior only with --video-prior, then under --prompt)
(`OUT/meshes/animated_mesh.glb`: the input's vertices, faces, UVs and materials), orbit videos (`OUT/renders/`),
the stage checkpoints and `OUT/summary.json`. Bad input (not a mesh, a point cloud, too many faces, a missing
texture) stops with one line on stderr and exit status 2, before any model is built or file written.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .presets import PRESETS


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def add_parser(sub: Any) -> None:
    """The `animate-mesh` subcommand (its handler is `main`)."""
    p = sub.add_parser("animate-mesh", help="a mesh (GLB/glTF/OBJ/PLY/STL) + a motion prompt -> the mesh animated")
    p.add_argument("--mesh", type=Path, required=True, help="the model: .glb, .gltf, .obj, .ply or .stl")
    p.add_argument("--prompt", default="", help='motion prompt, e.g. "a robot is waving its arms" (not with --video)')
    p.add_argument("--video", type=Path, help="a video of the mesh's front view in motion: the motion to fit")
    p.add_argument("--mask-video", type=Path, help="mask video of --video (white = object); else alpha or rembg")
    p.add_argument("--video-prior", action="store_true", help="with --video: also the video SDS under --prompt")
    p.add_argument("--rembg-model", default="u2net", help="background removal for --video frames without masks")
    p.add_argument("--out", type=Path, required=True, help="output folder (GLB, videos, checkpoints, summary.json)")
    p.add_argument("--preset", default="smoke", help=f"one of {', '.join(PRESETS)} (default smoke)")
    p.add_argument("--models-dir", type=Path, help="ComfyUI's models folder holding the priors (not for smoke)")
    p.add_argument("--video-model", default="text-to-video-ms-1.7b", help="folder under models/diffusers/")
    p.add_argument("--no-zero123", action="store_true", help="no Zero123 SDS (frame 0; with --video every frame)")
    p.add_argument("--arap-weight", type=float, help="weight of the ARAP term (default 1000; 0 turns it off)")
    p.add_argument("--frames", type=_positive_int, help="morph targets / video frames (default: the preset's)")
    p.add_argument("--fps", type=_positive_int, default=25)
    p.add_argument("--max-faces", type=_positive_int, default=500_000, help="refuse meshes with more faces")
    p.add_argument("--allow-missing-textures", action="store_true", help="colour untextured faces, do not refuse")
    p.add_argument("--seed", type=int, default=3407)
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: cuda when available)")
    p.set_defaults(handler=main)


def _uses_video_prior(args: argparse.Namespace) -> bool:
    return args.video is None or args.video_prior


def _check_flags(args: argparse.Namespace) -> None:
    if args.video is None and (args.mask_video is not None or args.video_prior):
        raise ValueError("--mask-video and --video-prior go with --video (a video of the mesh in motion).")
    if _uses_video_prior(args) and not args.prompt.strip():
        raise ValueError("The motion prompt is empty; say what the model does, e.g. 'a robot is waving'.")


def _validate(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """Every check, in order, then (with --video) the clip decoded onto the mesh's front view; returns (asset,
    preset, device, clip or None). Writes nothing."""
    from .devices import resolve_device
    from .meshes import MeshCheckConfig, MeshLoadConfig
    from .meshes.animate import MESH_REPRESENTATION, load_input
    from .presets import preset

    _check_flags(args)
    if args.arap_weight is not None and args.arap_weight < 0:
        raise ValueError(f"--arap-weight must be >= 0, got {args.arap_weight}.")
    chosen = preset(args.preset, MESH_REPRESENTATION).with_seed(args.seed)  # an unknown preset: one line
    device = resolve_device(args.device)
    load = MeshLoadConfig(MeshCheckConfig(args.max_faces), args.allow_missing_textures)
    asset = load_input(args.mesh, load)
    plan = _check_video(args, chosen.name)
    _check_models(args, chosen.name)
    return asset, chosen, device, None if plan is None else _mesh_clip(args, asset, plan)


def _check_models(args: argparse.Namespace, preset_name: str) -> None:
    """The prior folders this run loads exist and their weight headers read (not for smoke)."""
    from .pipeline import ModelPaths
    from .weight_files import check_weight_files

    if preset_name == "smoke":
        return
    if args.models_dir is None:
        raise ValueError("Presets other than smoke need --models-dir (ComfyUI's models folder with the priors).")
    paths = ModelPaths.from_models_dir(args.models_dir, args.video_model)
    used = ((paths.video, _uses_video_prior(args)), (paths.zero123, not args.no_zero123))
    folders = [folder for folder, wanted in used if wanted]
    missing = [m for m in paths.missing_files() if any(str(f) in m for f in folders)]
    if missing:
        raise FileNotFoundError("Model files are missing (see README: model files): " + "; ".join(missing))
    for folder in folders:
        check_weight_files(folder)  # headers only: a truncated download fails here, in one line


def _clip_config(args: argparse.Namespace, preset_name: str) -> Any:
    from .pipeline.video import FRAME_BUDGET
    from .reference import ClipConfig, ReferenceConfig

    return ClipConfig(reference=ReferenceConfig(rembg_model=args.rembg_model), max_frames=FRAME_BUDGET[preset_name])


def _rembg_dirs(args: argparse.Namespace) -> list[Path]:
    return [Path(args.models_dir) / "rembg"] if args.models_dir is not None else []


def _check_video(args: argparse.Namespace, preset_name: str) -> Any:
    """The video's file checks (probe: frames, constant rate, mask video, rembg model), None without --video."""
    if args.video is None:
        return None
    from .reference import check_clip_video

    config = _clip_config(args, preset_name)
    return check_clip_video(args.video, args.mask_video, rembg_dirs=_rembg_dirs(args), config=config), config


def _mesh_clip(args: argparse.Namespace, asset: Any, checked: Any) -> Any:
    """The clip decoded and cropped onto the mesh's front view (per-frame checks: an empty mask names its frame)."""
    from .meshes.from_video import mesh_clip

    plan, config = checked
    return mesh_clip(
        asset, video=args.video, mask_video=args.mask_video, config=config, rembg_dirs=_rembg_dirs(args), plan=plan
    )


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
    video = TextToVideoPrior.from_pretrained(paths.video, device="cpu") if _uses_video_prior(args) else None
    return DynamicPriors(video, zero123)


def animate_mesh(args: argparse.Namespace, should_cancel: Any = None) -> dict[str, Any]:
    """Validate, fit, train, write; returns the summary (also written as OUT/summary.json). `should_cancel` is polled
    before every training step (True: the stage is checkpointed and TrainingCancelled raised)."""
    from .checkpoint import atomic_write_json
    from .console import ConsoleProgress
    from .meshes import scene_from_mesh
    from .meshes.animate import animation_stage, mesh_animation_config, orbit_videos, write_animation
    from .outputs.export import write_video
    from .pipeline import SMOKE_WARNING, check_output_folder
    from .training.runner import Callbacks, run_stage

    asset, chosen, device, clip = _validate(args)
    out = Path(args.out)
    check_output_folder(out)
    notes = [*asset.notes, *([clip.meta["frames_note"]] if clip is not None and clip.meta.get("frames_note") else [])]
    for note in notes:
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
    stage = lambda: animation_stage(fit, config, priors, args.prompt, device=device, reference=clip)  # noqa: E731
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
        "video": None if args.video is None else str(args.video),
        "preset": chosen.name,
        "mesh_transform": fit.transform.to_dict(),
        "notes": [*notes, written.note],
        "outputs": outputs,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "stage_config": asdict(config.stage),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


def main(args: argparse.Namespace) -> int:
    """The subcommand's exit status: 0 done, 2 bad input (one line on stderr), 130 interrupted (Ctrl+C saves the
    running stage's checkpoint)."""
    from .interrupts import cancel_on_signals
    from .training.runner import TrainingCancelled

    try:
        with cancel_on_signals() as cancel:
            summary = animate_mesh(args, cancel)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingCancelled as cancelled:
        print(f"interrupted at step {cancelled.step}; its checkpoint: {cancelled.checkpoint}", file=sys.stderr)
        return 130
    print(f"done: {summary['outputs']['animated_mesh']}")
    return 0


__all__ = ["add_parser", "animate_mesh", "main"]
