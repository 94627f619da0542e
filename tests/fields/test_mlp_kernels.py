"""The fused grid + MLP op against the unfused field: PyTorch on CPU to 1e-6, Triton through its interpreter."""

import os
import subprocess
import sys

import pytest
import torch

from a124_core.fields.encoding import GridConfig
from a124_core.fields.grid4d import Grid4DConfig, Grid4DField
from a124_core.fields.grid_kernels import grid_path
from a124_core.fields.static import FieldConfig, StaticField
from tests.paths import REPO

GRID = GridConfig(num_levels=5, base_resolution=4, finest_resolution=64, log2_entries_per_level=10)


def random_field(dtype=torch.float64, hidden: int = 16) -> StaticField:
    torch.manual_seed(0)
    field = StaticField(FieldConfig(grid=GRID, hidden_dim=hidden)).to(dtype)
    with torch.no_grad():
        field.encoder.embeddings.uniform_(-1, 1)
        for p in field.mlp.parameters():
            p.uniform_(-0.5, 0.5)
    return field


def evaluate(field, x, path: str, density_only: bool = False):
    """Outputs and every parameter's gradient of a weighted sum of the field's outputs."""
    field.zero_grad()
    with grid_path(path):
        if density_only:
            out = field.density(x)[:, None]
        else:
            density, albedo = field(x)
            out = torch.cat([density[:, None], albedo], 1)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    (out * weights).sum().backward()
    return out.detach(), [p.grad.clone() for p in field.parameters()]


@pytest.mark.parametrize("density_only", [False, True])
def test_fused_field_equals_grid_then_mlp(density_only):
    """Forward and the gradients of table, weights and biases: to 1e-6 in float64, to rounding in float32."""
    x = torch.rand(3000, 3, dtype=torch.float64) * 2 - 1
    field = random_field()
    out, grads = evaluate(field, x, "fused", density_only)
    expected, expected_grads = evaluate(field, x, "reference", density_only)
    assert torch.allclose(out, expected, atol=1e-6, rtol=0)
    for got, want in zip(grads, expected_grads):
        assert torch.allclose(got, want, atol=1e-6, rtol=0)
    assert min(g.abs().max() for g in expected_grads) > 1e-3  # every parameter gets a gradient to compare
    field32, x32 = random_field(torch.float32), x.float()
    out32, grads32 = evaluate(field32, x32, "fused", density_only)
    expected32, expected_grads32 = evaluate(field32, x32, "reference", density_only)
    assert torch.allclose(out32, expected32, atol=1e-5, rtol=1e-5)
    for got, want in zip(grads32, expected_grads32):
        assert torch.allclose(got, want, atol=1e-5 * want.abs().max(), rtol=0)


def test_fields_run_one_op_and_points_with_grad_take_the_composition():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func._schema.name)
            return func(*args, **(kwargs or {}))

    field = Grid4DField(Grid4DConfig(FieldConfig(grid=GRID, hidden_dim=16), num_knots=3))
    x = torch.rand(64, 3) * 2 - 1
    frame = field.at_times([0.4])[0]
    with Ops() as ops:
        (frame(x)[0].sum() + frame.density(x).sum() + field(x, 0.7)[1].sum()).backward()
    assert ops.names.count("a124::grid_mlp") == 3 and ops.names.count("a124::grid_mlp_backward") == 3
    assert "aten::addmm" not in ops.names
    x_req = x.clone().requires_grad_(True)
    with Ops() as ops:
        field(x_req, 0.7)[0].sum().backward()
    assert "a124::grid_mlp" not in ops.names and x_req.grad.abs().sum() > 0


TRITON_CHECK = """
import torch
from a124_core.fields.encoding import GridConfig
from a124_core.fields.static import FieldConfig, StaticField
from a124_core.fields import mlp_kernels, mlp_triton
torch.manual_seed(0)
for grid, hidden, k in ((GridConfig(num_levels=4, base_resolution=4, finest_resolution=64, log2_entries_per_level=10),
                         16, 4),
                        (GridConfig(num_levels=2, features_per_level=3, base_resolution=8, finest_resolution=32,
                                    log2_entries_per_level=10), 8, 1)):
    field = StaticField(FieldConfig(grid=grid, hidden_dim=hidden))
    table = field.encoder.embeddings.detach().uniform_(-1, 1)
    w1, b1, w2, b2 = (p.detach().uniform_(-0.5, 0.5) for p in field.mlp.parameters())
    w2, b2 = w2[:k].contiguous(), b2[:k].contiguous()
    x01 = torch.rand(200, 3)
    x01[0], x01[1] = 0.0, 1.0
    lay = field.encoder.grid.layout
    args = (w1, b1, w2, b2, list(lay.scales), list(lay.resolutions), list(lay.offsets))
    # PyTorch in float64 on the same float32 points (corners and weights from them): no summation-order noise
    double = [a.double() if torch.is_tensor(a) else a for a in args]
    expected = mlp_kernels.forward_torch(x01, table.double(), *double)[2]
    got = mlp_triton.forward(x01, table, *args)
    grad = torch.randn_like(got)
    want = mlp_kernels.backward_torch(grad.double(), x01, table.double(), *double)
    have = mlp_triton.backward(grad, x01, table, *args)
    rel = max(((h - w).abs().max() / w.abs().max()).item() for h, w in zip(have, want))
    print((got - expected).abs().max().item() / expected.abs().max().item(), rel)
"""


def test_triton_kernels_match_pytorch_in_the_interpreter():
    """The CUDA kernels, run on CPU tensors by Triton's interpreter: outputs and every gradient."""
    pytest.importorskip("triton", reason="requirements-ci.txt installs triton for this check")
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", TRITON_CHECK], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, done.stdout
    for line in lines:
        forward, backward = map(float, line.split())  # relative to the largest value
        assert forward < 1e-6 and backward < 1e-6, done.stdout
