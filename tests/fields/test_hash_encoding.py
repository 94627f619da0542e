import itertools
import math

import numpy as np
import pytest
import torch

from a124_core.fields.encoding import gather_features
from a124_core.fields.hash_encoding import HashGridConfig, HashGridEncoding, HashGridLayout, hash_corner_lookup


def naive_hash_encode(u: torch.Tensor, table: torch.Tensor, config: HashGridConfig) -> torch.Tensor:
    """tcnn's HashGrid written out per point, per level and per corner with Python integers (uint32 wrap by hand)."""
    dims = config.input_dims
    primes = [1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737]
    log2_b = np.float32(np.log2(np.float32(config.per_level_scale)))
    out = []
    for p in u.tolist():
        feats, offset = [], 0
        for level in range(config.num_levels):
            scale = float(np.float32(np.exp2(np.float32(level) * log2_b)) * np.float32(config.base_resolution) - 1)
            res = math.ceil(scale) + 1
            size = min(int(math.ceil(res**dims / 8) * 8), 2**config.log2_hashmap_size)
            pos = [c * scale + 0.5 for c in p]
            g = [math.floor(c) for c in pos]
            f = [c - gi for c, gi in zip(pos, g)]
            acc = torch.zeros(config.features_per_level, dtype=table.dtype)
            for bits in itertools.product((0, 1), repeat=dims):
                corner = [gi + b for gi, b in zip(g, bits)]
                w = 1.0
                for fd, b in zip(f, bits):
                    w *= fd if b else 1 - fd
                if res**dims <= size:
                    index = sum(c * res**d for d, c in enumerate(corner))
                else:
                    index = 0
                    for c, prime in zip(corner, primes):
                        index ^= (c * prime) % 2**32
                acc = acc + w * table[offset + index % size]
            feats.append(acc)
            offset += size
        out.append(torch.cat(feats))
    return torch.stack(out)


def _random_encoder(config: HashGridConfig) -> HashGridEncoding:
    enc = HashGridEncoding(config).double()
    with torch.no_grad():
        enc.embeddings.uniform_(-1, 1)
    return enc


@pytest.mark.parametrize("dims", [3, 4])
def test_hash_grid_matches_naive_reference_on_dense_and_hashed_levels(dims):
    config = HashGridConfig(
        input_dims=dims, num_levels=5, base_resolution=3, finest_resolution=40, log2_hashmap_size=10
    )
    layout = HashGridLayout.from_config(config)
    assert any(layout.hashed) and not all(layout.hashed), "the test must cover dense and hashed levels"
    torch.manual_seed(dims)
    enc = _random_encoder(config)
    u = torch.rand(48, dims, dtype=torch.float64)
    u[0] = 0.0
    u[1] = 1.0  # the upper corner wraps in dense levels (tcnn's 0.5 offset)
    assert torch.allclose(enc(u), naive_hash_encode(u, enc.embeddings.detach(), config), atol=1e-12)


def test_paper_layout_sizes():
    layout = HashGridLayout.from_config(HashGridConfig())
    assert layout.resolutions == (4, 6, 9, 13, 18, 26, 37, 53, 77, 111, 161, 232)
    assert layout.hashed == (False,) * 6 + (True,) * 6  # 37^4 > 2^19
    assert layout.sizes()[:3] == [256, 1296, 6568] and layout.sizes()[-1] == 2**19  # ceil8(9^4) = 6568
    assert all(s % 8 == 0 for s in layout.sizes())
    assert layout.num_entries == 598_640 + 6 * 2**19  # 7.5 M parameters (2 per entry), 30 MB in float32


def test_hash_grid_gradcheck_float64():
    config = HashGridConfig(input_dims=4, num_levels=3, base_resolution=2, finest_resolution=9, log2_hashmap_size=6)
    assert any(HashGridLayout.from_config(config).hashed)
    enc = _random_encoder(config)
    u = torch.rand(12, 4, dtype=torch.float64) * 0.9 + 0.05
    table = enc.embeddings.detach().clone().requires_grad_(True)
    rows, weights = hash_corner_lookup(u, enc.layout)
    assert torch.autograd.gradcheck(lambda t: gather_features(t, rows, weights), (table,), eps=1e-6, atol=1e-6)
    u_req = u.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(enc, (u_req,), eps=1e-7, atol=1e-5)


def test_bad_configs_and_inputs_are_rejected():
    with pytest.raises(ValueError, match="input_dims"):
        HashGridConfig(input_dims=0)
    with pytest.raises(ValueError, match="log2_hashmap_size"):
        HashGridConfig(log2_hashmap_size=40)
    enc = HashGridEncoding(HashGridConfig(num_levels=2, finest_resolution=8))
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        enc(torch.rand(5, 3))
