"""The fused grid op against the PyTorch composition: the PyTorch implementation exactly, Triton in its interpreter."""

import os
import subprocess
import sys

import pytest
import torch

from a124_core.fields.encoding import GridConfig, GridEncoding
from a124_core.fields.grid4d import Grid4DConfig, Grid4DField
from a124_core.fields.grid_kernels import encode_backward_torch, encode_torch, grid_path
from a124_core.fields.static import FieldConfig
from tests.paths import REPO

# dense and tiled levels, F = 2; and a grid whose finest level needs int64 rows (res * size > 2^31)
CONFIGS = [
    GridConfig(num_levels=5, base_resolution=4, finest_resolution=64, log2_entries_per_level=10),
    GridConfig(num_levels=2, base_resolution=16, finest_resolution=4096, log2_entries_per_level=20),
]


def table_and_points(config: GridConfig, n: int = 3000, seed: int = 0):
    torch.manual_seed(seed)
    enc = GridEncoding(config)
    with torch.no_grad():
        enc.embeddings.uniform_(-1, 1)
    x = torch.rand(n, 3) * 2 - 1
    x[0], x[1] = -1.0, 1.0  # both faces of the box (clamped, 0 and 1 after normalising)
    return enc, x


@pytest.mark.parametrize("config", CONFIGS)
def test_fused_op_equals_the_composition_forward_and_backward(config):
    enc, x = table_and_points(config)
    tables = [enc.embeddings.detach().clone().requires_grad_(True) for _ in range(2)]
    with grid_path("reference"):
        expected = enc.grid(x, tables[0])
    fused = enc.grid(x, tables[1])
    grad = torch.randn_like(expected)
    (expected * grad).sum().backward()
    (fused * grad).sum().backward()
    assert torch.allclose(fused, expected, atol=1e-6, rtol=1e-6)
    assert torch.allclose(tables[1].grad, tables[0].grad, atol=1e-5, rtol=0)
    assert tables[0].grad.abs().max() > 1.0


def test_fused_op_is_what_encoders_run_and_records_one_op():
    """The encoder dispatches to `a124::grid_encode` (one op forward, one backward); points that need a gradient
    get it from the points' backward op."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func._schema.name)
            return func(*args, **(kwargs or {}))

    enc, x = table_and_points(CONFIGS[0], 64)
    with Ops() as ops:
        enc(x).sum().backward()
    assert ops.names.count("a124::grid_encode") == 1 and ops.names.count("a124::grid_encode_backward") == 1
    assert "aten::index_select" not in ops.names
    x_req = x.clone().requires_grad_(True)
    with Ops() as ops:
        enc(x_req).sum().backward()
    assert ops.names.count("a124::grid_encode_points_backward") == 1 and "aten::index_select" not in ops.names


@pytest.mark.parametrize("config", CONFIGS)
def test_point_gradients_equal_the_composition(config):
    """d(features)/d(points) of the fused op (the deformation field's canonical lookup at x + d) against autograd
    through the composition's trilinear weights."""
    enc, x = table_and_points(config)
    x = x * 0.99  # inside the box: the normalising clamp has zero gradient on the faces either way
    grads = {}
    weights = torch.randn(x.shape[0], enc.output_dim)
    for path in ("reference", "fused"):
        points = x.clone().requires_grad_(True)
        enc.zero_grad()
        with grid_path(path):
            (enc(points) * weights).sum().backward()
        grads[path] = (points.grad, enc.embeddings.grad.clone())
    scale = grads["reference"][0].abs().max()
    assert scale > 1.0
    assert torch.allclose(grads["fused"][0], grads["reference"][0], atol=1e-6 * scale, rtol=0)
    assert torch.allclose(grads["fused"][1], grads["reference"][1], atol=1e-5, rtol=0)


def test_dynamic_field_temporal_tv_and_frames_agree_across_paths():
    field = Grid4DField(Grid4DConfig(FieldConfig(grid=CONFIGS[0]), num_knots=4))
    with torch.no_grad():
        field.embeddings.uniform_(-1, 1)
    points = torch.rand(500, 3) * 2 - 1
    results = {}
    for path in ("reference", "fused"):
        field.zero_grad()
        with grid_path(path):
            frame = field.at_times([0.3])[0]
            loss = field.temporal_tv(points) + frame(points)[0].sum()
        loss.backward()
        results[path] = (loss.detach(), field.embeddings.grad.clone())
    assert torch.allclose(results["fused"][0], results["reference"][0], rtol=1e-6)
    assert torch.allclose(results["fused"][1], results["reference"][1], atol=1e-5, rtol=1e-5)


def test_grid_path_rejects_unknown_names():
    with pytest.raises(ValueError, match="grid path"), grid_path("tcnn"):
        pass


TRITON_CHECK = """
import torch
from a124_core.fields.encoding import GridConfig, GridEncoding
from a124_core.fields import grid_kernels, grid_triton
torch.manual_seed(0)
for cfg in (GridConfig(num_levels=4, base_resolution=4, finest_resolution=64, log2_entries_per_level=10),
            GridConfig(num_levels=2, features_per_level=3, base_resolution=8, finest_resolution=32,
                       log2_entries_per_level=10)):
    enc = GridEncoding(cfg)
    table = enc.embeddings.detach().uniform_(-1, 1)
    x01 = torch.rand(300, 3)
    x01[0], x01[1] = 0.0, 1.0
    layout = (list(enc.grid.layout.scales), list(enc.grid.layout.resolutions), list(enc.grid.layout.offsets))
    expected = grid_kernels.encode_torch(x01, table, *layout)
    got = grid_triton.encode(x01, table, *layout)
    grad = torch.randn_like(expected)
    grad_expected, grad_got = torch.zeros_like(table), torch.zeros_like(table)
    grid_kernels.encode_backward_torch(grad_expected, grad, x01, *layout)
    grid_triton.encode_backward(grad_got, grad, x01, *layout)
    points_expected = grid_kernels.encode_points_backward_torch(grad, x01, table, *layout)
    points_got = grid_triton.encode_points_backward(grad, x01, table, *layout)
    points = ((points_got - points_expected).abs().max() / points_expected.abs().max()).item()
    print((got - expected).abs().max().item(), (grad_got - grad_expected).abs().max().item(), points)
"""


def test_triton_kernels_match_pytorch_in_the_interpreter():
    """The CUDA kernels, run on CPU tensors by Triton's interpreter: outputs and table gradients."""
    pytest.importorskip("triton", reason="requirements-ci.txt installs triton for this check")
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", TRITON_CHECK], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, done.stdout
    for line in lines:
        forward, backward, points = map(float, line.split())
        assert forward < 1e-6 and backward < 1e-5 and points < 1e-6, done.stdout


def test_pytorch_implementation_uses_int32_rows_where_they_fit():
    from a124_core.fields.grid_kernels import corners

    for config, dtype in zip(CONFIGS, (torch.int32, torch.long)):
        enc, x = table_and_points(config, 10)
        layout = enc.grid.layout
        args = (list(layout.scales), list(layout.resolutions), list(layout.offsets))
        x01 = enc.grid.normalize(x)
        rows, weights = corners(x01, *args)
        assert rows.dtype == dtype and rows.shape == (10, config.num_levels, 8)
        assert torch.allclose(weights.sum(-1), torch.ones(10, config.num_levels))
        out = encode_torch(x01, enc.embeddings.detach(), *args)
        grad_table = torch.zeros_like(enc.embeddings)
        encode_backward_torch(grad_table, torch.ones_like(out), x01, *args)
        assert torch.allclose(grad_table.sum(0), torch.full((2,), 10.0 * config.num_levels))  # weights sum to 1
