import math

import torch

from a124_core.fields.encoding import GridConfig, GridEncoding, GridLayout


def naive_encode(x: torch.Tensor, table: torch.Tensor, config: GridConfig) -> torch.Tensor:
    """Per-point, per-level, per-corner trilinear interpolation written out with plain Python loops."""
    b = math.exp(math.log(config.finest_resolution / config.base_resolution) / (config.num_levels - 1))
    out = []
    for p in x.tolist():
        feats = []
        offset = 0
        for level in range(config.num_levels):
            scale = config.base_resolution * b**level - 1
            res = math.ceil(scale) + 1
            size = min(int(math.ceil(res**3 / 8) * 8), 2**config.log2_entries_per_level)
            u = [((c + config.bound) / (2 * config.bound)) * scale + 0.5 for c in p]
            g = [math.floor(c) for c in u]
            f = [c - gi for c, gi in zip(u, g)]
            acc = torch.zeros(config.features_per_level, dtype=table.dtype)
            for dz in (0, 1):
                for dy in (0, 1):
                    for dx in (0, 1):
                        w = (f[0] if dx else 1 - f[0]) * (f[1] if dy else 1 - f[1]) * (f[2] if dz else 1 - f[2])
                        idx = (g[0] + dx) + (g[1] + dy) * res + (g[2] + dz) * res * res
                        acc = acc + w * table[offset + idx % size]
            feats.append(acc)
            offset += size
        out.append(torch.cat(feats))
    return torch.stack(out)


def test_reference_sizes_match_spec():
    layout = GridLayout.from_config(GridConfig())
    assert len(layout.resolutions) == 16 and layout.resolutions[0] == 16 and layout.resolutions[-1] == 2048
    assert abs(GridConfig().per_level_scale - 2 ** (7 / 15)) < 1e-12
    sizes = layout.sizes()
    assert sizes[0] == 16**3 and max(sizes) == 2**16
    params = layout.num_entries * 2
    assert 1.7e6 < params < 1.9e6  # about 1.8 M parameters (SPEC 3)


def test_grid_matches_naive_trilinear_reference_dense_and_tiled():
    config = GridConfig(num_levels=5, base_resolution=4, finest_resolution=64, log2_entries_per_level=10)
    layout = GridLayout.from_config(config)
    dense = [s == r**3 or s == -(-(r**3) // 8) * 8 for s, r in zip(layout.sizes(), layout.resolutions)]
    assert any(dense) and not all(dense), "the test must cover both dense and tiled levels"
    torch.manual_seed(0)
    enc = GridEncoding(config).double()
    with torch.no_grad():
        enc.embeddings.uniform_(-1, 1)
    x = (torch.rand(64, 3, dtype=torch.float64) * 2 - 1) * 0.999
    x[0] = torch.tensor([-1.0, -1.0, -1.0])
    x[1] = torch.tensor([0.999, 0.5, -0.25])
    assert torch.allclose(enc(x), naive_encode(x, enc.embeddings.detach(), config), atol=1e-10)


def test_grid_gradcheck_float64():
    config = GridConfig(
        num_levels=3, features_per_level=2, base_resolution=2, finest_resolution=8, log2_entries_per_level=6
    )
    enc = GridEncoding(config).double()
    x = torch.rand(16, 3, dtype=torch.float64) * 1.8 - 0.9
    table = enc.embeddings.detach().clone().uniform_(-1, 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: enc.grid(x, t), (table,), eps=1e-6, atol=1e-6)
    # gradient w.r.t. the input points as well (trilinear weights are differentiable)
    x_req = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: enc.grid(p, table.detach()), (x_req,), eps=1e-7, atol=1e-5)


def test_output_dim_and_init_range():
    enc = GridEncoding()
    assert enc.output_dim == 32
    assert float(enc.embeddings.detach().abs().max()) <= 1e-4
