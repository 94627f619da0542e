"""A truncated or zero-filled weight file fails in one line naming it, before any library reads it (issue 16)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from a124_core.checkpoint import load_checkpoint, save_checkpoint
from a124_core.weight_files import CorruptWeightsError, check_safetensors, check_weight_file, check_weight_files


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _zero(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def _drop_last_byte(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


DAMAGE = {
    "truncated": _truncate,
    "zeroed": _zero,
    "one byte short": _drop_last_byte,
    "empty": lambda p: _truncate(p, 0),
}


def _one_line_naming(err: pytest.ExceptionInfo, path: Path, fix: str = "download it again") -> None:
    message = str(err.value)
    assert "\n" not in message and str(path) in message and fix in message, message


@pytest.fixture
def good_safetensors(tmp_path) -> Path:
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.arange(12.0).reshape(3, 4), "b": torch.ones(5, dtype=torch.int64)}, str(path))
    return path


def test_a_whole_file_passes_and_its_header_is_returned(good_safetensors, tmp_path):
    header = check_safetensors(good_safetensors)
    assert header["a"]["shape"] == [3, 4] and header["b"]["dtype"] == "I64"
    pt = tmp_path / "w.bin"
    torch.save({"a": torch.ones(3)}, pt)
    assert check_weight_files(tmp_path) == [pt, good_safetensors]


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_safetensors_is_refused(good_safetensors, damage):
    DAMAGE[damage](good_safetensors)
    with pytest.raises(CorruptWeightsError) as err:
        check_weight_file(good_safetensors)
    _one_line_naming(err, good_safetensors)


def test_padding_after_the_data_is_refused(good_safetensors):
    good_safetensors.write_bytes(good_safetensors.read_bytes() + b"\0" * 16)  # not what safetensors writes
    with pytest.raises(CorruptWeightsError, match="declares 88 bytes of tensor data, the file holds 104"):
        check_safetensors(good_safetensors)


@pytest.mark.parametrize("damage", ["truncated", "zeroed", "empty"])
def test_damaged_torch_archive_is_refused(tmp_path, damage):
    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.randn(64, 64)}, path)
    assert zipfile.is_zipfile(path)
    DAMAGE[damage](path)
    with pytest.raises(CorruptWeightsError) as err:
        check_weight_file(path)
    _one_line_naming(err, path)


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    return dst


@pytest.mark.parametrize("damage", ["truncated", "zeroed"])
@pytest.mark.parametrize("part", ["unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"])
def test_sd15_folder_with_a_damaged_component(tiny_models, tmp_path, part, damage):
    from a124_core.priors.sd import StableDiffusionPrior

    folder = _copy(tiny_models.sd15, tmp_path)
    DAMAGE[damage](folder / part)
    with pytest.raises(CorruptWeightsError) as err:
        StableDiffusionPrior.from_pretrained(folder, device="cpu")
    _one_line_naming(err, folder / part)


@pytest.mark.parametrize(
    "part", ["image_encoder/model.safetensors", "cc_projection/diffusion_pytorch_model.safetensors"]
)
def test_zero123_with_a_truncated_component(tiny_models, tmp_path, part):
    from a124_core.priors.zero123 import Zero123Prior

    folder = _copy(tiny_models.zero123, tmp_path)
    _truncate(folder / part)
    with pytest.raises(CorruptWeightsError) as err:
        Zero123Prior.from_pretrained(folder, device="cpu")
    _one_line_naming(err, folder / part)


def test_single_files_sd15_and_controlnet(tiny_models, tmp_path):
    from a124_core.priors.controlnet_tile import ControlNetTilePrior
    from a124_core.priors.sd import StableDiffusionPrior

    ckpt = _copy(tiny_models.sd15_single_file, tmp_path)
    _zero(ckpt)
    with pytest.raises(CorruptWeightsError) as err:
        StableDiffusionPrior.from_pretrained(ckpt, device="cpu", config_dir=tiny_models.sd15_config_dir)
    _one_line_naming(err, ckpt)
    single = tmp_path / "tile.safetensors"
    single.write_bytes(b"\0" * 100)
    with pytest.raises(CorruptWeightsError) as err:
        ControlNetTilePrior.from_pretrained(single, tiny_models.sd15, device="cpu", controlnet_config_dir=tmp_path)
    _one_line_naming(err, single)


def test_depth_and_clip_folders(tmp_path):
    from a124_core.outputs.metrics import ClipEvaluator
    from a124_core.reference.depth import DepthEstimator
    from a124_core.reference.tiny_depth import build_tiny_dpt
    from tests.tiny_clip import write_tiny_clip

    depth = build_tiny_dpt(tmp_path / "dpt")
    _truncate(depth / "model.safetensors", 0.9)
    with pytest.raises(CorruptWeightsError) as err:
        DepthEstimator(depth)
    _one_line_naming(err, depth / "model.safetensors")
    clip = write_tiny_clip(tmp_path / "clip")
    _zero(clip / "model.safetensors")
    with pytest.raises(CorruptWeightsError) as err:
        ClipEvaluator(clip)
    _one_line_naming(err, clip / "model.safetensors")


def test_own_files_say_to_rerun_the_step(tmp_path):
    from a124_core.training.terms.controlnet import load_tokens

    ckpt = save_checkpoint(tmp_path / "static_latest.safetensors", {"x": torch.ones(300)}, {"step": 3})
    _truncate(ckpt, 0.7)
    with pytest.raises(CorruptWeightsError) as err:
        load_checkpoint(ckpt)
    _one_line_naming(err, ckpt, "delete it and rerun the step that wrote it")
    token = tmp_path / "_panda_.safetensors"
    save_file({"_panda_": torch.randn(1, 32)}, str(token))
    _drop_last_byte(token)
    with pytest.raises(CorruptWeightsError) as err:
        load_tokens("_panda_", token, "a _panda_ is dancing")
    _one_line_naming(err, token, "train the token again")
