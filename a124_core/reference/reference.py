"""The reference object every stage consumes (SPEC 8): recentred image, mask, depth and a preview.

`build_reference` checks every input first (sizes, modes, empty foreground, model files), and only then
loads a background-removal or depth model, so bad input fails fast and never after a model download.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..checkpoint import load_checkpoint, save_checkpoint
from .depth import DepthEstimator, check_depth_model_dir, normalise_depth
from .foreground import find_rembg_model, remove_background
from .inputs import RawInputs, prepare_inputs
from .recentre import checkerboard, object_bbox, recentre

FORMAT = "a124-reference"


@dataclass(frozen=True)
class ReferenceConfig:
    """How a reference image is turned into a `Reference` (defaults follow SPEC 8)."""

    border_ratio: float = 0.2
    """Margin on each side of the object's longer side, as a fraction of the frame (object spans 1 - 2x)."""
    size: int = 256
    """Side of the recentred reference used by the stages (Zero123 input size)."""
    ti_size: int = 512
    """Side of the RGBA copy kept for textual inversion (SD1.5 resolution)."""
    mask_threshold: float = 0.5
    """alpha > threshold is foreground (bounding box and the binary mask)."""
    min_input_side: int = 16
    """Images smaller than this on either side are rejected."""
    max_input_side: int = 2048
    """Larger images are downscaled to this longer side first (memory; detail beyond it is unused)."""
    rembg_model: str = "u2net"
    """rembg model used when the image has no alpha and no mask is given (its `<name>.onnx` must be local)."""
    depth_invert: bool = False
    """Set when a given depth image grows with distance (metric depth) instead of toward the camera."""
    preview_background: str = "checkerboard"
    """Backdrop of the preview image: "checkerboard" or "grey"."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.border_ratio < 0.5:
            raise ValueError(f"border_ratio is {self.border_ratio}; it must be in [0, 0.5).")
        if self.size < 8 or self.ti_size < 8:
            raise ValueError(f"size ({self.size}) and ti_size ({self.ti_size}) must be at least 8 px.")
        if not 0.0 < self.mask_threshold < 1.0:
            raise ValueError(f"mask_threshold is {self.mask_threshold}; it must be in (0, 1).")
        if self.preview_background not in ("checkerboard", "grey"):
            raise ValueError(f"preview_background is {self.preview_background!r}; use 'checkerboard' or 'grey'.")


@dataclass
class Reference:
    """A recentred reference view. All tensors float32; images channel-first except `preview`."""

    rgb: Tensor  # [3, S, S] in [0, 1], composited on white
    alpha: Tensor  # [1, S, S] in [0, 1]
    mask: Tensor  # [1, S, S] in {0, 1}: alpha > mask_threshold
    depth: Tensor | None  # [1, S, S] in [0, 1], larger = nearer, 0 outside the mask; None = no depth loss
    rgba_512: Tensor  # [4, T, T]: straight (not premultiplied) colour + alpha, for textual inversion
    preview: Tensor  # [S, S, 3] in [0, 1]: the RGBA over a checkerboard (ComfyUI IMAGE layout, no batch)
    border_ratio: float
    foreground_source: str = "alpha"  # "alpha", "mask" or "rembg:<model>"
    depth_source: str = "none"  # "none", "image" or "model:<folder name>"
    meta: dict = field(default_factory=dict)  # anything else worth keeping (input size, config)

    @property
    def size(self) -> int:
        return int(self.rgb.shape[-1])

    def to(self, device: str | torch.device) -> Reference:
        """A copy with every tensor on `device` (the original is left untouched)."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in moved.items():
            if isinstance(value, Tensor):
                moved[key] = value.to(device)
        return Reference(**moved)

    def tensors(self) -> dict[str, Tensor]:
        """The tensors `save` writes (depth only when present)."""
        tensors = {k: getattr(self, k) for k in ("rgb", "alpha", "mask", "rgba_512", "preview")}
        if self.depth is not None:
            tensors["depth"] = self.depth
        return tensors

    def metadata(self) -> dict:
        """The JSON metadata `save` writes."""
        return {
            "format": FORMAT,
            "border_ratio": self.border_ratio,
            "foreground_source": self.foreground_source,
            "depth_source": self.depth_source,
            "meta": self.meta,
        }

    @classmethod
    def from_parts(cls, tensors: dict[str, Tensor], meta: dict) -> Reference:
        """Inverse of (`tensors`, `metadata`)."""
        return cls(
            rgb=tensors["rgb"],
            alpha=tensors["alpha"],
            mask=tensors["mask"],
            depth=tensors.get("depth"),
            rgba_512=tensors["rgba_512"],
            preview=tensors["preview"],
            border_ratio=float(meta["border_ratio"]),
            foreground_source=meta["foreground_source"],
            depth_source=meta["depth_source"],
            meta=meta.get("meta", {}),
        )

    def save(self, path: str | Path) -> Path:
        """Write a safetensors file with JSON metadata (reloadable with `Reference.load`)."""
        return save_checkpoint(path, self.tensors(), self.metadata())

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Reference:
        tensors, meta = load_checkpoint(path, device=device)
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{path} is an Animate124 checkpoint but not a reference (format {meta.get('format')!r})."
            )
        return cls.from_parts(tensors, meta)

    def rgba_pil(self, size: int | None = None) -> Image.Image:
        """The TI copy as a PIL RGBA image (optionally resized), e.g. to save next to the embedding."""
        arr = (self.rgba_512.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy().astype(np.uint8)
        img = Image.fromarray(arr, mode="RGBA")
        return img if size is None else img.resize((size, size), Image.Resampling.LANCZOS)


def check_reference_inputs(
    image: Image.Image | Tensor | np.ndarray,
    mask: Image.Image | Tensor | np.ndarray | None = None,
    depth: Image.Image | Tensor | np.ndarray | None = None,
    *,
    depth_model: str | Path | DepthEstimator | None = None,
    rembg_dirs: Sequence[str | Path] = (),
    config: ReferenceConfig | None = None,
) -> RawInputs:
    """Every check of `build_reference` that needs no model, in milliseconds; returns the checked inputs.

    Sizes, modes and value ranges; the depth model folder (files and weight headers); a foreground source
    (the image's alpha or `mask` must cover some pixels; without either, rembg's model file must be found).
    A runner calls this before it builds or writes anything, so bad input fails before any work.
    """
    cfg = config or ReferenceConfig()
    if depth is not None and depth_model is not None:
        raise ValueError("Pass either a depth image or a depth model, not both (the depth image would win silently).")
    raw = prepare_inputs(image, mask, depth, min_side=cfg.min_input_side, max_side=cfg.max_input_side)
    if isinstance(depth_model, (str, Path)):
        check_depth_model_dir(depth_model)
    known = raw.alpha if raw.alpha is not None else raw.mask
    if known is None:
        find_rembg_model(cfg.rembg_model, rembg_dirs)
    else:
        object_bbox(known, cfg.mask_threshold)
    return raw


def build_reference(
    image: Image.Image | Tensor | np.ndarray,
    mask: Image.Image | Tensor | np.ndarray | None = None,
    depth: Image.Image | Tensor | np.ndarray | None = None,
    *,
    depth_model: str | Path | DepthEstimator | None = None,
    rembg_dirs: Sequence[str | Path] = (),
    config: ReferenceConfig | None = None,
    device: str | torch.device = "cpu",
) -> Reference:
    """Build a `Reference` from one image (see `inputs.py` for the accepted kinds).

    Foreground, in order: the image's alpha (unless fully opaque); `mask` (1 = foreground; soft values are
    kept as alpha); rembg with `config.rembg_model` from rembg's folders or `rembg_dirs` (ComfyUI's
    `models/rembg/`). Depth: a given `depth` image aligned with `image` (larger = nearer unless
    `config.depth_invert`), or a transformers depth model folder / loaded `DepthEstimator`, or neither
    (depth stays None and the depth loss is off). Passing both depth kinds is an error.
    An RGBA image and the same RGB + its alpha as `mask` give bit-identical references (when no downscaling
    to `config.max_input_side` is needed; after it they agree up to resampling rounding).
    """
    cfg = config or ReferenceConfig()
    raw = check_reference_inputs(image, mask, depth, depth_model=depth_model, rembg_dirs=rembg_dirs, config=cfg)
    if raw.alpha is not None:
        alpha, source = raw.alpha, "alpha"
    elif raw.mask is not None:
        alpha, source = raw.mask, "mask"
    else:
        model_path = find_rembg_model(cfg.rembg_model, rembg_dirs)
        alpha, source = remove_background(raw.rgb, model_path, cfg.rembg_model), f"rembg:{cfg.rembg_model}"
    bbox = object_bbox(alpha, cfg.mask_threshold)
    meta = {"input_size": list(raw.rgb.shape[-2:]), "downscaled": raw.downscaled}
    estimator = None
    if raw.depth is None and depth_model is not None:
        estimator = depth_model if isinstance(depth_model, DepthEstimator) else DepthEstimator(depth_model, device)
    ref = recentred_reference(raw.rgb, alpha, raw.depth, bbox, cfg, source=source, estimator=estimator, meta=meta)
    return ref.to(device)


def recentred_reference(
    rgb: Tensor,
    alpha: Tensor,
    depth: Tensor | None,
    bbox: tuple[int, int, int, int],
    config: ReferenceConfig,
    *,
    source: str,
    estimator: DepthEstimator | None = None,
    meta: dict | None = None,
    depth_name: str = "depth image",
) -> Reference:
    """The `Reference` of one checked image recentred on `bbox` (its own object box, or a clip's union box).

    Args:
        rgb: [3, H, W] in [0, 1]; alpha: [H, W] in [0, 1]; depth: [H, W] raw values aligned with rgb, or None.
        bbox: (y0, y1, x0, x1) the square frame is centred on (`recentre.object_bbox`).
        source: how alpha was obtained ("alpha", "mask", "rembg:<model>").
        estimator: a depth model run on the recentred image when `depth` is None.
        meta: extra entries for `Reference.meta` (input size, ...); bbox and config are added.
        depth_name: names the depth in the "constant inside the mask" error (e.g. "depth of frame 3").
    """
    cfg = config
    channels = [rgb * alpha, alpha[None]]
    if depth is not None:
        channels.append(depth[None] * alpha)
    small, large = recentre(torch.cat(channels), bbox, cfg.border_ratio, (cfg.size, cfg.ti_size))

    a = small[3:4].clamp(0, 1)
    premult = small[:3].clamp(0, 1)
    rgb_out = (premult + (1 - a)).clamp(0, 1)
    binary = (a > cfg.mask_threshold).float()
    a_large = large[3:4].clamp(0, 1)
    straight = torch.where(a_large > 1e-4, large[:3] / a_large.clamp_min(1e-4), torch.zeros_like(large[:3]))
    rgba_512 = torch.cat([straight.clamp(0, 1), a_large])
    back = checkerboard(cfg.size) if cfg.preview_background == "checkerboard" else torch.full((cfg.size,) * 2, 0.5)
    preview = (premult + (1 - a) * back[None]).clamp(0, 1).permute(1, 2, 0).contiguous()

    depth_out, depth_source = None, "none"
    if depth is not None:
        small_depth = torch.where(a[0] > 1e-4, small[4] / a[0].clamp_min(1e-4), torch.zeros_like(a[0]))
        depth_out = normalise_depth(small_depth, binary[0], depth_name)
        if cfg.depth_invert:
            depth_out = torch.where(binary[0] > 0, 1 - depth_out, depth_out)
        depth_out, depth_source = depth_out[None], "image"
    elif estimator is not None:
        rgb_large = (large[:3].clamp(0, 1) + (1 - a_large)).clamp(0, 1)
        pred = estimator(rgb_large)[None, None]
        pred = torch.nn.functional.interpolate(pred, size=(cfg.size, cfg.size), mode="bilinear", antialias=True)
        depth_out = normalise_depth(pred[0, 0], binary[0], "estimated depth")[None]
        depth_source = f"model:{estimator.folder.name}"

    return Reference(
        rgb=rgb_out,
        alpha=a,
        mask=binary,
        depth=depth_out,
        rgba_512=rgba_512,
        preview=preview,
        border_ratio=cfg.border_ratio,
        foreground_source=source,
        depth_source=depth_source,
        meta={**(meta or {}), "bbox": list(bbox), "config": asdict(cfg)},
    )
