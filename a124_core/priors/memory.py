"""Memory switches for priors on a GPU (benchmarks/estimate_gpu.py counts what they save).

SDS differentiates the VAE encoder at the prior's image size (512 for SD1.5, 1024 for the paper's ControlNet):
its stored activations, not the frozen UNet, dominate the backward pass's memory. Checkpointing recomputes them
in the backward pass instead (about one extra encoder forward per step); the gradients are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch


def set_vae_gradient_checkpointing(prior: Any, enabled: bool) -> None:
    """Recompute (enabled) or store (disabled) the VAE encoder's activations for the backward pass."""
    vae = getattr(prior, "vae", None)
    if vae is None or not hasattr(vae, "enable_gradient_checkpointing"):
        raise ValueError(f"{type(prior).__name__} has no diffusers VAE whose encoder could be checkpointed.")
    if enabled:
        vae.enable_gradient_checkpointing()
    else:
        vae.disable_gradient_checkpointing()


#: GPUs with less memory than this train with VAE-encoder checkpointing when the setting is 'auto'.
AUTO_CHECKPOINT_BELOW_GIB = 40


def wants_vae_checkpointing(setting: str, device: torch.device, total_memory_gib: float | None = None) -> bool:
    """Resolve 'on' / 'off' / 'auto' (on for CUDA devices under AUTO_CHECKPOINT_BELOW_GIB) for `device`."""
    if setting in ("on", "off"):
        return setting == "on"
    if device.type != "cuda":
        return False
    if total_memory_gib is None:
        total_memory_gib = torch.cuda.get_device_properties(device).total_memory / 2**30
    return total_memory_gib < AUTO_CHECKPOINT_BELOW_GIB


def apply_vae_checkpointing(priors: list[Any], enabled: bool) -> None:
    """Switch checkpointing on every prior with a diffusers VAE (ComfyUI-model adapters have none: skipped)."""
    for prior in priors:
        vae = getattr(prior, "vae", None)
        if vae is not None and hasattr(vae, "enable_gradient_checkpointing"):
            set_vae_gradient_checkpointing(prior, enabled)


def set_channels_last(prior: Any, enabled: bool) -> None:
    """Store the 2D convolution networks (UNet, VAE, ControlNet) channels-last (NHWC), the layout the GPU's fp16
    convolution kernels prefer; the outputs are unchanged. Off by default until benchmarks/gpu_pipeline.py's
    `--channels-last` A/B on a GPU shows it pays. 3D (video) UNets are left as they are."""
    fmt = torch.channels_last if enabled else torch.contiguous_format
    for name in ("unet", "vae", "controlnet"):
        net = getattr(prior, name, None)
        if not isinstance(net, torch.nn.Module):
            continue
        if any(isinstance(m, torch.nn.Conv3d) for m in net.modules()):
            continue
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.data = module.weight.data.contiguous(memory_format=fmt)
