"""The fused hash grid op against the composition: PyTorch on CPU to 1e-6, Triton through its interpreter."""

import os
import subprocess
import sys

import pytest
import torch

from a124_core.fields.grid_kernels import grid_path
from a124_core.fields.hash_encoding import HashGridConfig, HashGridEncoding, HashGridLayout
from tests.paths import REPO

# D = 4 and 3 with dense and hashed levels, and the paper's deformation grid (6 dense, 6 hashed levels, 2^19 rows)
CONFIGS = [
    HashGridConfig(input_dims=4, num_levels=5, base_resolution=3, finest_resolution=40, log2_hashmap_size=10),
    HashGridConfig(input_dims=3, num_levels=4, base_resolution=4, finest_resolution=64, log2_hashmap_size=11),
    HashGridConfig(),
]


def encoder_and_points(config: HashGridConfig, n: int = 2000, seed: int = 0, dtype=torch.float32):
    torch.manual_seed(seed)
    enc = HashGridEncoding(config).to(dtype)
    with torch.no_grad():
        enc.embeddings.uniform_(-1, 1)
    u = torch.rand(n, config.input_dims, dtype=dtype)
    u[0], u[1] = 0.0, 1.0  # both faces (the upper corner wraps in dense levels)
    return enc, u


def outputs_and_grads(enc, u):
    results = {}
    for path in ("reference", "fused"):
        enc.zero_grad()
        with grid_path(path):
            out = enc(u)
        (out * torch.linspace(-1, 1, out.shape[1], dtype=out.dtype)).sum().backward()
        results[path] = (out.detach(), enc.embeddings.grad.clone())
    return results


@pytest.mark.parametrize("config", CONFIGS, ids=["4d", "3d", "paper"])
def test_fused_op_equals_the_composition_forward_and_backward(config):
    """To 1e-6 in float64 (the same code as float32, without its rounding: the op adds corner by corner, the
    composition point by point), and float32 to its rounding."""
    layout = HashGridLayout.from_config(config)
    assert any(layout.hashed) and not all(layout.hashed), "dense and hashed levels"
    exact = outputs_and_grads(*encoder_and_points(config, dtype=torch.float64))
    assert torch.allclose(exact["fused"][0], exact["reference"][0], atol=1e-6, rtol=0)
    assert torch.allclose(exact["fused"][1], exact["reference"][1], atol=1e-6, rtol=0)
    assert exact["reference"][1].abs().max() > 0.5  # the comparison sees real gradients
    single = outputs_and_grads(*encoder_and_points(config))
    assert torch.allclose(single["fused"][0], single["reference"][0], atol=1e-6, rtol=0)
    grad_scale = single["reference"][1].abs().max()
    assert torch.allclose(single["fused"][1], single["reference"][1], atol=1e-5 * grad_scale, rtol=0)


def test_encoder_runs_one_op_and_points_with_grad_take_the_composition():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func._schema.name)
            return func(*args, **(kwargs or {}))

    enc, u = encoder_and_points(CONFIGS[0], 64)
    with Ops() as ops:
        enc(u).sum().backward()
    assert ops.names.count("a124::hash_grid_encode") == 1
    assert ops.names.count("a124::hash_grid_encode_backward") == 1
    assert "aten::index_select" not in ops.names and "aten::bitwise_xor" not in ops.names
    u_req = u.clone().requires_grad_(True)
    with Ops() as ops:
        enc(u_req).sum().backward()
    assert "a124::hash_grid_encode" not in ops.names and u_req.grad.abs().sum() > 0


def test_tcnn_backend_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="use 'auto'"):
        HashGridConfig(backend="tcnn")


TRITON_CHECK = """
import torch
from a124_core.fields.hash_encoding import HashGridConfig, HashGridEncoding
from a124_core.fields import hash_kernels, hash_triton
torch.manual_seed(0)
for cfg in (HashGridConfig(input_dims=4, num_levels=5, base_resolution=3, finest_resolution=40, log2_hashmap_size=10),
            HashGridConfig(input_dims=3, num_levels=3, features_per_level=3, base_resolution=4, finest_resolution=40,
                           log2_hashmap_size=8)):
    enc = HashGridEncoding(cfg)
    table = enc.embeddings.detach().uniform_(-1, 1)
    u = torch.rand(300, cfg.input_dims)
    u[0], u[1] = 0.0, 1.0
    lay = enc.layout
    args = (list(lay.scales), list(lay.strides(cfg.input_dims)), list(lay.offsets), lay.num_dense)
    assert 0 < lay.num_dense < cfg.num_levels
    # the PyTorch op summing in float64 (corners and weights from the same float32 points): no summation-order noise
    expected = hash_kernels.encode_torch(u, table.double(), *args)
    got = hash_triton.encode(u, table, *args)
    grad = torch.randn_like(got)
    grad_expected, grad_got = torch.zeros_like(table, dtype=torch.float64), torch.zeros_like(table)
    hash_kernels.encode_backward_torch(grad_expected, grad.double(), u, *args)
    hash_triton.encode_backward(grad_got, grad, u, *args)
    scale = grad_expected.abs().max().item()
    print((got - expected).abs().max().item(), (grad_got - grad_expected).abs().max().item() / scale)
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
        forward, backward = map(float, line.split())
        assert forward < 1e-6 and backward < 1e-6, done.stdout  # backward: relative to the largest gradient
