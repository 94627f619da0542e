"""Command-line runner: `python -m a124_core run --image IMG --prompt "a panda is dancing" --preset smoke --out OUT`.

`run` does the whole job (preprocess, textual inversion, static, coarse, refine, render; with `--video` instead of
`--image`: the clip, the static stage on its first frame, the coarse stage on every frame, render); `render`
re-renders a saved scene; `animate-mesh` animates an existing 3D model (a124_core/animate_mesh_cli.py), from a
prompt or from a video of it; `textual-inversion` learns a token from photos of a subject
(a124_core/textual_inversion_cli.py). Presets: paper (the paper's schedule), fast (under a third of its time),
smoke (tiny random priors, minutes on a CPU, not meaningful images), dream-in-4d. Errors in the arguments stop the
run before any work.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import animate_mesh_cli, textual_inversion_cli
from .cli_common import RESUME, SEED_MAX, OneLineParser, finish, positive_int, seed
from .pipeline.models import MVDREAM_FILE
from .pipeline.video import VIDEO_REPRESENTATION
from .presets import PRESETS
from .training.representations import DEFAULT_REPRESENTATION, REPRESENTATIONS


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m a124_core", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    animate_mesh_cli.add_parser(sub)
    textual_inversion_cli.add_parser(sub)
    _add_run(sub)
    render = sub.add_parser(
        "render", help="render the test orbit of a saved scene", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    render.add_argument("--scene", type=Path, required=True, help="a stage checkpoint (.safetensors)")
    render.add_argument("--out", type=Path, required=True, help="folder for the orbit videos (orbit_grid_*.mp4)")
    render.add_argument("--resolution", type=positive_int, default=400, help="side of each view in pixels")
    render.add_argument("--frames", type=positive_int, default=64, help="frames per view (times over the clip)")
    render.add_argument("--views", type=positive_int, default=10, help="cameras around the object")
    render.add_argument("--fps", type=positive_int, default=25, help="frame rate of the videos")
    render.add_argument("--device", help="cuda, cuda:1 or cpu (default: cuda when available)")
    return parser


def _add_run(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="one image + a motion prompt -> a 4D scene and its videos",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run.add_argument(
        "--image",
        type=Path,
        help="reference image (RGBA, or RGB with rembg installed); leave out for text-to-4D (no refine stage)",
    )
    run.add_argument(
        "--video",
        type=Path,
        help="reference video (video to 4D: any file ffmpeg reads, GIF, WebP); its frames and motion are the input",
    )
    run.add_argument("--mask-video", type=Path, help="mask video of --video (white = object), one mask per frame")
    run.add_argument(
        "--video-prior",
        action="store_true",
        help="with --video: add the text-to-video SDS (off: the video is the motion)",
    )
    run.add_argument(
        "--representation",
        choices=tuple(REPRESENTATIONS),
        help="dynamic field: "
        + "; ".join(f"{name}: {r.description}" for name, r in REPRESENTATIONS.items())
        + f" (default {DEFAULT_REPRESENTATION}; with --video {VIDEO_REPRESENTATION})",
    )
    run.add_argument("--mask", type=Path, help="foreground mask image (white = object) for an image without alpha")
    run.add_argument("--depth", type=Path, help="depth image aligned with --image (larger = nearer): depth loss on")
    run.add_argument("--depth-model", type=Path, help="transformers depth model folder to estimate the depth instead")
    run.add_argument(
        "--rembg-model",
        default="u2net",
        help="background-removal model without alpha or --mask (its .onnx in rembg's folders or <--models-dir>/rembg)",
    )
    run.add_argument("--prompt", required=True, help='motion prompt, e.g. "a panda is dancing"')
    run.add_argument("--out", type=Path, required=True, help="output folder (checkpoints, videos, summary.json)")
    run.add_argument("--preset", default="smoke", help=f"one of {', '.join(PRESETS)}")
    run.add_argument("--models-dir", type=Path, help="ComfyUI's models folder holding the priors (not for smoke)")
    run.add_argument(
        "--video-model", default="text-to-video-ms-1.7b", help="folder under models/diffusers/ of the video prior"
    )
    run.add_argument(
        "--sd-model",
        type=Path,
        help="2D prior: a diffusers folder or one .safetensors (e.g. a DreamBooth checkpoint; a bare name is looked "
        "for in <--models-dir>/checkpoints and /diffusers); default diffusers/stable-diffusion-v1-5, with --mvdream "
        "diffusers/stable-diffusion-2-1-base",
    )
    run.add_argument(
        "--sd-config",
        type=Path,
        help="config folder (configs + tokenizer) of a single-file --sd-model (default configs/<its model's name>)",
    )
    run.add_argument(
        "--mvdream",
        type=Path,
        nargs="?",
        const=Path(MVDREAM_FILE),
        help=f"text-to-4D only: MVDream as the static stage's 3D prior (Dream-in-4D); its file or diffusers folder, "
        f"default <--models-dir>/checkpoints/{MVDREAM_FILE}",
    )
    run.add_argument("--static-prompt", help="appearance prompt of step 1 (default: derived from --prompt)")
    run.add_argument("--token", help="textual-inversion token (default: _<noun>_)")
    run.add_argument("--initializer", help="word the token starts from (default: the prompt's noun)")
    run.add_argument("--refine-prompt", help="ControlNet prompt with the token (default: derived)")
    run.add_argument("--seed", type=seed, default=3407, help=f"seed of every stage (0 to {SEED_MAX})")
    run.add_argument("--device", help="cuda, cuda:1 or cpu (default: cuda when available)")
    run.add_argument("--resume", action="store_true", help="skip finished stages, continue an interrupted one")
    run.add_argument(
        "--overwrite", action="store_true", help="delete the files of another run in --out first (only those)"
    )
    run.add_argument("--render-resolution", type=positive_int, help="orbit render size (default 400; smoke 64)")
    run.add_argument("--render-frames", type=positive_int, help="frames per orbit view (default 64; smoke 8)")
    run.add_argument("--render-views", type=positive_int, help="orbit views (default 10; smoke 4)")
    run.add_argument("--fps", type=positive_int, default=25, help="frame rate of the videos and the animated GLB")


def _render(args: argparse.Namespace) -> None:
    from .devices import resolve_device
    from .outputs.export import write_video
    from .outputs.render import OrbitConfig, orbit_grid_video, render_test_orbit
    from .run_folder import check_output_folder
    from .training.scene import Scene

    device = resolve_device(args.device)
    if not args.scene.is_file():
        raise FileNotFoundError(f"Scene {args.scene} does not exist; pass a stage checkpoint (.safetensors).")
    check_output_folder(args.out)
    scene = Scene.load(args.scene, device)
    orbit = OrbitConfig(num_views=args.views, num_frames=args.frames, resolution=args.resolution)
    views = render_test_orbit(scene.field, orbit, ("albedo", "depth", "normal", "mask"), scene.occupancy)
    for channel, video in views.items():
        print(write_video(orbit_grid_video(video), args.out / f"orbit_grid_{channel}.mp4", args.fps))


def _quiet_libraries() -> None:
    """Keep the terminal to our progress lines: no per-load progress bars or dtype notices from the libraries."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for logging in (diffusers_logging, transformers_logging):
        logging.set_verbosity_error()
        logging.disable_progress_bar()


def _settings(args: argparse.Namespace) -> Any:
    from .pipeline import RunSettings
    from .pipeline.video import default_representation

    names = [
        "image", "video", "mask_video", "video_prior", "mask", "depth", "depth_model", "rembg_model", "prompt", "out",
        "preset", "models_dir", "video_model", "sd_model", "sd_config", "mvdream", "static_prompt", "token",
        "initializer", "refine_prompt", "seed", "device", "resume", "overwrite", "render_resolution", "render_frames",
        "render_views", "fps",
    ]  # fmt: skip
    representation = args.representation or default_representation(args.video)
    return RunSettings(representation=representation, **{name: getattr(args, name) for name in names})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    if hasattr(args, "handler"):  # subcommands in their own modules
        return args.handler(args)
    if args.command == "render":
        return finish(lambda cancel: _render(args), None)[0]
    from .pipeline import run

    status, summary = finish(lambda cancel: run(_settings(args), should_cancel=cancel), RESUME)
    if status:
        return status
    print(f"done: {args.out / 'summary.json'}")
    for stage, seconds in summary.stage_seconds.items():
        print(f"  {stage:18s} {seconds:8.1f} s  peak {summary.peak_memory_gb.get(stage, 0):.2f} GB")
    print(f"videos: {(args.out / 'renders').resolve()}")
    if "animated_mesh" in summary.outputs:
        print(f"animated mesh: {Path(summary.outputs['animated_mesh']).resolve()}")
    return 0
