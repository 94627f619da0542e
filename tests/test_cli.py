"""The command-line runner: bad input stops before any work; the smoke preset runs the whole job."""

import json
import time

import pytest

from a124_core.cli import main
from a124_core.pipeline import ModelPaths
from tests.paths import EXAMPLES

EXAMPLE = EXAMPLES / "panda-dance" / "rgba.png"


def run_cli(*args: str) -> int:
    return main(["run", "--image", str(EXAMPLE), *args])


def test_bad_input_fails_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run_cli("--prompt", "a panda is dancing", "--out", str(blocker / "sub")) == 2
    assert "not writable" in capsys.readouterr().err
    assert run_cli("--prompt", "a panda is dancing", "--out", str(tmp_path / "o"), "--preset", "ultra") == 2
    assert "Unknown preset" in capsys.readouterr().err
    assert run_cli("--prompt", "   ", "--out", str(tmp_path / "o")) == 2
    assert "prompt is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli("--prompt", "a panda is dancing", "--out", str(tmp_path / "o"), "--render-resolution", "0")
    assert "positive" in capsys.readouterr().err
    assert main(["run", "--image", str(tmp_path / "none.png"), "--prompt", "a cat", "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_missing_models_are_named_before_loading(tmp_path, capsys):
    start = time.time()
    code = run_cli(
        "--prompt",
        "a panda is dancing",
        "--out",
        str(tmp_path / "o"),
        "--preset",
        "paper",
        "--models-dir",
        str(tmp_path / "models"),
    )
    err = capsys.readouterr().err
    assert code == 2 and time.time() - start < 5
    assert "stable-diffusion-v1-5" in err and "text-to-video-ms-1.7b" in err and "control_v11f1e_sd15_tile" in err
    (tmp_path / "models" / "diffusers" / "zero123-xl" / "unet").mkdir(parents=True)
    missing = ModelPaths.from_models_dir(tmp_path / "models").missing_files()
    assert any(line.startswith("unet/config.json missing in") and "zero123-xl" in line for line in missing)


@pytest.mark.skipif(not EXAMPLE.is_file(), reason="../shared/data/examples is not beside the checkout")
def test_smoke_preset_runs_the_whole_job_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    start = time.time()
    code = run_cli(
        "--prompt",
        "a panda is dancing",
        "--preset",
        "smoke",
        "--out",
        str(out),
        "--render-views",
        "2",
        "--render-frames",
        "4",
        "--render-resolution",
        "32",
    )
    elapsed = time.time() - start
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "not meaningful" in captured.err
    print(f"smoke run: {elapsed:.0f} s")
    for stage in ("static", "coarse", "refine"):
        assert (out / "checkpoints" / f"{stage}.safetensors").is_file()
    assert (out / "embeddings" / "_panda_.safetensors").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["stage_seconds"]) >= {"preprocess", "textual_inversion", "static", "coarse", "refine", "render"}
    assert summary["prompts"]["refine"] == "a _panda_ is dancing"
    assert all(v > 0 for v in summary["peak_memory_gb"].values())

    import imageio.v3 as iio

    frames = iio.imread(out / "renders" / "orbit_grid_albedo.mp4")
    assert frames.shape[0] == 4 and frames.shape[1:3] == (32, 64)  # 2 views side by side, 4 frames

    # resume: every stage is finished, so nothing is trained again
    code = run_cli(
        "--prompt",
        "a panda is dancing",
        "--preset",
        "smoke",
        "--out",
        str(out),
        "--resume",
        "--render-views",
        "1",
        "--render-frames",
        "2",
        "--render-resolution",
        "16",
    )
    err = capsys.readouterr().err
    assert code == 0 and err.count("finished earlier") == 3


@pytest.mark.skipif(not EXAMPLE.is_file(), reason="../shared/data/examples is not beside the checkout")
def test_smoke_preset_accepts_words_the_tiny_tokenizer_does_not_know(tmp_path, capsys):
    out = tmp_path / "fox"
    code = run_cli(
        "--prompt",
        "a fox maneuvering a game controller",
        "--preset",
        "smoke",
        "--out",
        str(out),
        "--render-views",
        "1",
        "--render-frames",
        "2",
        "--render-resolution",
        "16",
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prompts"]["token"] == "_fox_" and any("used 'object'" in n for n in summary["notes"])


def test_text_to_4d_with_the_deformation_field_writes_one_animated_mesh(tmp_path, capsys):
    """No --image: Dream-in-4D's text-to-4D path (the tiny MVDream + SD2.1-base in the static stage); --representation
    deformation: one mesh with morph targets."""
    import pygltflib

    out = tmp_path / "text"
    args = ["run", "--prompt", "a panda is dancing", "--preset", "smoke", "--representation", "deformation"]
    args.append("--mvdream")
    code = main([*args, "--out", str(out), "--render-views", "1", "--render-frames", "3", "--render-resolution", "16"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "text-to-4D" in captured.err
    assert not (out / "embeddings").exists() and not (out / "checkpoints" / "refine.safetensors").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["stage_configs"]["coarse"]["representation"]["name"] == "deformation"
    assert summary["settings"]["mvdream"] == "sd-v2.1-base-4view.pt"
    assert json.loads((out / "run_record.json").read_text())["fields"]["prior.mvdream"] == "tiny-random"
    glb = pygltflib.GLTF2.load(summary["outputs"]["animated_mesh"])
    assert len(glb.meshes) == 1 and len(glb.meshes[0].primitives[0].targets) == 3 and len(glb.animations) == 1
