"""Shared loading helpers: local-folder checks with clear errors, device/dtype choice, VAE encoding.

Priors are loaded from local files only (the hub is never contacted): every check here runs before any
weight is read, so a wrong or incomplete folder fails at once with a message that names the folder
searched and the files expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..weight_files import check_weight_file
from .base import NoiseSchedule

DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_FP16 = {
    "diffusion_pytorch_model.safetensors": "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin": "diffusion_pytorch_model.fp16.bin",
    "model.safetensors": "model.fp16.safetensors",
    "pytorch_model.bin": "pytorch_model.fp16.bin",
}


def choose_device_dtype(device: torch.device | str | None = None) -> tuple[torch.device, torch.dtype]:
    """CUDA when available (fp16, SPEC 5), else CPU in fp32 (half precision is slow and lossy on CPU)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    return device, torch.float16 if device.type == "cuda" else torch.float32


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON config, naming the file when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); re-download the model's config files.") from err


def require_folder(folder: Path, what: str) -> Path:
    """The model folder must exist; say which folder and what should be in it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder {folder} does not exist; download the model (diffusers layout) there.")
    return folder


def require_component(root: Path, sub: str, weights: tuple[str, ...] | None = DIFFUSERS_WEIGHTS) -> str | None:
    """Check `root/sub` has a config.json and (unless `weights` is None) one of the weight files.

    Returns the diffusers/transformers `variant` to load with ("fp16" when only fp16 weights exist). The weight
    file the loader will pick (the first of `weights` present) has its header checked, so a truncated or
    zero-filled download fails here in one line naming the file.
    """
    folder = Path(root) / sub
    expected = [f"{sub}/config.json"] + ([f"{sub}/{w}" for w in weights] if weights else [])
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{sub}/config.json missing in {root}; expected {', '.join(expected[:2])} (or the other weight "
            f"formats: {', '.join(expected[2:]) or 'none'}). Is this the right model folder?"
        )
    if not weights:
        return None
    variant, path = _pick_weights(folder, weights)
    check_weight_file(path)
    return variant


def weight_file(root: Path, sub: str, weights: tuple[str, ...] = DIFFUSERS_WEIGHTS) -> Path:
    """The weight file of `root/sub` a loader reads (the one `require_component` checked)."""
    return _pick_weights(Path(root) / sub, weights)[1]


def _pick_weights(folder: Path, weights: tuple[str, ...]) -> tuple[str | None, Path]:
    for variant, names in ((None, weights), ("fp16", [_FP16[w] for w in weights])):
        present = [folder / w for w in names if (folder / w).is_file()]
        if present:
            return variant, present[0]
    raise FileNotFoundError(f"No weights in {folder}: expected one of {', '.join(weights)} (or their .fp16 variants).")


def require_files(root: Path, files: list[str], what: str) -> None:
    """All of `files` (relative to root) must exist; list the missing ones."""
    missing = [f for f in files if not (Path(root) / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{what}: {', '.join(missing)} missing in {root} (expected: {', '.join(files)}).")


def class_name(config_path: Path) -> str:
    """The `_class_name` a diffusers config declares ("" when absent)."""
    return str(read_json(config_path).get("_class_name", ""))


def check_unet(root: Path, expected_class: str, in_channels: int, prior: str) -> dict[str, Any]:
    """Reject a UNet of the wrong kind before loading it (e.g. a 4-channel UNet given as Zero123)."""
    hints = {
        ("UNet2DConditionModel", 4): "an SD1.5-style image UNet (use StableDiffusionPrior)",
        ("UNet2DConditionModel", 8): "a Zero123 UNet (use Zero123Prior)",
        ("UNet2DConditionModel", 9): "an inpainting UNet (not supported)",
        ("UNet3DConditionModel", 4): "a text-to-video UNet (use TextToVideoPrior)",
    }
    cfg = read_json(Path(root) / "unet" / "config.json")
    got = (str(cfg.get("_class_name", "")), int(cfg.get("in_channels", 4)))
    if got != (expected_class, in_channels):
        what = hints.get(got, f"a {got[0]} with {got[1]} input channels")
        raise ValueError(
            f"{root} holds {what}, but {prior} needs a {expected_class} with {in_channels} input channels. "
            f"Pick the matching model folder for this prior."
        )
    return cfg


def reject_controlnet_folder(root: Path, prior: str) -> None:
    """A ControlNet folder (config.json at its root) given where a full pipeline folder is expected."""
    cfg = Path(root) / "config.json"
    if cfg.is_file() and "ControlNet" in class_name(cfg):
        raise ValueError(
            f"{root} is a ControlNet ({class_name(cfg)}), not a {prior} pipeline folder; pass it as the "
            f"ControlNet of ControlNetTilePrior and give the SD1.5 base folder here."
        )


def prediction_type(root: Path, allowed: tuple[str, ...] = ("epsilon",)) -> str:
    """What the UNet of `root` predicts, from `scheduler/scheduler_config.json`; refuses kinds not in `allowed`."""
    require_files(root, ["scheduler/scheduler_config.json"], "noise schedule")
    kind = str(read_json(Path(root) / "scheduler" / "scheduler_config.json").get("prediction_type", "epsilon"))
    if kind not in allowed:
        raise ValueError(f"{root}: prediction_type {kind!r} is not supported ({' or '.join(allowed)} only).")
    return kind


def load_schedule(root: Path, allowed: tuple[str, ...] = ("epsilon",)) -> NoiseSchedule:
    """The training noise schedule from `root/scheduler/scheduler_config.json` (DDPM alphas_cumprod); the
    prediction type must be one of `allowed` (priors that convert v to epsilon allow "v_prediction")."""
    from diffusers import DDPMScheduler

    prediction_type(root, allowed)
    cfg = read_json(Path(root) / "scheduler" / "scheduler_config.json")
    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas")
    sched = DDPMScheduler(**{k: cfg[k] for k in keys if k in cfg})
    return NoiseSchedule(alphas_cumprod=sched.alphas_cumprod.float().clone())


def load_state_file(path: Path) -> dict[str, Tensor]:
    """A weights file as a state dict: safetensors, or a pickle through `torch.load(weights_only=True)`."""
    path = check_weight_file(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def freeze(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """Frozen, eval-mode, on device: priors are guidance only and never trained.

    Device and dtype change in one copy (fp32 weights are not staged on the GPU before their fp16 cast); no-op moves
    are skipped (also lets benchmarks build fake-tensor priors).
    """
    module.requires_grad_(False).train(False)
    first = next(module.parameters())
    if first.device != torch.device(device) or first.dtype != dtype:
        module.to(device=device, dtype=dtype)
    return module


def vae_encode(vae: Any, images: Tensor, scaled: bool = True) -> Tensor:
    """images [B, 3, H, W] in [0, 1] -> latents [B, C, H/f, W/f] in float32, differentiable w.r.t. images.

    Uses the posterior mean (not a sample) so a render maps to one latent: SDS noise comes from the
    diffusion step, not from the VAE. `scaled=False` gives the raw latent Zero123 concatenates.
    """
    param = next(vae.parameters())
    x = (images * 2.0 - 1.0).to(device=param.device, dtype=param.dtype)
    latents = vae.encode(x).latent_dist.mean
    if scaled:
        latents = latents * vae.config.scaling_factor
    return latents.float()


def vae_decode(vae: Any, latents: Tensor) -> Tensor:
    """Scaled latents [B, C, h, w] -> images [B, 3, H, W] in [0, 1], float32, without gradients (a decoded target is
    a constant of the loss that reads it)."""
    param = next(vae.parameters())
    with torch.no_grad():
        images = vae.decode((latents / vae.config.scaling_factor).to(device=param.device, dtype=param.dtype)).sample
    return (images.float() * 0.5 + 0.5).clamp(0, 1)


def native_image_size(unet_config: dict[str, Any], vae: Any) -> int:
    """The size a prior was trained at: UNet latent size x VAE downsampling (SD1.5: 64 x 8 = 512)."""
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    sample = unet_config.get("sample_size") or 64
    return int(sample if isinstance(sample, int) else sample[0]) * factor
