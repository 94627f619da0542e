"""Input files decoded and every reference check run before any model is built (issue 16)."""

from __future__ import annotations

import shutil

import pytest
import torch
from PIL import Image

from a124_core.reference import build_reference, check_reference_inputs, load_image_file


@pytest.fixture
def panda_png(examples, tmp_path):
    return shutil.copy(examples / "panda-dance" / "rgba.png", tmp_path / "panda.png")


def _one_line(err: pytest.ExceptionInfo, *parts: str) -> str:
    message = str(err.value)
    assert "\n" not in message and all(p in message for p in parts), message
    return message


def test_a_good_file_is_decoded_whole(panda_png):
    image = load_image_file(panda_png)
    with Image.open(panda_png) as reference:
        assert image.mode == reference.mode and image.size == reference.size
        assert image.tobytes() == reference.tobytes()


@pytest.mark.parametrize("keep", [0.5, 0.02, 60 / 296403])
def test_truncated_png(panda_png, keep):
    data = panda_png.read_bytes()
    panda_png.write_bytes(data[: max(60, int(len(data) * keep))])
    with pytest.raises(ValueError) as err:
        load_image_file(panda_png)
    _one_line(err, str(panda_png), "truncated or damaged")


@pytest.mark.parametrize("content", [b"hello, not an image\n", b"", bytes(4096)])
def test_not_an_image(tmp_path, content):
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        load_image_file(path, "mask image")
    _one_line(err, "mask image", str(path), "PNG, JPEG or WebP")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_image_file(tmp_path / "nope.png")
    _one_line(err, "nope.png", "does not exist")
    with pytest.raises(ValueError) as err:
        load_image_file(tmp_path)
    _one_line(err, "is a folder")


def test_check_finds_what_build_would_refuse(examples, tmp_path, monkeypatch):
    """Each case: check_reference_inputs raises what build_reference raises, without rembg or a model."""
    monkeypatch.setitem(__import__("sys").modules, "rembg", None)  # the check must never import it
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    rgba = load_image_file(examples / "panda-dance" / "rgba.png")
    rgb = rgba.convert("RGB")
    empty = torch.zeros(rgba.height, rgba.width)
    cases = [
        ((rgb,), {}, FileNotFoundError, "--mask"),  # no alpha, no mask, no rembg model
        ((rgb, empty), {}, ValueError, "foreground is empty"),
        ((rgba,), {"depth_model": tmp_path / "no-depth"}, FileNotFoundError, "does not exist"),
        ((rgba.resize((8, 8)),), {}, ValueError, "at least 16"),
    ]
    for args, kwargs, error, text in cases:
        with pytest.raises(error, match=text):
            check_reference_inputs(*args, **kwargs)
        with pytest.raises(error, match=text):
            build_reference(*args, **kwargs)
    raw = check_reference_inputs(rgba)
    assert raw.alpha is not None and raw.rgb.shape == (3, rgba.height, rgba.width)
