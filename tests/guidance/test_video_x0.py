"""Dream-in-4D's video guidance: one-step x0 target in latent and decoded-RGB space, t annealed at both ends."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from a124_core.guidance.sds import SDSConfig, timestep_bounds
from a124_core.guidance.video_x0 import check_decodes, x0_video_guidance
from a124_core.priors.base import NoiseSchedule, Prior, PriorKind


class ClipPrior(Prior):
    """Exact denoiser of one target clip [F, 3, H, W] with an invertible 'VAE' z = 2 x - 1 ([1, 3, F, H, W])."""

    kind = PriorKind.VIDEO_TEXT

    def __init__(self, target: Tensor):
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
        self.schedule = NoiseSchedule(alphas_cumprod=torch.cumprod(1 - betas, 0))
        self.image_size = tuple(target.shape[-2:])
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.target = self.encode_images(target)
        self.t: list[int] = []

    def encode_images(self, images: Tensor) -> Tensor:
        return (images * 2 - 1).permute(1, 0, 2, 3)[None]

    def decode_latents(self, latents: Tensor) -> Tensor:
        return ((latents[0].permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1)

    def predict_noise(self, noisy: Tensor, t: Tensor, condition, guidance_scale: float) -> Tensor:
        self.t += t.tolist()
        a = self.schedule.alphas_cumprod[t].view(-1, 1, 1, 1, 1)
        return (noisy - a.sqrt() * self.target) / (1 - a).sqrt()

    def to(self, device):
        return self


CONFIG = SDSConfig(guidance_scale=100.0, t_range=(0.99, 0.99), t_min_end=0.2, t_max_end=0.5)


def test_latent_and_rgb_losses_pull_the_clip_at_the_one_step_target():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(6, 3, 8, 12, generator=g)
    frames = torch.rand(6, 3, 4, 6, generator=g, requires_grad=True)  # rendered at half the prior's size
    out = x0_video_guidance(ClipPrior(target), frames, None, CONFIG, 0.1, 0.0, g)
    up = torch.nn.functional.interpolate(frames, size=(8, 12), mode="bilinear", align_corners=False)
    # an exact denoiser's one-step x0 is the target at any t (here t = 0.99): the latent loss is 0.5 |z - z*|^2
    torch.testing.assert_close(out["loss_latent"], 0.5 * ((up * 2 - 1) - (target * 2 - 1)).square().sum())
    torch.testing.assert_close(out["loss_rgb"], (up - target).square().sum())  # official: sum, no 0.5, / B
    assert int(out["t"]) == 990
    (out["loss_latent"] + 0.1 * out["loss_rgb"]).backward()
    assert frames.grad.abs().sum() > 0
    fitted = frames.detach().clone().requires_grad_(True)
    optimizer = torch.optim.SGD([fitted], lr=0.02)
    for step in range(150):  # descending the two losses fits the clip to the target, at any t of the schedule
        optimizer.zero_grad()
        loss = x0_video_guidance(ClipPrior(target), fitted, None, CONFIG, 0.1, step / 149, g)
        (loss["loss_latent"] + 0.1 * loss["loss_rgb"]).backward()
        optimizer.step()
    assert float(loss["loss_rgb"]) < 0.5 * float(out["loss_rgb"])


def test_timesteps_anneal_from_099_to_02_05():
    assert timestep_bounds(CONFIG, 1000, 0.0) == (990, 990)
    assert timestep_bounds(CONFIG, 1000, 0.5) == (595, 745)
    assert timestep_bounds(CONFIG, 1000, 1.0) == (200, 500)
    for bad in ({"t_min_end": 0.6}, {"t_min_end": -0.1}):
        with pytest.raises(ValueError):
            SDSConfig(t_range=(0.99, 0.99), t_max_end=0.5, **bad)


def test_rgb_loss_needs_a_decoder():
    class NoDecoder:
        pass

    check_decodes(NoDecoder(), 0.0)
    with pytest.raises(ValueError, match="decode_latents"):
        check_decodes(NoDecoder(), 0.1)
