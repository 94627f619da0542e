"""Issue 28 (bad input, round two) on the node side: each case that has a node input is refused by the node's
validation in one line before anything trains or is written; a failed write is one line naming the file."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import executor
import pytest
import torch
from node_env import REPO, node_classes
from test_output_files import static_scene
from test_workflows import mappings  # noqa: F401  (the fixture)
from tiny_settings import tiny

from tests.disk_full import no_space_for, small_tmpfs

WORKFLOWS = REPO / "workflows"


def load(name: str) -> dict:
    return tiny(json.loads((WORKFLOWS / name).read_text()))


def refused(prompt: dict, nodes: dict, out: Path, expected: str) -> str:
    """The prompt fails validation with `expected` in one line; nothing under output/animate124 is new."""
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(executor.ValidationError, match=re.escape(expected)) as caught:
        executor.run(prompt, nodes)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before, "a refused prompt wrote files"
    return message


@pytest.fixture
def out(comfy_env) -> Path:
    return Path(comfy_env["folder_paths"].get_output_directory())


# 1. A full disk ------------------------------------------------------------------------------------------------------
def test_a_full_disk_under_save_scene_is_one_line(pack, out):
    from a124_core.checkpoint import WriteFailed

    with small_tmpfs(out / "animate124" / "scenes", "64k", "test_a_failed_checkpoint_write_is_one_line") as disk:
        with pytest.raises(WriteFailed) as caught:
            node_classes(pack)["A124_SaveScene"].execute(static_scene(), "unit")
        line = str(caught.value)
        assert "\n" not in line and "unit_static_00001.safetensors" in line and "No space left on device" in line
        assert os.listdir(disk) == [], "a failed write leaves no partial file"


def test_a_failed_checkpoint_write_is_one_line(pack, out, monkeypatch, panda_rgba):
    from a124_core import checkpoint

    monkeypatch.setattr(checkpoint, "save_file", no_space_for("static.safetensors", checkpoint.save_file))
    ref = node_classes(pack)["A124_Reference"].execute(panda_rgba[0], 0.2, mask=panda_rgba[1])[0]
    with pytest.raises(checkpoint.WriteFailed) as caught:
        node_classes(pack)["A124_StaticStage"].execute("", "smoke", 2, 5, reference=ref, run_name="full")
    line = str(caught.value)
    assert "\n" not in line and line.startswith("Could not write ") and "full/static.safetensors" in line
    assert "No space left on device" in line


# 2. Folders the nodes write ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("workflow", "folder", "expected"),
    [
        ("animate124_full_api.json", "checkpoints/animate124", "or choose another run_name"),
        ("animate124_full_api.json", "scenes", "is a file where a folder is needed; move it."),
        ("animate124_full_api.json", "videos", "is a file where a folder is needed; move it."),
        ("animate124_full_api.json", "embeddings", "is a file where a folder is needed; move it."),
        ("animate124_animate_mesh_api.json", "meshes", "is a file where a folder is needed; move it."),
        ("animate124_animate_mesh_api.json", "checkpoints", "or choose another run_name"),
    ],
)
def test_a_file_where_a_node_writes_a_folder_is_refused_first(mappings, out, workflow, folder, expected):  # noqa: F811
    blocked = out / "animate124" / folder
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file, not a folder")
    message = refused(load(workflow), mappings, out, expected)
    assert f"{blocked} is a file where a folder is needed" in message


@pytest.mark.parametrize("name", ["../elsewhere", "/tmp/abs", "a:b"])
def test_a_run_name_outside_the_checkpoints_folder_is_refused(mappings, out, name):  # noqa: F811
    prompt = load("animate124_full_api.json")
    prompt["8"]["inputs"]["run_name"] = name
    refused(prompt, mappings, out, f"run_name {name!r} must be a folder name under output/animate124/checkpoints")


# 3 and 4. Numbers ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("nan"), "arap_weight=nan is not a finite number."),
        (float("inf"), "arap_weight=inf is not a finite number."),
        (-1.0, "arap_weight=-1.0 is outside [0.0, 1000000.0]."),
    ],
)
def test_arap_weight_must_be_finite_and_not_negative(mappings, out, value, expected):  # noqa: F811
    prompt = load("animate124_animate_mesh_api.json")
    prompt["3"]["inputs"]["arap_weight"] = value
    refused(prompt, mappings, out, expected)


@pytest.mark.parametrize("seed", [2**64, 99999999999999999999, -(2**63) - 1, -1])
@pytest.mark.parametrize(
    ("workflow", "node"), [("animate124_full_api.json", "9"), ("animate124_animate_mesh_api.json", "3")]
)
def test_seeds_outside_the_declared_range_are_refused(mappings, out, seed, workflow, node):  # noqa: F811
    prompt = load(workflow)
    prompt[node]["inputs"]["training_seed"] = seed
    refused(prompt, mappings, out, f"training_seed={seed} outside [0, 2147483647]")


def test_every_seed_input_fits_the_generator(pack, comfy_env):
    """Every node's seed range lies inside what torch.Generator.manual_seed takes, which the library checks too."""
    from a124_core.presets import SEED_MAX, preset

    seeds = [i for cls in pack.NODES for i in cls.GET_SCHEMA().inputs if i.id == "training_seed"]
    assert len(seeds) >= 5 and all(i.min >= 0 and i.max <= SEED_MAX for i in seeds)
    torch.Generator().manual_seed(SEED_MAX)
    with pytest.raises(ValueError, match="from 0 to 18446744073709551615"):
        preset("smoke").with_seed(SEED_MAX + 1)


# 6. A resumed stage never mixes two runs ----------------------------------------------------------------------------
def test_resuming_a_stage_trained_on_another_upstream_scene_is_refused(pack, out, monkeypatch, panda_rgba):
    """The coarse stage is interrupted (its _latest checkpoint records the static scene's digest); the static stage
    is trained again (another seed: another scene); resuming the coarse checkpoint on the new scene is one line."""
    import fake_comfy

    nodes = node_classes(pack)
    ref = nodes["A124_Reference"].execute(panda_rgba[0], 0.2, mask=panda_rgba[1])[0]
    first = nodes["A124_StaticStage"].execute("", "smoke", 2, 5, reference=ref, run_name="mix")[0]
    fake_comfy.install(monkeypatch, fake_comfy.make_comfy(interrupt_after=1))
    coarse = nodes["A124_CoarseStage"]
    with pytest.raises(fake_comfy.InterruptProcessingException):
        coarse.execute(first, "a panda is dancing", "smoke", 4, 5, reference=ref, run_name="mix")
    fake_comfy.install(monkeypatch, fake_comfy.make_comfy())
    latest = "checkpoints/mix/coarse_latest.safetensors"
    assert coarse.validate_inputs(resume_from=latest) is True
    again = nodes["A124_StaticStage"].execute("", "smoke", 2, 6, reference=ref, run_name="mix")[0]
    with pytest.raises(ValueError, match="was trained on another static scene than the one wired in") as caught:
        coarse.execute(again, "a panda is dancing", "smoke", 4, 5, reference=ref, run_name="mix", resume_from=latest)
    assert "\n" not in str(caught.value)
    resumed = coarse.execute(
        first, "a panda is dancing", "smoke", 4, 5, reference=ref, run_name="mix", resume_from=latest
    )
    assert resumed[0].step == 4  # the scene it was trained on: it continues


# 5. Another run's files: a fresh node run replaces only its own stage's checkpoint, and says so in one line --
def test_a_fresh_stage_run_says_which_earlier_checkpoint_it_replaces(pack, out, panda_rgba, capsys):
    nodes = node_classes(pack)
    ref = nodes["A124_Reference"].execute(panda_rgba[0], 0.2, mask=panda_rgba[1])[0]
    nodes["A124_StaticStage"].execute("", "smoke", 2, 5, reference=ref, run_name="again")
    assert "replaces" not in capsys.readouterr().out
    nodes["A124_StaticStage"].execute("", "smoke", 2, 6, reference=ref, run_name="again")
    lines = [line for line in capsys.readouterr().out.splitlines() if "replaces" in line]
    assert len(lines) == 1 and "static.safetensors" in lines[0] and "run_name" in lines[0], lines


# 7. Prompts ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("workflow", "node"),
    [
        ("animate124_full_api.json", "8"),
        ("animate124_full_api.json", "9"),
        ("animate124_full_api.json", "10"),
        ("animate124_animate_mesh_api.json", "3"),
    ],
)
def test_a_prompt_without_a_word_is_refused(mappings, out, workflow, node):  # noqa: F811
    prompt = load(workflow)
    prompt[node]["inputs"]["prompt"] = "!!! ???"
    refused(prompt, mappings, out, "prompt '!!! ???' has no word in it; describe the subject and motion")


def test_embeddings_and_other_scripts_are_words_for_the_nodes(pack, comfy_env):
    """ComfyUI's text encoders resolve `embedding:name`, so the nodes take it; a Chinese prompt has words."""
    stage = node_classes(pack)["A124_CoarseStage"]
    assert stage.validate_inputs(prompt="embedding:panda is dancing") is True
    assert stage.validate_inputs(prompt="一只熊猫在跳舞") is True
    assert stage.validate_inputs(prompt="") is True  # an empty prompt is refused by the prior that needs one


# 8. File modes -------------------------------------------------------------------------------------------------------
def test_node_files_get_the_umask_mode(pack, out):
    mask = os.umask(0o022)
    try:
        path = Path(node_classes(pack)["A124_SaveScene"].execute(static_scene(), "unit")[0])
    finally:
        os.umask(mask)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


# 9. An animation where one image is wanted ---------------------------------------------------------------------------
def test_a_batch_of_images_is_not_cut_to_its_first(pack, comfy_env, panda_rgba):
    frames = panda_rgba[0].expand(3, -1, -1, -1)
    with pytest.raises(ValueError, match=r"^image is a batch of 3 images") as caught:
        node_classes(pack)["A124_Reference"].execute(frames, 0.2)
    assert "\n" not in str(caught.value)
