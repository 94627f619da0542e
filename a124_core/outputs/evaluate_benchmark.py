"""Benchmark runner: CLIP-R/T/I/F over a benchmark folder, written as a CSV + Markdown table (paper Table 1).

Benchmark folder (the Animate124 benchmark's layout): `benchmark.json` = [{"name": ..., "caption": ...}, ...]
and `<name>/image.jpg` per entry (an optional `<name>/rgba.png` is preferred as the CLIP-I reference,
composited on white like the renders).

Renders to evaluate come from either
- a callable `entry -> SceneRenders` (or -> orbit views): the command-line runner passes renders it made;
- a folder `<renders>/<name>/` holding the orbit views of each scene, one view per video file
  (mp4/gif/webp) or per sub-folder of frame images (png/jpg), in sorted name order; `view_glob` selects
  which files are views (e.g. "*albedo*" when depth/normal videos sit beside them). A file or sub-folder
  whose name starts with "reference" is the reference-camera video; without one, view 0 is used
  (SPEC 10's azimuth-0 view is the reference camera).

Run: python -m a124_core.outputs.evaluate_benchmark --benchmark DIR --renders DIR --clip DIR --out DIR
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..checkpoint import atomic_write_text
from .export import read_video
from .metrics import ClipEvaluator, ClipMetricsConfig, ClipScores

VIDEO_SUFFIXES = (".mp4", ".gif", ".webp")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
METRICS = ("clip_r", "clip_t", "clip_i", "clip_f")
HEADERS = ("CLIP-R", "CLIP-T", "CLIP-I", "CLIP-F")
#: Rows of the paper's Table 1 (R / T / I / F), printed above ours for comparison.
PAPER_ROWS = (
    ("Zero-1-to-3-V (paper)", (0.8746, 0.3004, 0.7925, 0.9663)),
    ("RealFusion-V (paper)", (0.8939, 0.3075, 0.8026, 0.9691)),
    ("Animate124 (paper)", (0.9311, 0.3170, 0.8544, 0.9781)),
)


@dataclass
class BenchmarkEntry:
    """One benchmark scene."""

    name: str
    caption: str
    image: Path
    """The reference image used for CLIP-I (rgba.png if present, else image.jpg)."""


@dataclass
class SceneRenders:
    """What one scene contributes to the metrics."""

    orbit: list[Tensor]
    """Orbit views, each a video [N, H, W, 3] in [0, 1]."""
    reference_video: Tensor | None = None
    """Video from the reference camera [N, H, W, 3]; None -> orbit view 0."""


@dataclass
class BenchmarkResult:
    """Per-scene scores, their mean and the files written."""

    scores: dict[str, ClipScores]
    mean: ClipScores
    csv_path: Path
    markdown_path: Path
    skipped: list[str] = field(default_factory=list)


RenderSource = Callable[[BenchmarkEntry], "SceneRenders | Sequence[Tensor] | Tensor"] | str | Path


def load_benchmark(folder: str | Path, names: Sequence[str] | None = None) -> list[BenchmarkEntry]:
    """Read `benchmark.json` and check every (selected) scene has its image."""
    folder = Path(folder)
    index = folder / "benchmark.json"
    if not index.is_file():
        raise FileNotFoundError(
            f"{index} does not exist; a benchmark folder holds benchmark.json ([{{'name', 'caption'}}, ...]) "
            "and <name>/image.jpg per scene."
        )
    items = json.loads(index.read_text())
    if not isinstance(items, list) or not all(isinstance(i, dict) and {"name", "caption"} <= i.keys() for i in items):
        raise ValueError(f"{index} must be a JSON list of objects with 'name' and 'caption'.")
    known = [i["name"] for i in items]
    if names is not None:
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"Unknown benchmark scenes {unknown}; {index} lists {known}.")
        items = [i for i in items if i["name"] in set(names)]
    entries, missing = [], []
    for item in items:
        scene = folder / item["name"]
        image = next((scene / n for n in ("rgba.png", "image.jpg", "image.png") if (scene / n).is_file()), None)
        if image is None:
            missing.append(str(scene / "image.jpg"))
        else:
            entries.append(BenchmarkEntry(name=item["name"], caption=str(item["caption"]), image=image))
    if missing:
        raise FileNotFoundError(f"Benchmark images missing: {', '.join(missing)}.")
    if not entries:
        raise ValueError(f"{index} lists no scenes to evaluate.")
    return entries


def load_reference_image(path: Path) -> Tensor:
    """Image file -> [H, W, 3] in [0, 1]; alpha is composited on white (the renders' background)."""
    with Image.open(path) as im:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    return torch.from_numpy(rgb * alpha + (1.0 - alpha))


def _load_frames(folder: Path) -> Tensor:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder} holds no frame images ({', '.join(IMAGE_SUFFIXES)}).")
    frames = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 for p in files]
    if len({f.shape for f in frames}) != 1:
        raise ValueError(f"Frames in {folder} differ in size; one view's frames must share one size.")
    return torch.from_numpy(np.stack(frames))


def _load_view(path: Path) -> Tensor:
    return _load_frames(path) if path.is_dir() else read_video(path)[0]


def load_scene_renders(folder: str | Path, view_glob: str = "*") -> SceneRenders:
    """Orbit views (+ optional reference video) of one scene from a folder; see the module docstring."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Render folder {folder} does not exist.")
    candidates = sorted(
        p
        for p in folder.glob(view_glob)
        if (p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES) and not p.name.startswith(".")
    )
    reference = [p for p in candidates if p.name.lower().startswith("reference")]
    views = [p for p in candidates if p not in reference]
    if not views:
        loose = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if not loose:
            raise FileNotFoundError(
                f"No orbit views in {folder} (glob '{view_glob}'): expected video files "
                f"({', '.join(VIDEO_SUFFIXES)}) or sub-folders of frames, one per view."
            )
        return SceneRenders(orbit=[_load_frames(folder)])
    return SceneRenders(
        orbit=[_load_view(p) for p in views],
        reference_video=_load_view(reference[0]) if reference else None,
    )


def _as_scene(value: SceneRenders | Sequence[Tensor] | Tensor, name: str) -> SceneRenders:
    if isinstance(value, SceneRenders):
        return value
    if torch.is_tensor(value):
        return SceneRenders(orbit=list(value.unbind(0)) if value.ndim == 5 else [value])
    if isinstance(value, (list, tuple)) and value and all(torch.is_tensor(v) for v in value):
        return SceneRenders(orbit=list(value))
    raise ValueError(f"The render source returned {type(value).__name__} for '{name}'; return SceneRenders or videos.")


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def write_tables(
    scores: dict[str, ClipScores], captions: dict[str, str], out_dir: Path, method: str, skipped: Sequence[str] = ()
) -> tuple[ClipScores, Path, Path]:
    """Write `clip_scores.csv` (one row per scene + mean) and `clip_scores.md` (Table 1 layout + per scene)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mean = ClipScores(**{m: float(np.mean([getattr(s, m) for s in scores.values()])) for m in METRICS})
    csv_path = out_dir / "clip_scores.csv"
    with io.StringIO(newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["scene", "caption", *HEADERS])
        for name, s in scores.items():
            writer.writerow([name, captions[name], *(_fmt(getattr(s, m)) for m in METRICS)])
        writer.writerow(["mean", f"{len(scores)} scenes", *(_fmt(getattr(mean, m)) for m in METRICS)])
        atomic_write_text(csv_path, f.getvalue())
    lines = ["| Model | " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * len(HEADERS)]
    lines += [f"| {label} | " + " | ".join(_fmt(v) for v in values) + " |" for label, values in PAPER_ROWS]
    lines.append(
        f"| **{method}** ({len(scores)} scenes) | " + " | ".join(_fmt(getattr(mean, m)) for m in METRICS) + " |"
    )
    lines += ["", "Per scene:", "", "| Scene | Caption | " + " | ".join(HEADERS) + " |", "|---|---|" + "---:|" * 4]
    for name, s in scores.items():
        lines.append(f"| {name} | {captions[name]} | " + " | ".join(_fmt(getattr(s, m)) for m in METRICS) + " |")
    if skipped:
        lines += ["", f"Skipped (no renders): {', '.join(skipped)}."]
    md_path = out_dir / "clip_scores.md"
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    return mean, csv_path, md_path


def evaluate_benchmark(
    benchmark_dir: str | Path,
    renders: RenderSource,
    clip: str | Path | ClipEvaluator,
    out_dir: str | Path,
    *,
    names: Sequence[str] | None = None,
    method: str = "comfyui-animate124",
    view_glob: str = "*",
    skip_missing: bool = False,
    config: ClipMetricsConfig | None = None,
) -> BenchmarkResult:
    """Score every benchmark scene and write the tables.

    Args:
        benchmark_dir: folder with benchmark.json and <name>/image.jpg.
        renders: callable entry -> SceneRenders (or orbit videos), or a folder <renders>/<name>/.
        clip: a CLIPModel folder (e.g. openai/clip-vit-base-patch32, as in the paper) or a ready evaluator.
        out_dir: where clip_scores.csv / clip_scores.md go.
        names: evaluate only these scenes (CLIP-R still ranks against every caption of the benchmark).
        method: label of our row in the Markdown table.
        view_glob: which files of a render folder are orbit views.
        skip_missing: with a render folder, skip scenes without a sub-folder instead of failing.
        config: evaluator settings when `clip` is a folder.
    """
    all_entries = load_benchmark(benchmark_dir)
    entries = load_benchmark(benchmark_dir, names) if names is not None else all_entries
    candidates = [e.caption for e in all_entries]
    out_dir = Path(out_dir)
    if not callable(renders):
        root = Path(renders)
        if not root.is_dir():
            raise FileNotFoundError(f"Render folder {root} does not exist; it should hold <scene name>/ folders.")
        absent = [e.name for e in entries if not (root / e.name).is_dir()]
        if absent and not skip_missing:
            raise FileNotFoundError(f"No renders for {absent} under {root}; render them or pass skip_missing=True.")
    else:
        absent = []
    evaluator = clip if isinstance(clip, ClipEvaluator) else ClipEvaluator(clip, config)
    scores: dict[str, ClipScores] = {}
    for entry in entries:
        if entry.name in absent:
            continue
        scene = (
            _as_scene(renders(entry), entry.name)
            if callable(renders)
            else load_scene_renders(Path(renders) / entry.name, view_glob)
        )
        scores[entry.name] = evaluator.evaluate(
            scene.orbit, load_reference_image(entry.image), entry.caption, candidates, scene.reference_video
        )
    if not scores:
        raise ValueError("No scene had renders; nothing to evaluate.")
    captions = {e.name: e.caption for e in entries}
    mean, csv_path, md_path = write_tables(scores, captions, out_dir, method, absent)
    return BenchmarkResult(scores=scores, mean=mean, csv_path=csv_path, markdown_path=md_path, skipped=absent)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: score a folder of renders against a benchmark folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", required=True, help="folder with benchmark.json and <name>/image.jpg")
    parser.add_argument("--renders", required=True, help="folder with <name>/ orbit views per scene")
    parser.add_argument("--clip", required=True, help="transformers CLIPModel folder (openai/clip-vit-base-patch32)")
    parser.add_argument("--out", required=True, help="output folder for clip_scores.csv / clip_scores.md")
    parser.add_argument("--names", nargs="*", default=None, help="only these scenes")
    parser.add_argument("--method", default="comfyui-animate124", help="label of our row in the table")
    parser.add_argument("--view-glob", default="*", help="which files of a render folder are views")
    parser.add_argument("--skip-missing", action="store_true", help="skip scenes without renders")
    parser.add_argument("--retrieval", default="frame", choices=("frame", "video"), help="CLIP-R query unit")
    args = parser.parse_args(argv)
    result = evaluate_benchmark(
        args.benchmark,
        args.renders,
        args.clip,
        args.out,
        names=args.names,
        method=args.method,
        view_glob=args.view_glob,
        skip_missing=args.skip_missing,
        config=ClipMetricsConfig(retrieval=args.retrieval),
    )
    print(result.markdown_path.read_text())
    print(f"wrote {result.csv_path} and {result.markdown_path}")


if __name__ == "__main__":
    main()
