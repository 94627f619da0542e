"""A u2net.onnx stand-in for rembg's real session code (onnx graph built by the tests; no download)."""

from __future__ import annotations

from pathlib import Path

import pytest


def write_brightness_u2net(path: Path) -> None:
    """A u2net stand-in with rembg's u2net interface: input [1, 3, 320, 320] -> d0 [1, 1, 320, 320].

    It outputs the mean of the normalised channels, so bright pixels become foreground: an oracle the test
    can predict, run by onnxruntime inside rembg's own U2netSession.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 320, 320])
    y = helper.make_tensor_value_info("d0", TensorProto.FLOAT, [1, 1, 320, 320])
    node = helper.make_node("ReduceMean", ["input.1"], ["d0"], axes=[1], keepdims=1)
    graph = helper.make_graph([node], "tiny_u2net", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
