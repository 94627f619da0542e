"""Monocular depth for the reference view (SPEC 8): a local transformers depth model, or a given map.

The result is normalised inside the object mask to [0, 1] with larger = nearer and 0 outside, which is what
the depth loss (1 - Pearson correlation) expects; only its shape matters, not its scale.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..weight_files import check_weight_files

#: Model types whose output grows with distance (metric depth); relative models (DPT/MiDaS, Depth Anything)
#: predict disparity-like values that grow toward the camera.
_METRIC_MODEL_TYPES = {"zoedepth", "depth_pro", "glpn", "prompt_depth_anything"}


def check_depth_model_dir(folder: str | Path) -> Path:
    """Fail early (before loading anything) unless `folder` holds a transformers depth model."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Depth model folder {folder} does not exist. Download a transformers depth model (e.g. "
            "Intel/dpt-hybrid-midas or depth-anything/Depth-Anything-V2-Small-hf) into it, or pass no depth model."
        )
    missing = [name for name in ("config.json", "preprocessor_config.json") if not (folder / name).is_file()]
    has_weights = (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()
    if missing or not has_weights:
        expected = "config.json, preprocessor_config.json and model.safetensors (or a sharded index)"
        raise FileNotFoundError(
            f"Depth model folder {folder} is incomplete: expected {expected}; found "
            f"{sorted(p.name for p in folder.iterdir())}. Only safetensors weights are loaded."
        )
    check_weight_files(folder)  # a truncated or zero-filled download: one line naming the file
    config = json.loads((folder / "config.json").read_text())
    if "DepthEstimation" not in " ".join(config.get("architectures") or [config.get("model_type", "")]):
        raise ValueError(
            f"{folder} holds a {config.get('model_type')!r} model that is not a depth estimator "
            "(config.json architectures should end in ForDepthEstimation)."
        )
    return folder


class DepthEstimator:
    """A transformers depth model loaded offline from a local folder (DPT, Depth Anything, ...)."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.folder = check_depth_model_dir(folder)
        self.device = torch.device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.processor = AutoImageProcessor.from_pretrained(self.folder, local_files_only=True)
        self.model = AutoModelForDepthEstimation.from_pretrained(self.folder, local_files_only=True)
        self.model = self.model.to(self.device, self.dtype).train(False).requires_grad_(False)
        config = self.model.config
        self.larger_is_nearer = not (
            config.model_type in _METRIC_MODEL_TYPES or getattr(config, "depth_estimation_type", None) == "metric"
        )

    @torch.no_grad()
    def __call__(self, rgb: Tensor) -> Tensor:
        """rgb [3, H, W] in [0, 1] -> depth [H, W], larger = nearer, unnormalised."""
        pil = Image.fromarray((rgb.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy(), mode="RGB")
        inputs = self.processor(images=pil, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        pred = self.model(pixel_values=pixels).predicted_depth.float()  # [1, h, w]
        pred = F.interpolate(pred[:, None], size=tuple(rgb.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
        return (pred if self.larger_is_nearer else -pred).cpu()


def normalise_depth(depth: Tensor, mask: Tensor, source: str = "depth") -> Tensor:
    """Min-max normalise `depth` [H, W] over mask > 0.5 to [0, 1]; 0 outside the mask. Returns [H, W]."""
    inside = mask > 0.5
    if not bool(inside.any()):
        raise ValueError("Cannot normalise depth: the mask is empty.")
    values = depth[inside]
    lo, hi = values.min(), values.max()
    if float(hi - lo) <= 1e-6 * max(1.0, float(hi.abs())):
        raise ValueError(
            f"The {source} is constant inside the object's mask, so it carries no shape; pass a real depth map "
            "or none (the depth loss is then switched off)."
        )
    return torch.where(inside, (depth - lo) / (hi - lo), torch.zeros_like(depth)).clamp(0, 1)


def depth_to_image(depth: Tensor) -> Image.Image:
    """[H, W] in [0, 1] -> 8-bit greyscale PIL image (for previews and files)."""
    return Image.fromarray((depth.clamp(0, 1) * 255).round().byte().cpu().numpy().astype(np.uint8), mode="L")
