"""Benchmark runner: reads the benchmark layout, scores folders or callables, writes Table-1 CSV + Markdown."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from a124_core.outputs.evaluate_benchmark import (
    PAPER_ROWS,
    SceneRenders,
    evaluate_benchmark,
    load_benchmark,
    load_reference_image,
    load_scene_renders,
    main,
)
from a124_core.outputs.export import frames_to_uint8, write_video
from a124_core.outputs.metrics import ClipEvaluator, ClipMetricsConfig

from .conftest import smooth_video

SCENES = {"panda-dance": "a panda is dancing", "dog-run": "a dog is running", "cat-jump": "a cat is jumping"}


@pytest.fixture(scope="module")
def evaluator(tiny_clip_dir):
    return ClipEvaluator(tiny_clip_dir, ClipMetricsConfig(device="cpu"))


@pytest.fixture()
def benchmark(tmp_path):
    root = tmp_path / "benchmark"
    root.mkdir()
    (root / "benchmark.json").write_text(json.dumps([{"name": n, "caption": c} for n, c in SCENES.items()]))
    for i, name in enumerate(SCENES):
        (root / name).mkdir()
        image = frames_to_uint8(smooth_video(1, 40, 40, seed=100 + i))[0]
        Image.fromarray(image).save(root / name / "image.jpg", quality=95)
    return root


def scene_videos(seed: int) -> list[torch.Tensor]:
    """Two orbit views of 4 frames, on the uint8 grid (what a lossless file holds)."""
    return [torch.from_numpy(frames_to_uint8(smooth_video(4, 32, 32, seed=seed + v))).float() / 255 for v in (0, 1)]


def write_render_folder(root, lossless=True):
    for i, name in enumerate(SCENES):
        for v, video in enumerate(scene_videos(10 * i)):
            write_video(video, root / name / f"orbit_albedo_view{v:02d}.webp", fps=8, lossless=lossless)
            write_video(1 - video, root / name / f"orbit_depth_view{v:02d}.webp", fps=8, lossless=lossless)
    return root


def test_folder_and_callable_sources_agree_and_tables_are_written(tmp_path, benchmark, evaluator):
    renders = write_render_folder(tmp_path / "renders")
    out = tmp_path / "out"
    result = evaluate_benchmark(benchmark, renders, evaluator, out, view_glob="*albedo*", method="ours")

    def render(entry):
        return SceneRenders(orbit=scene_videos(10 * list(SCENES).index(entry.name)))

    from_callable = evaluate_benchmark(benchmark, render, evaluator, tmp_path / "out2")
    captions = list(SCENES.values())
    for i, name in enumerate(SCENES):
        views = scene_videos(10 * i)
        reference = load_reference_image(benchmark / name / "image.jpg")
        expected = evaluator.evaluate(views, reference, SCENES[name], captions)
        for metric in ("clip_r", "clip_t", "clip_i", "clip_f"):
            assert getattr(result.scores[name], metric) == pytest.approx(getattr(expected, metric), abs=1e-6)
            assert getattr(from_callable.scores[name], metric) == pytest.approx(getattr(expected, metric), abs=1e-6)

    with result.csv_path.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["scene", "caption", "CLIP-R", "CLIP-T", "CLIP-I", "CLIP-F"]
    assert [r[0] for r in rows[1:]] == [*SCENES, "mean"]
    mean_t = np.mean([result.scores[n].clip_t for n in SCENES])
    assert float(rows[-1][3]) == pytest.approx(mean_t, abs=1e-4)
    markdown = result.markdown_path.read_text()
    assert "| Model | CLIP-R | CLIP-T | CLIP-I | CLIP-F |" in markdown
    assert "| Animate124 (paper) | 0.9311 | 0.3170 | 0.8544 | 0.9781 |" in markdown
    assert f"| **ours** (3 scenes) | {result.mean.clip_r:.4f} | {result.mean.clip_t:.4f}" in markdown
    assert len(PAPER_ROWS) == 3


def test_reference_video_and_frame_folders(tmp_path, evaluator):
    scene = tmp_path / "scene"
    views = scene_videos(0)
    for v, video in enumerate(views):
        (scene / f"view_{v}").mkdir(parents=True)
        for k, frame in enumerate(frames_to_uint8(video)):
            Image.fromarray(frame).save(scene / f"view_{v}" / f"{k:04d}.png")
    write_video(views[1], scene / "reference.webp", fps=8, lossless=True)
    loaded = load_scene_renders(scene)
    assert len(loaded.orbit) == 2
    torch.testing.assert_close(loaded.orbit[0], views[0])
    torch.testing.assert_close(loaded.reference_video, views[1])


def test_names_subset_still_ranks_against_every_caption(tmp_path, benchmark, evaluator):
    renders = write_render_folder(tmp_path / "renders")
    result = evaluate_benchmark(
        benchmark, renders, evaluator, tmp_path / "out", names=["dog-run"], view_glob="*albedo*"
    )
    assert list(result.scores) == ["dog-run"]
    reference = load_reference_image(benchmark / "dog-run" / "image.jpg")
    expected = evaluator.evaluate(scene_videos(10), reference, SCENES["dog-run"], list(SCENES.values()))
    assert result.scores["dog-run"].clip_r == pytest.approx(expected.clip_r)


def test_missing_renders_and_bad_benchmarks(tmp_path, benchmark, evaluator):
    renders = tmp_path / "renders"
    for v, video in enumerate(scene_videos(0)):
        write_video(video, renders / "panda-dance" / f"view{v}.webp", fps=8, lossless=True)
    with pytest.raises(FileNotFoundError, match=r"No renders for \['dog-run', 'cat-jump'\]"):
        evaluate_benchmark(benchmark, renders, evaluator, tmp_path / "out")
    result = evaluate_benchmark(benchmark, renders, evaluator, tmp_path / "out", skip_missing=True)
    assert list(result.scores) == ["panda-dance"] and result.skipped == ["dog-run", "cat-jump"]
    assert "Skipped (no renders): dog-run, cat-jump." in result.markdown_path.read_text()
    with pytest.raises(FileNotFoundError, match="benchmark.json"):
        load_benchmark(tmp_path)
    with pytest.raises(ValueError, match="Unknown benchmark scenes"):
        load_benchmark(benchmark, ["zebra"])
    (benchmark / "cat-jump" / "image.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="cat-jump/image.jpg"):
        load_benchmark(benchmark)
    (benchmark / "benchmark.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ValueError, match="JSON list"):
        load_benchmark(benchmark)


def test_command_line(tmp_path, benchmark, tiny_clip_dir, capsys):
    renders = write_render_folder(tmp_path / "renders", lossless=False)
    main(
        [
            "--benchmark", str(benchmark), "--renders", str(renders), "--clip", str(tiny_clip_dir),
            "--out", str(tmp_path / "out"), "--view-glob", "*albedo*",
        ]
    )  # fmt: skip
    assert (tmp_path / "out" / "clip_scores.csv").is_file()
    assert "Animate124 (paper)" in capsys.readouterr().out


def test_rgba_reference_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[:2, :, :3] = (255, 0, 0)
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    image = load_reference_image(tmp_path / "rgba.png")
    torch.testing.assert_close(image[0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(image[3, 3], torch.tensor([1.0, 1.0, 1.0]))
