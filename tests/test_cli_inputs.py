"""Issue 16: every bad CLI input exits 2 with one line naming the problem and the fix, before anything is
written; --resume refuses another run's folder; Ctrl+C saves the running stage and says how to resume."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from a124_core.cli import main
from a124_core.console import ConsoleProgress
from a124_core.pipeline import RunSettings, run_fingerprint, validate
from a124_core.run_record import write_record
from tests.paths import EXAMPLES

PANDA = EXAMPLES / "panda-dance"
needs_examples = pytest.mark.skipif(not PANDA.is_dir(), reason="../shared/data/examples is not beside the checkout")


def _refused(capsys, out, *args: str, image=PANDA / "rgba.png") -> str:
    """Run the CLI, expect exit 2 with exactly one 'error:' line and an output folder that was never created."""
    argv = ["run", "--prompt", "a panda is dancing", "--out", str(out), *args]
    if image is not None:
        argv += ["--image", str(image)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert not out.exists(), f"{out} was written although the input was refused"
    return err


@needs_examples
def test_broken_images_are_refused_before_any_work(tmp_path, capsys):
    truncated = tmp_path / "truncated.png"
    data = (PANDA / "rgba.png").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    assert "truncated or damaged" in _refused(capsys, tmp_path / "o", image=truncated)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert "not an image file" in _refused(capsys, tmp_path / "o", image=text)
    assert "does not exist" in _refused(capsys, tmp_path / "o", "--mask", str(tmp_path / "none.png"))
    assert "--image too" in _refused(capsys, tmp_path / "o", "--depth", str(PANDA / "depth.png"), image=None)
    err = _refused(capsys, tmp_path / "o", "--depth", str(PANDA / "depth.png"), "--depth-model", str(tmp_path))
    assert "not both" in err


@needs_examples
def test_devices_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("a124_core.devices._cuda_count", lambda: 0)
    assert "rerun with --device cpu" in _refused(capsys, tmp_path / "o", "--device", "cuda")
    assert "not a device name" in _refused(capsys, tmp_path / "o", "--device", "gpu0")


@needs_examples
def test_an_image_without_alpha_needs_a_mask_or_the_rembg_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("a124_core.reference.foreground.rembg_search_paths", lambda name, dirs: [])
    err = _refused(capsys, tmp_path / "o", image=PANDA / "image.jpg")
    assert "--mask" in err and "<--models-dir>/rembg" in err
    # a mask (here the example's own alpha) makes the same image acceptable
    from PIL import Image

    mask = tmp_path / "mask.png"
    Image.open(PANDA / "rgba.png").getchannel("A").save(mask)
    settings = RunSettings(image=PANDA / "image.jpg", mask=mask, prompt="a panda is dancing", out=tmp_path / "ok")
    assert validate(settings).mask.size == Image.open(mask).size


@needs_examples
def test_a_corrupt_weight_file_is_named_before_any_model_loads(tiny_models, tmp_path, capsys):
    models = tmp_path / "models"
    shutil.copytree(tiny_models.models_dir, models)
    unet = next((models / "diffusers" / "zero123-xl" / "unet").glob("*.safetensors"))
    unet.write_bytes(unet.read_bytes()[:100])
    err = _refused(capsys, tmp_path / "o", "--preset", "fast", "--models-dir", str(models))
    assert str(unet) in err and "download it again" in err


@needs_examples
def test_resume_refuses_a_folder_that_holds_another_run(tmp_path, capsys):
    out = tmp_path / "run"
    recorded = RunSettings(image=PANDA / "rgba.png", prompt="a panda is dancing", out=out, seed=1)
    write_record(out, run_fingerprint(recorded, validate(recorded).prompts))
    before = sorted(p.name for p in out.iterdir())

    def resume(*args: str, image=PANDA / "rgba.png") -> str:
        argv = ["run", "--image", str(image), "--out", str(out), "--resume", *args]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "holds another run" in err and "use a new --out or drop --resume" in err
        assert sorted(p.name for p in out.iterdir()) == before
        return err

    assert "seed: 1 -> 2" in resume("--prompt", "a panda is dancing", "--seed", "2")
    assert "prompt.motion" in resume("--prompt", "a panda is jumping", "--seed", "1")
    fox = EXAMPLES / "fox-game" / "rgba.png"
    assert "image:" in resume("--prompt", "a panda is dancing", "--seed", "1", image=fox)
    # the same inputs pass (and a fresh folder with no record is fine too)
    validate(RunSettings(image=PANDA / "rgba.png", prompt="a panda is dancing", out=out, seed=1, resume=True))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("old files")
    argv = ["run", "--image", str(PANDA / "rgba.png"), "--prompt", "a cat", "--out", str(tmp_path / "other")]
    assert main([*argv, "--resume"]) == 2 and "no run_record.json" in capsys.readouterr().err


@needs_examples
def test_ctrl_c_saves_the_running_stage_and_the_rerun_continues(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    progress = ConsoleProgress.__call__

    def interrupt_at_static_step_2(self, step, total, losses, preview):
        progress(self, step, total, losses, preview)
        if self.stage == "static" and step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl+C in the terminal

    monkeypatch.setattr(ConsoleProgress, "__call__", interrupt_at_static_step_2)
    small = ["--render-views", "1", "--render-frames", "2", "--render-resolution", "16"]
    argv = ["run", "--image", str(PANDA / "rgba.png"), "--prompt", "a panda is dancing", "--out", str(out), *small]
    # A shell's background job (CI's) starts with SIGINT ignored, and ignored signals stay ignored: a terminal's
    # foreground run has Python's own handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main(argv) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert "interrupted at static step 2: rerun the same command with --resume" in err and "Traceback" not in err
    assert (out / "checkpoints" / "static_latest.safetensors").is_file()
    assert not (out / "checkpoints" / "static.safetensors").exists()
    monkeypatch.setattr(ConsoleProgress, "__call__", progress)
    assert main([*argv, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "[static] continuing from" in err and (out / "checkpoints" / "refine.safetensors").is_file()
