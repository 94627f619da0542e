import json

import pytest
import torch
from safetensors.torch import save_file

from a124_core.checkpoint import (
    load_checkpoint,
    optimizer_tensors,
    restore_optimizer,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def test_roundtrip_with_metadata(tmp_path):
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b/c": torch.tensor([1, 2], dtype=torch.int64)}
    meta = {"stage": "static", "step": 12, "config": {"lr": 0.01, "sizes": [1, 2]}}
    path = save_checkpoint(tmp_path / "sub" / "ckpt.safetensors", tensors, meta)
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded_meta == meta
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.safetensors"], "no temporary files left behind"


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", {"x": torch.ones(2)}, {"step": 1})
    with pytest.raises(TypeError):
        save_checkpoint(path, {"x": torch.zeros(2)}, {"step": object()})  # metadata not JSON-serialisable
    tensors, meta = load_checkpoint(path)
    assert meta == {"step": 1} and torch.equal(tensors["x"], torch.ones(2))
    assert len(list(tmp_path.iterdir())) == 1


def test_foreign_safetensors_and_missing_files_are_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    save_file({"w": torch.ones(1)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="not an Animate124 checkpoint"):
        load_checkpoint(tmp_path / "model.safetensors")


def test_optimizer_and_rng_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.9, 0.99), eps=1e-15)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3)).square().sum().backward()
        opt.step()
    tensors, meta = optimizer_tensors(opt)
    json.dumps(meta)  # metadata must be JSON
    save_checkpoint(tmp_path / "o.safetensors", {**tensors, **rng_state()}, {"optim": meta})
    expected_draw = torch.rand(3)
    loaded, loaded_meta = load_checkpoint(tmp_path / "o.safetensors")
    opt2 = torch.optim.Adam(model.parameters(), lr=0.5)
    restore_optimizer(opt2, loaded, loaded_meta["optim"])
    for s1, s2 in zip(opt.state.values(), opt2.state.values()):
        assert torch.equal(s1["exp_avg"], s2["exp_avg"]) and torch.equal(s1["exp_avg_sq"], s2["exp_avg_sq"])
    assert opt2.param_groups[0]["lr"] == 0.1
    set_rng_state(loaded)
    assert torch.equal(torch.rand(3), expected_draw)
