"""The fused temporal TV op against the per-pair composition: PyTorch on CPU to 1e-6, Triton in its interpreter."""

import os
import subprocess
import sys

import pytest
import torch

from a124_core.fields.encoding import GridConfig
from a124_core.fields.grid4d import Grid4DConfig, Grid4DField
from a124_core.fields.grid_kernels import grid_path
from a124_core.fields.static import FieldConfig
from tests.paths import REPO

GRID = GridConfig(num_levels=5, base_resolution=4, finest_resolution=64, log2_entries_per_level=10)


def tv_and_grad(field, points, path: str):
    field.zero_grad()
    with grid_path(path):
        tv = field.temporal_tv(points)
    tv.backward()
    return tv.detach(), field.embeddings.grad.clone()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_temporal_tv_equals_the_per_pair_composition(dtype):
    torch.manual_seed(0)
    field = Grid4DField(Grid4DConfig(FieldConfig(grid=GRID), num_knots=5)).to(dtype)
    with torch.no_grad():
        field.embeddings.uniform_(-1, 1)
    points = (torch.rand(2000, 3, dtype=dtype) * 2 - 1) * 1.05  # some outside the box (clamped to its faces)
    fused, fused_grad = tv_and_grad(field, points, "fused")
    expected, expected_grad = tv_and_grad(field, points, "reference")
    tol = 1e-6 if dtype == torch.float64 else 1e-5
    assert torch.allclose(fused, expected, rtol=tol, atol=0)
    assert torch.allclose(fused_grad, expected_grad, atol=tol * expected_grad.abs().max(), rtol=0)
    assert expected_grad.abs().max() > 0 and expected > 0.1


TRITON_CHECK = """
import torch
from a124_core.fields.encoding import GridConfig, GridEncoder
from a124_core.fields import tv_kernels, tv_triton
torch.manual_seed(0)
for cfg, knots in ((GridConfig(num_levels=4, base_resolution=4, finest_resolution=64, log2_entries_per_level=10), 4),
                   (GridConfig(num_levels=2, features_per_level=3, base_resolution=8, finest_resolution=32,
                               log2_entries_per_level=10), 2)):
    grid = GridEncoder(cfg)
    tables = torch.stack([grid.new_table().uniform_(-1, 1) for _ in range(knots)])
    x01 = torch.rand(300, 3)
    x01[0], x01[1] = 0.0, 1.0
    lay = (list(grid.layout.scales), list(grid.layout.resolutions), list(grid.layout.offsets))
    expected = tv_kernels.forward_torch(x01, tables.double(), *lay)  # summed in float64 from float32 corners
    got = tv_triton.forward(x01, tables, *lay)
    grad = torch.tensor(0.7)
    want = tv_kernels.backward_torch(grad.double(), x01, tables.double(), *lay)
    have = tv_triton.backward(grad, x01, tables, *lay)
    print(abs(got.item() - expected.item()) / expected.item(), ((have - want).abs().max() / want.abs().max()).item())
"""


def test_triton_kernels_match_pytorch_in_the_interpreter():
    pytest.importorskip("triton", reason="requirements-ci.txt installs triton for this check")
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", TRITON_CHECK], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, done.stdout
    for line in lines:
        forward, backward = map(float, line.split())  # relative
        assert forward < 1e-6 and backward < 1e-6, done.stdout
