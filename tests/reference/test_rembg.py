"""Background removal through rembg's real API with a tiny stand-in u2net.onnx, and the offline error path."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from a124_core.reference import build_reference, rembg_search_paths

from .tiny_rembg import write_brightness_u2net


def _object_image() -> tuple[Image.Image, np.ndarray]:
    """A bright square (the object) on a dark background: RGB image and its true mask [H, W] bool."""
    rgb = np.full((200, 240, 3), 20, np.uint8)
    truth = np.zeros((200, 240), bool)
    truth[50:150, 60:160] = True
    rgb[truth] = (230, 220, 210)
    return Image.fromarray(rgb), truth


def test_offline_error_names_file_and_folder(empty_homes, monkeypatch):
    comfy = empty_homes / "ComfyUI" / "models" / "rembg"
    monkeypatch.setitem(sys.modules, "rembg", None)  # importing rembg would now fail: it must not be reached
    image, _ = _object_image()
    with pytest.raises(FileNotFoundError) as err:
        build_reference(image, rembg_dirs=[comfy])
    message = str(err.value)
    assert "u2net.onnx" in message and str(comfy / "u2net.onnx") in message
    assert str(empty_homes / "xdg" / "rembg" / "models" / "u2net" / "u2net.onnx") in message
    assert "--mask" in message and "--rembg-model" in message and "Reference node" in message
    assert "\n" not in message  # one line
    assert not (empty_homes / "xdg" / "rembg").exists()  # nothing was created or downloaded


def test_rembg_real_api_with_stand_in_model(empty_homes, monkeypatch):
    pytest.importorskip("rembg")  # first import compiles numba (~1 min, cached afterwards)
    image, truth = _object_image()
    expected = build_reference(image, mask=Image.fromarray(truth.astype(np.uint8) * 255))

    # 1) ComfyUI's models/rembg folder
    comfy = empty_homes / "ComfyUI" / "models" / "rembg"
    write_brightness_u2net(comfy / "u2net.onnx")
    ref = build_reference(image, rembg_dirs=[comfy])
    assert ref.foreground_source == "rembg:u2net"
    iou = (ref.mask.bool() & expected.mask.bool()).sum() / (ref.mask.bool() | expected.mask.bool()).sum()
    assert iou >= 0.97, iou
    assert "U2NET_HOME" not in __import__("os").environ  # the override was undone

    # 2) rembg's own folder (<XDG_DATA_HOME>/rembg/models/u2net/u2net.onnx)
    own = rembg_search_paths("u2net")[0]
    assert own == empty_homes / "xdg" / "rembg" / "models" / "u2net" / "u2net.onnx"
    write_brightness_u2net(own)
    (comfy / "u2net.onnx").unlink()
    ref2 = build_reference(image)
    assert torch.equal(ref2.mask, ref.mask)
