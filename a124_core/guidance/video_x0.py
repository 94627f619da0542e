"""Dream-in-4D's video guidance (paper Sec. 3.2, HiFA [39] with one denoising step): the clip's latents are noised
at t, the prior predicts the clean clip x0_hat in one step, and the clip is pulled at it twice, in latent space and
in RGB (x0_hat decoded by the prior's VAE):

    L_video = 0.5 * sum (z - sg(x0_hat))^2 / B + lambda_dec * sum (x - sg(D(x0_hat)))^2 / B,   lambda_dec = 0.1

with x the clip resized to the prior's size (its training resolution) and B = 1 clip. There is no w(t) and no
gradient clipping: the target is a clean clip, so the gradient is bounded by the images' range. The official code
(threestudio `zeroscope_guidance.py`, `use_hifa`, one step) takes a DDIM step with eta 1 from t to the end of the
schedule, whose mean is x0_hat; the two reductions (0.5 x sum, sum, both / B) are the official ones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..priors.base import Prior
from .sds import SDSConfig, resize_to_prior, scoring_size, x0_reconstruction


def check_decodes(prior: Any, rgb_weight: float) -> None:
    """The decoded-RGB loss needs the prior's VAE decoder: say so before training starts."""
    if rgb_weight > 0 and not callable(getattr(prior, "decode_latents", None)):
        raise ValueError(
            f"Dream-in-4D's decoded-RGB video loss needs a prior with decode_latents (the diffusers text-to-video "
            f"prior has one); {type(prior).__name__} has none: wire that prior, or set rgb_weight=0."
        )


def x0_video_guidance(
    prior: Prior,
    frames: Tensor,
    condition: Any,
    config: SDSConfig,
    rgb_weight: float = 0.1,
    progress: float = 0.0,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """One-step x0 losses of one rendered clip.

    Args:
        frames: the clip [F, 3, H, W] in [0, 1], frames in time order, any size (resized to the prior's).
        condition: the prior's text condition of the motion prompt.
        rgb_weight: lambda_dec; 0 skips the VAE decode.

    Returns:
        {"loss_latent": scalar, "loss_rgb": scalar (0 when rgb_weight is 0), "t": [1], "x0": detached latents}.
    """
    out = x0_reconstruction(prior, frames, condition, config, 1.0, progress, generator)
    batch = out["x0"].shape[0]
    loss_rgb = frames.new_zeros(())
    if rgb_weight > 0:
        images = resize_to_prior(frames, scoring_size(config, prior))
        target = prior.decode_latents(out["x0"]).to(images)
        if target.shape != images.shape:
            raise ValueError(f"The prior decoded {tuple(target.shape)} for frames {tuple(images.shape)}.")
        loss_rgb = (images - target).square().sum() / batch
    return {"loss_latent": out["loss_x0"], "loss_rgb": loss_rgb, "t": out["t"], "x0": out["x0"]}


__all__ = ["check_decodes", "x0_video_guidance"]
