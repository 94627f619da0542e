"""Memory switches for priors on a GPU, off by default until benchmarks/gpu_pipeline.py shows they pay.

SDS differentiates the VAE encoder at the prior's image size (512 for SD1.5, 1024 for the paper's ControlNet):
its stored activations, not the frozen UNet, dominate the backward pass's memory. Checkpointing recomputes them
in the backward pass instead (about one extra encoder forward per step); the gradients are unchanged.
"""

from __future__ import annotations

from typing import Any


def set_vae_gradient_checkpointing(prior: Any, enabled: bool) -> None:
    """Recompute (enabled) or store (disabled) the VAE encoder's activations for the backward pass."""
    vae = getattr(prior, "vae", None)
    if vae is None or not hasattr(vae, "enable_gradient_checkpointing"):
        raise ValueError(f"{type(prior).__name__} has no diffusers VAE whose encoder could be checkpointed.")
    if enabled:
        vae.enable_gradient_checkpointing()
    else:
        vae.disable_gradient_checkpointing()
