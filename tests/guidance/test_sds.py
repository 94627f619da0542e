"""Score distillation oracles: an analytic denoiser whose data distribution is one target image."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from a124_core.guidance.sds import SDSConfig, resize_to_prior, score_distillation, timestep_bounds, x0_reconstruction
from a124_core.priors.base import NoiseSchedule, Prior, PriorKind


class AnalyticPrior(Prior):
    """Exact denoiser of a point-mass data distribution.

    x0_hat = target, eps_hat = (z_t - sqrt(a) target) / sqrt(1 - a).

    The 'VAE' is z = 2 x - 1 (differentiable, invertible), so latent-space convergence is pixel-space convergence.
    """

    kind = PriorKind.IMAGE_TEXT

    def __init__(self, target: Tensor, image_size: int = 16):
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
        self.schedule = NoiseSchedule(alphas_cumprod=torch.cumprod(1 - betas, 0))
        self.image_size = image_size
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.target_latent = target * 2 - 1
        self.calls: list[tuple[Tensor, Tensor, float]] = []

    def encode_images(self, images: Tensor) -> Tensor:
        return images * 2 - 1

    def predict_noise(self, noisy_latents: Tensor, t: Tensor, condition, guidance_scale: float) -> Tensor:
        self.calls.append((noisy_latents.detach().clone(), t.clone(), guidance_scale))
        a = self.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        eps = (noisy_latents - a.sqrt() * self.target_latent) / (1 - a).sqrt()
        return eps + guidance_scale * (eps - eps)  # both CFG branches agree: the data is one image

    def to(self, device):
        return self


def psnr(a: Tensor, b: Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((a - b) ** 2)))


@pytest.fixture()
def target():
    return torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1


def _fit(loss_fn, key: str, prior: AnalyticPrior, cfg: SDSConfig, steps: int = 300, lr: float = 0.5) -> Tensor:
    image = torch.full((1, 3, 16, 16), 0.5, requires_grad=True)
    opt = torch.optim.SGD([image], lr=lr)
    gen = torch.Generator().manual_seed(1)
    for step in range(steps):
        opt.zero_grad()
        loss_fn(prior, image, None, cfg, progress=step / steps, generator=gen)[key].backward()
        opt.step()
    return image.detach()


def test_sds_converges_to_the_target(target):
    prior = AnalyticPrior(target)
    start = psnr(torch.full_like(target, 0.5), target)
    fitted = _fit(score_distillation, "loss_sds", prior, SDSConfig(guidance_scale=100.0, t_range=(0.02, 0.98)))
    assert start < 15.0
    assert psnr(fitted, target) >= 30.0


def test_x0_reconstruction_converges_to_the_target(target):
    prior = AnalyticPrior(target)
    fitted = _fit(
        x0_reconstruction, "loss_x0", prior, SDSConfig(guidance_scale=7.5, t_range=(0.2, 0.8)), steps=60, lr=0.2
    )
    assert psnr(fitted, target) >= 30.0


def test_sds_gradient_is_weight_times_one_minus_alpha_bar_times_residual(target):
    prior = AnalyticPrior(target)
    z = torch.rand(2, 3, 16, 16, requires_grad=True)
    weight = torch.tensor([0.7, 2.0])
    out = score_distillation(
        prior, z, None, SDSConfig(guidance_scale=3.0), weight=weight, generator=torch.Generator().manual_seed(0)
    )
    out["loss_sds"].backward()
    z_t, t, scale = prior.calls[-1]
    assert scale == 3.0 and torch.equal(t, out["t"])
    a = prior.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    latents = z.detach() * 2 - 1
    noise = (z_t - a.sqrt() * latents) / (1 - a).sqrt()
    eps_hat = (z_t - a.sqrt() * prior.target_latent) / (1 - a).sqrt()
    grad_latent = weight.view(-1, 1, 1, 1) * (1 - a) * (eps_hat - noise)
    torch.testing.assert_close(z.grad, 2 * grad_latent / 2, rtol=1e-4, atol=1e-6)  # dz/dx = 2, / batch 2
    torch.testing.assert_close(out["loss_sds"], 0.5 * (grad_latent**2).sum() / 2, rtol=1e-4, atol=1e-6)


def test_x0_loss_value_and_gradient(target):
    prior = AnalyticPrior(target)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    out = x0_reconstruction(
        prior, x, None, SDSConfig(), weight=torch.tensor([1.0, 0.0]), generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(out["x0"], prior.target_latent.expand(2, -1, -1, -1), rtol=1e-4, atol=1e-4)
    out["loss_x0"].backward()
    diff = (x.detach() * 2 - 1) - prior.target_latent
    torch.testing.assert_close(out["loss_x0"], 0.5 * (diff[0] ** 2).sum() / 2, rtol=1e-4, atol=1e-4)
    assert x.grad[1].abs().sum() == 0 and x.grad[0].abs().sum() > 0


def test_grad_clip_bounds_each_element(target):
    prior = AnalyticPrior(target)
    x = torch.zeros(1, 3, 16, 16, requires_grad=True)  # far from the target: large residuals
    out = score_distillation(
        prior, x, None, SDSConfig(grad_clip=0.01), weight=100.0, generator=torch.Generator().manual_seed(0)
    )
    out["loss_sds"].backward()
    assert x.grad.abs().max() <= 2 * 0.01 + 1e-7  # |dL/dz| <= clip, dz/dx = 2
    assert x.grad.abs().max() > 0.019


def test_non_finite_gradients_are_zeroed(target):
    class Broken(AnalyticPrior):
        def predict_noise(self, noisy_latents, t, condition, guidance_scale):
            eps = super().predict_noise(noisy_latents, t, condition, guidance_scale)
            eps[..., 0, 0] = float("nan")
            return eps

    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    score_distillation(Broken(target), x, None, SDSConfig())["loss_sds"].backward()
    assert torch.isfinite(x.grad).all() and x.grad[..., 0, 0].abs().sum() == 0


def test_timestep_range_and_annealing(target):
    cfg = SDSConfig(t_range=(0.2, 0.6))
    assert timestep_bounds(cfg, 1000) == (200, 600)
    annealed = SDSConfig(t_range=(0.02, 0.98), t_max_end=0.5)
    assert timestep_bounds(annealed, 1000, 0.0) == (20, 980)
    assert timestep_bounds(annealed, 1000, 0.5) == (20, 740)
    assert timestep_bounds(annealed, 1000, 1.0) == (20, 500)
    prior = AnalyticPrior(target)
    gen = torch.Generator().manual_seed(0)
    ts = torch.cat(
        [score_distillation(prior, torch.rand(4, 3, 16, 16), None, cfg, generator=gen)["t"] for _ in range(50)]
    )
    assert ts.min() >= 200 and ts.max() <= 600 and ts.min() < 230 and ts.max() > 570
    for bad in ({"t_range": (0.7, 0.2)}, {"t_range": (0.0, 1.5)}, {"grad_clip": 0.0}, {"t_max_end": 0.1}):
        with pytest.raises(ValueError):
            SDSConfig(**bad)


def test_renders_are_resized_to_the_prior_size(target):
    prior = AnalyticPrior(target, image_size=16)
    x = torch.rand(1, 3, 40, 40, requires_grad=True)
    score_distillation(prior, x, None, SDSConfig())["loss_sds"].backward()
    assert prior.calls[-1][0].shape == (1, 3, 16, 16) and x.grad.shape == x.shape
    same = torch.rand(1, 3, 16, 16)
    assert resize_to_prior(same, 16) is same
    assert resize_to_prior(torch.rand(2, 3, 32, 64), (16, 24)).shape == (2, 3, 16, 24)
    with pytest.raises(ValueError, match="renders"):
        score_distillation(prior, torch.rand(3, 16, 16), None, SDSConfig())
    with pytest.raises(ValueError, match="one value per sample"):
        score_distillation(prior, torch.rand(2, 3, 16, 16), None, SDSConfig(), weight=torch.ones(3))
