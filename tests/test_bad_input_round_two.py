"""Issue 28: bad input, round two. One test per case: exit 2 (or the stated status), one line, no traceback, and
nothing written for the inputs refused before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from a124_core import checkpoint
from a124_core.cli import main
from a124_core.console import ConsoleProgress, end_line
from a124_core.prompts import derive_prompts
from a124_core.training.scene import Scene, read_header, scene_digest
from tests.disk_full import no_space_for, small_tmpfs
from tests.paths import EXAMPLES, REPO

PANDA = EXAMPLES / "panda-dance" / "rgba.png"
needs_examples = pytest.mark.skipif(not PANDA.is_file(), reason="../shared/data/examples is not beside the checkout")
SMALL = ["--render-views", "1", "--render-frames", "2", "--render-resolution", "16"]


def run_args(out: Path, *extra: str, prompt: str = "a panda is dancing") -> list[str]:
    return ["run", "--image", str(PANDA), "--prompt", prompt, "--out", str(out), *SMALL, *extra]


def one_line(capsys, status: int, argv: list[str]) -> str:
    """Run the CLI; its status is `status` and stderr ends in exactly one 'error:' line with no traceback."""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    assert code == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def refused(capsys, argv: list[str], out: Path, keep: set[str] | None = None) -> str:
    """Refused before any work: status 2, one line, and `out` holds nothing new (or was never made)."""
    before = set(os.listdir(out)) if out.exists() else None
    line = one_line(capsys, 2, argv)
    assert (set(os.listdir(out)) if out.exists() else None) == before, "a refused run wrote files"
    return line


# 1. A full disk ------------------------------------------------------------------------------------------------------
@needs_examples
def test_a_full_disk_is_one_line(tmp_path, capsys):
    with small_tmpfs(tmp_path / "disk", "1m", "test_a_failed_late_write_is_one_line_...") as disk:
        line = one_line(capsys, 2, run_args(disk / "run"))
        assert line.startswith(f"error: Could not write {disk / 'run'}/"), "the line names the file or folder"
        assert "No space left on device" in line and "--resume" in line


@needs_examples
def test_a_failed_late_write_is_one_line_and_resume_never_mixes_stages(tmp_path, capsys, monkeypatch):
    """Case 1 with the writer patched (no space at the refine stage's final checkpoint), then case 6: when the static
    checkpoint is not the one coarse and refine were trained on (deleted and trained again, which on a GPU gives
    another scene; here it is changed by hand), --resume trains them again: their checkpoints record the digest of
    the scene they were trained on."""
    out = tmp_path / "run"
    save = checkpoint.save_file
    monkeypatch.setattr(checkpoint, "save_file", no_space_for("refine.safetensors", save))
    line = one_line(capsys, 2, run_args(out))
    assert "refine.safetensors" in line and "No space left on device" in line and "--resume" in line
    monkeypatch.setattr(checkpoint, "save_file", save)
    assert main(run_args(out, "--resume")) == 0
    err = capsys.readouterr().err
    assert "[coarse] finished earlier" in err and "[refine] continuing from" not in err
    ckpt = out / "checkpoints"
    assert not (ckpt / "refine_latest.safetensors").exists(), "a finished stage leaves no stale _latest file"

    static = Scene.load(ckpt / "static.safetensors")
    with torch.no_grad():
        next(static.field.parameters()).add_(1e-3)
    static.save(ckpt / "static.safetensors")
    assert main(run_args(out, "--resume")) == 0
    err = capsys.readouterr().err
    assert "[static] finished earlier" in err and "coarse.safetensors was trained on another static" in err
    assert "refine.safetensors was trained on another coarse" in err
    static, coarse = Scene.load(ckpt / "static.safetensors"), Scene.load(ckpt / "coarse.safetensors")
    assert read_header(ckpt / "coarse.safetensors")["parents"] == {"static": scene_digest(static)}
    assert read_header(ckpt / "refine.safetensors")["parents"]["coarse"] == scene_digest(coarse)


# 2. Folders the run writes -------------------------------------------------------------------------------------------
@needs_examples
def test_every_folder_the_run_writes_is_checked_first(tmp_path, capsys):
    for blocked in ("checkpoints", "renders"):
        out = tmp_path / blocked
        out.mkdir()
        (out / blocked).write_text("a file, not a folder")
        line = refused(capsys, run_args(out), out)
        assert f"{out / blocked} is a file where a folder is needed" in line
    file_out = tmp_path / "plain"
    file_out.write_text("x")
    assert "is a file where a folder is needed" in one_line(capsys, 2, run_args(file_out))


# 3 and 4. Numbers where they are parsed ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "x"])
def test_arap_weight_must_be_a_finite_number(tmp_path, capsys, value):
    out = tmp_path / "o"
    argv = ["animate-mesh", "--mesh", str(tmp_path / "m.glb"), "--prompt", "a robot waves", "--out", str(out)]
    line = refused(capsys, [*argv, "--arap-weight", value], tmp_path / "o")
    assert "--arap-weight" in line and ("finite number >= 0" in line or "number >= 0" in line)


def test_non_finite_training_in_animate_mesh_is_one_line_without_resume_advice(tmp_path, capsys, monkeypatch):
    """animate-mesh has no --resume: its non-finite-loss line must not advise one (exit 1, one line)."""
    from a124_core import animate_mesh_cli
    from a124_core.training.runner import NonFiniteLossError

    def diverges(args, cancel):
        raise NonFiniteLossError(
            "coarse stage: 3 non-finite steps in a row, the last at step 7; non-finite terms: sds."
        )

    monkeypatch.setattr(animate_mesh_cli, "animate_mesh", diverges)
    argv = ["animate-mesh", "--mesh", str(tmp_path / "m.glb"), "--prompt", "a robot waves", "--out", str(tmp_path)]
    line = one_line(capsys, 1, argv)
    assert "non-finite steps" in line and "resume" not in line


@needs_examples
@pytest.mark.parametrize("value", ["99999999999999999999", str(2**64), str(-(2**63) - 1), "-1", "1.5"])
def test_seeds_outside_the_generator_range_are_refused_by_name(tmp_path, capsys, value):
    line = refused(capsys, run_args(tmp_path / "o", "--seed", value), tmp_path / "o")
    assert "--seed" in line and "18446744073709551615" in line


# 5. Another run's files ----------------------------------------------------------------------------------------------
@needs_examples
def test_a_fresh_run_refuses_another_runs_folder_or_clears_only_its_files(tmp_path, capsys):
    out = tmp_path / "old"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "refine.safetensors").write_bytes(b"old run")
    (out / "run_record.json").write_text("{}")
    (out / "my_notes.txt").write_text("the user's own file")
    line = refused(capsys, run_args(out, prompt="a cat is jumping"), out)
    assert "holds another run's files (run_record.json, checkpoints/)" in line and "--overwrite" in line
    assert "--resume --overwrite" not in line
    both = refused(capsys, run_args(out, "--resume", "--overwrite"), out)
    assert "pass one of them" in both
    assert main(run_args(out, "--overwrite", prompt="a cat is jumping")) == 0
    err = capsys.readouterr().err
    assert "--overwrite: removed the earlier run's run_record.json, checkpoints/" in err
    assert (out / "my_notes.txt").read_text() == "the user's own file"
    assert json.loads((out / "run_record.json").read_text())["fields"]["prompt.motion"] == "a cat is jumping"


# 7. Prompts ----------------------------------------------------------------------------------------------------------
@needs_examples
def test_prompts_without_words_or_with_comfyui_embeddings_are_refused(tmp_path, capsys):
    line = refused(capsys, run_args(tmp_path / "o", prompt="!!! ???"), tmp_path / "o")
    assert "--prompt '!!! ???' has no word" in line
    line = refused(capsys, run_args(tmp_path / "o", "--refine-prompt", "a _panda_, embedding:foo"), tmp_path / "o")
    assert "--refine-prompt names the ComfyUI embedding 'embedding:foo'" in line


def test_a_prompt_without_an_english_subject_keeps_its_motion_and_names_the_refine_option():
    p = derive_prompts("一只熊猫在跳舞")
    assert p.refine == "_object_, 一只熊猫在跳舞"
    assert "--refine-prompt" in p.warnings[0] and "'_object_, 一只熊猫在跳舞'" in p.warnings[0]


# 8. File modes, the interrupt line, stale rolling checkpoints --------------------------------------------------------
def test_written_files_get_the_umask_mode(tmp_path):
    mask = os.umask(0o022)
    try:
        path = checkpoint.save_checkpoint(tmp_path / "c.safetensors", {"x": torch.zeros(2)}, {"a": 1})
        text = checkpoint.atomic_write_text(tmp_path / "t.json", "{}")
    finally:
        os.umask(mask)
    assert oct(path.stat().st_mode & 0o777) == oct(text.stat().st_mode & 0o777) == oct(0o644)


def test_the_interrupt_message_starts_its_own_line(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    progress = ConsoleProgress("static")
    progress(5, 10, {"total": 1.0}, None)
    end_line()
    sys.stderr.write("interrupted at static step 5\n")
    err = capsys.readouterr().err
    assert err.endswith("\ninterrupted at static step 5\n") and "sinterrupted" not in err


def test_progress_in_a_log_file_is_one_line_per_report(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    progress = ConsoleProgress("coarse", log_every=0.0)
    for step in (1, 2, 3):
        progress(step, 3, {"total": 0.5}, None)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"[coarse] {s}/3 loss 0.5 0s" for s in (1, 2, 3)] and "\r" not in "".join(lines)


# 9. Help texts and wording -------------------------------------------------------------------------------------------
def _help(*command: str) -> str:
    done = subprocess.run([sys.executable, "-m", "a124_core", *command, "--help"], capture_output=True, text=True,
                          cwd=REPO, check=True)  # fmt: skip
    return done.stdout


def test_every_option_has_a_help_text_and_its_default():
    render = _help("render")
    assert "(default: 400)" in render and "cameras around the object" in render and "frame rate" in render
    run = _help("run")
    assert "seed of every stage" in run and "(default: 3407)" in run and "frame rate of the videos" in run


def test_every_option_of_every_command_has_a_help_text():
    import argparse

    from a124_core.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    bare = [f"{name} {a.option_strings[-1]}" for name, p in commands.items() for a in p._actions if a.help is None]
    assert set(commands) >= {"run", "render", "animate-mesh", "textual-inversion"} and bare == []


def test_textual_inversion_checks_its_numbers_where_they_are_parsed(tmp_path, capsys):
    argv = ["textual-inversion", "--image", str(PANDA), "--token", "_p_", "--initializer", "panda"]
    argv += ["--out", str(tmp_path / "o")]
    assert "argument --seed: must be a whole number from 0 to 18446744073709551615" in refused(
        capsys, [*argv, "--seed", str(2**64)], tmp_path / "o"
    )
    assert "argument --steps: must be a whole number >= 1, got 0" in refused(
        capsys, [*argv, "--steps", "0"], tmp_path / "o"
    )


def test_argument_errors_name_what_is_wanted(tmp_path, capsys):
    line = one_line(capsys, 2, run_args(tmp_path / "o", "--fps", "x"))
    assert "argument --fps: must be a whole number >= 1, got 'x'" in line and "_positive_int" not in line


@needs_examples
def test_an_animated_gif_is_refused_not_cut_to_its_first_frame(tmp_path, capsys):
    panda = Image.open(PANDA).convert("RGB").resize((64, 64))
    frames = [panda.rotate(angle) for angle in (0, 10, 20)]  # equal frames would be merged into one by the writer
    gif = tmp_path / "clip.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    argv = ["run", "--image", str(gif), "--prompt", "a panda is dancing", "--out", str(tmp_path / "o")]
    assert "is an animated image (3 frames)" in refused(capsys, argv, tmp_path / "o")


def test_the_smoke_script_reruns_into_its_own_folder():
    assert "--overwrite" in (REPO / "scripts" / "smoke.sh").read_text()
