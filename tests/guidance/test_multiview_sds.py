"""Multi-view x0-reconstruction SDS: MVDream-threestudio's timesteps and std rescale, the target an exact prior gives,
renders pulled to the views the camera matrices encode, and the real tiny MVDream end to end."""

from __future__ import annotations

import pytest
import torch

from a124_core.guidance.multiview_sds import (
    MultiViewSDSConfig,
    multiview_sds,
    multiview_timestep_bounds,
    rescaled_x0,
)
from a124_core.multiview_cameras import sample_multiview_cameras
from tests.oracle import scenes
from tests.oracle.multiview import oracle_with_views

SIZE = 32


def test_timesteps_anneal_like_mvdream_threestudio():
    cfg = MultiViewSDSConfig()
    assert multiview_timestep_bounds(cfg, 1000, 0.0) == (980, 980)  # [0, 0.98, x, 8000] ramps start at 0.98
    assert multiview_timestep_bounds(cfg, 1000, 0.4) == (500, 740)
    assert multiview_timestep_bounds(cfg, 1000, 0.8) == (20, 500)
    assert multiview_timestep_bounds(cfg, 1000, 1.0) == (20, 500)
    with pytest.raises(ValueError, match="progress"):
        multiview_timestep_bounds(cfg, 1000, 1.5)
    with pytest.raises(ValueError, match="t_end"):
        MultiViewSDSConfig(t_end=(0.6, 0.5))


def test_rescale_is_threestudio_formula():
    """threestudio-mvdream: factor = std(x0_nocfg, per group of n_view) / std(x0_cfg), x0 = r x0 factor + (1-r) x0."""
    gen = torch.Generator().manual_seed(0)
    x0, x0_c = torch.randn(8, 4, 5, 5, generator=gen) * 3, torch.randn(8, 4, 5, 5, generator=gen)
    n, r = 4, 0.5
    nocfg, cfg = x0_c.view(-1, n, *x0_c.shape[1:]), x0.view(-1, n, *x0.shape[1:])
    factor = (nocfg.std([1, 2, 3, 4], keepdim=True) + 1e-8) / (cfg.std([1, 2, 3, 4], keepdim=True) + 1e-8)
    expected = r * (x0.clone() * factor.squeeze(1).repeat_interleave(n, dim=0)) + (1 - r) * x0
    torch.testing.assert_close(rescaled_x0(x0, x0_c, n, r), expected)
    assert rescaled_x0(x0, x0_c, n, 0.0) is x0


def _scene(groups: int = 2, seed: int = 0):
    return oracle_with_views(groups, seed, SIZE)


def test_target_is_the_truth_of_the_views_the_matrices_encode():
    oracle, views, truth = _scene()
    text = oracle.text_condition("a panda")
    images = torch.rand(8, 3, 24, 24, generator=torch.Generator().manual_seed(3), requires_grad=True)
    out = multiview_sds(oracle, images, oracle.multiview_condition(text, views.matrices), progress=0.5,
                        generator=torch.Generator().manual_seed(1))  # fmt: skip
    torch.testing.assert_close(out["x0"], truth * 2 - 1, rtol=0, atol=1e-4)
    assert out["t"].unique().numel() == 1 and 350 <= int(out["t"][0]) <= 860
    assert oracle.calls == 1  # both CFG branches from one batched call
    out["loss_sds"].backward()
    assert images.grad.abs().sum() > 0
    shuffled = oracle.multiview_condition(text, views.matrices[torch.tensor([3, 0, 1, 2, 7, 4, 5, 6])])
    wrong = multiview_sds(oracle, images, shuffled, generator=torch.Generator().manual_seed(1))
    assert (wrong["x0"] - (truth * 2 - 1)).abs().mean() > 0.05
    with pytest.raises(ValueError, match="multiple of 4 views"):
        multiview_sds(oracle, images[:6], oracle.multiview_condition(text, views.matrices))


def _fit(oracle, matrices, truth, steps=120) -> float:
    logits = torch.zeros(8, 3, SIZE, SIZE, requires_grad=True)  # grey start
    opt = torch.optim.Adam([logits], lr=0.1)
    cond = oracle.multiview_condition(oracle.text_condition("a panda"), matrices)
    gen = torch.Generator().manual_seed(0)
    for step in range(steps):
        opt.zero_grad()
        multiview_sds(oracle, torch.sigmoid(logits), cond, progress=step / steps, generator=gen)["loss_sds"].backward()
        opt.step()
    return scenes.psnr(torch.sigmoid(logits).detach(), truth)


def test_sds_pulls_each_view_to_its_cameras_render_and_wrong_cameras_fail():
    oracle, views, truth = _scene()
    good = _fit(oracle, views.matrices, truth)
    flipped = views.matrices.clone()
    flipped[:, 0, :] *= -1  # x -> -x in the world: the mirrored scene (azimuth sign flipped, a valid camera again)
    flipped[:, :, 0] *= -1
    bad = _fit(oracle, flipped, truth)
    print(f"multi-view SDS fit: {good:.1f} dB, mirrored cameras {bad:.1f} dB")
    assert good > 25.0 and bad < 18.0, (good, bad)


def test_real_tiny_mvdream_runs_end_to_end(tiny_models):
    from a124_core.priors.mvdream import MVDreamPrior

    prior = MVDreamPrior.from_pretrained(tiny_models.mvdream, device="cpu", tokenizer_dir=tiny_models.clip_tokenizer)
    views = sample_multiview_cameras(2, generator=torch.Generator().manual_seed(0))
    cond = prior.multiview_condition(prior.text_condition("a panda"), views.matrices)
    images = torch.rand(8, 3, 16, 16, requires_grad=True)
    out = multiview_sds(prior, images, cond, progress=0.0, generator=torch.Generator().manual_seed(0))
    out["loss_sds"].backward()
    assert torch.isfinite(out["loss_sds"]) and images.grad.abs().sum() > 0
    assert int(out["t"][0]) == 980 and out["x0"].shape == (8, 4, 16, 16)
