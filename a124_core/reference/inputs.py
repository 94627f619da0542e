"""Turn user inputs (PIL images, ComfyUI IMAGE/MASK tensors, numpy arrays) into checked float tensors.

Everything here runs before any model is loaded, so bad input fails in milliseconds with a message that
says what to change (issue 4, "Bad input"). Accepted kinds:

- image: PIL image in any 8-bit mode (RGB, RGBA, L, LA, P, PA, CMYK, YCbCr, ...; EXIF rotation applied),
  a float tensor [H, W, C] in [0, 1] with C = 1, 3 or 4 (ComfyUI IMAGE without batch; [1, H, W, C] is
  accepted too), or a numpy array of the same layout (uint8 is divided by 255).
- mask: 1 = foreground. PIL image (any mode, converted to L), float tensor/array [H, W] (or [1, H, W]) in
  [0, 1]. Note ComfyUI's LoadImage MASK is 1 - alpha: invert it before passing it here.
- depth: PIL image (8/16-bit or float greyscale, or RGB whose channels are averaged), tensor/array [H, W],
  [H, W, C] or [1, H, W, C]. Only relative values matter (it is renormalised inside the mask).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

#: PIL modes converted losslessly enough to RGB(A); everything else is rejected for colour images.
_RGB_MODES = {"RGB", "L", "1", "CMYK", "YCbCr", "LAB", "HSV", "P"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


@dataclass
class RawInputs:
    """Validated inputs at a common size, all float32 on CPU."""

    rgb: Tensor  # [3, H, W] in [0, 1]
    alpha: Tensor | None  # [H, W] in [0, 1]: the image's own alpha, None when absent or fully opaque
    mask: Tensor | None  # [H, W] in [0, 1]: the user's mask (1 = foreground)
    depth: Tensor | None  # [H, W]: the user's depth image, raw values
    downscaled: bool  # True when the inputs were shrunk to max_side


class _Animated(Exception):
    def __init__(self, frames: int):
        self.frames = frames


def load_image_file(path: str | Path, what: str = "reference image") -> Image.Image:
    """Open and fully decode an image file, so a truncated or mislabelled file fails here in one line.

    PIL only reads the header in `Image.open`; the pixel data is decoded lazily, which would move a broken file's
    error (OSError "image file is truncated") to wherever the pixels are first used. `what` names the input in
    the message (e.g. "mask image").
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"The {what} {path} is a folder; pass an image file (PNG, JPEG, WebP).")
    if not path.is_file():
        raise FileNotFoundError(f"The {what} {path} does not exist; check the path.")
    try:
        with Image.open(path) as opened:
            frames = getattr(opened, "n_frames", 1)
            if frames > 1:  # an animated GIF / WebP / APNG: a run would silently take its first frame
                raise _Animated(frames)
            opened.load()
            image = opened.copy()  # the file is closed on return
    except _Animated as animated:
        raise ValueError(
            f"The {what} {path} is an animated image ({animated.frames} frames); pass one still frame (e.g. save "
            f"frame 0 as PNG)."
        ) from None
    except Image.DecompressionBombError as err:
        raise ValueError(f"The {what} {path} is too large to decode safely ({err}); downscale it first.") from None
    except UnidentifiedImageError:
        raise ValueError(
            f"The {what} {path} is not an image file PIL can read; pass a PNG, JPEG or WebP image."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as err:
        raise ValueError(
            f"The {what} {path} cannot be decoded ({err}): the file is truncated or damaged; save or fetch it again."
        ) from None
    return image


def _size_of(x: object, what: str) -> tuple[int, int]:
    """(H, W) of a PIL image, tensor or array without converting it."""
    if isinstance(x, Image.Image):
        return x.height, x.width
    if isinstance(x, (Tensor, np.ndarray)):
        shape = tuple(x.shape)
        if len(shape) == 4:
            if shape[0] != 1:
                raise ValueError(
                    f"{what} has a batch of {shape[0]}; pass one image (select it with an image-batch node)."
                )
            shape = shape[1:]
        if len(shape) < 2:
            raise ValueError(f"{what} has shape {tuple(x.shape)}; expected [H, W] or [H, W, C].")
        if len(shape) == 3 and what == "mask" and shape[0] == 1:
            return shape[1], shape[2]
        return shape[0], shape[1]
    raise ValueError(f"{what} must be a PIL image, a torch tensor or a numpy array, got {type(x).__name__}.")


def _as_float_tensor(x: Tensor | np.ndarray, what: str) -> Tensor:
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
        if x.dtype == np.uint8:
            return t.float() / 255.0
        if x.dtype == np.uint16:
            return t.float() / 65535.0
        x = t
    t = x.detach().to("cpu")
    if not t.is_floating_point():
        raise ValueError(f"{what} tensor has dtype {t.dtype}; pass float values in [0, 1] (ComfyUI IMAGE layout).")
    t = t.float()
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} contains NaN or infinite values.")
    return t


def _image_to_tensor(image: Image.Image | Tensor | np.ndarray) -> Tensor:
    """-> [C, H, W] with C = 3 (RGB) or 4 (RGBA), values in [0, 1]."""
    if isinstance(image, Image.Image):
        image = ImageOps.exif_transpose(image)
        mode = image.mode
        if mode == "P" and "transparency" in image.info:
            mode = "PA"
        if mode in _ALPHA_MODES:
            image = image.convert("RGBA")
        elif mode in _RGB_MODES:
            image = image.convert("RGB")
        else:
            raise ValueError(
                f"Image mode {image.mode!r} (high bit depth or float) is not supported for the reference image; "
                "convert it to 8-bit RGB or RGBA first."
            )
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255.0
    t = _as_float_tensor(image, "image")
    if t.dim() == 4:
        t = t[0]
    if t.dim() == 2:
        t = t[..., None]
    if t.dim() != 3 or t.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image tensor has shape {tuple(image.shape)}; expected [H, W, C] with C = 1, 3 or 4.")
    if t.min() < -1e-4 or t.max() > 1 + 1e-4:
        raise ValueError(
            f"image values span [{t.min():.3g}, {t.max():.3g}]; expected [0, 1] (divide uint8 images by 255)."
        )
    t = t.clamp(0, 1).permute(2, 0, 1)
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return t.contiguous()


def _mask_to_tensor(mask: Image.Image | Tensor | np.ndarray) -> Tensor:
    """-> [H, W] in [0, 1]."""
    if isinstance(mask, Image.Image):
        mask = ImageOps.exif_transpose(mask)
        if mask.mode in ("I;16", "I", "F"):
            arr = np.asarray(mask, dtype=np.float32)
            return torch.from_numpy(arr / max(float(arr.max()), 1.0)).clamp(0, 1)
        return torch.from_numpy(np.asarray(mask.convert("L")).copy()).float() / 255.0
    t = _as_float_tensor(mask, "mask")
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2:
        raise ValueError(f"mask has shape {tuple(mask.shape)}; expected [H, W] (a ComfyUI MASK of one image).")
    if t.min() < -1e-4 or t.max() > 1 + 1e-4:
        raise ValueError(f"mask values span [{t.min():.3g}, {t.max():.3g}]; expected [0, 1] with 1 = foreground.")
    return t.clamp(0, 1).contiguous()


def _depth_to_tensor(depth: Image.Image | Tensor | np.ndarray) -> Tensor:
    """-> [H, W] raw values (any scale)."""
    if isinstance(depth, Image.Image):
        depth = ImageOps.exif_transpose(depth)
        if depth.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L"):
            return torch.from_numpy(np.asarray(depth).astype(np.float32))
        return torch.from_numpy(np.asarray(depth.convert("RGB")).astype(np.float32)).mean(-1)
    t = _as_float_tensor(depth, "depth") if isinstance(depth, np.ndarray) or depth.is_floating_point() else None
    if t is None:
        t = depth.detach().to("cpu").float()
    if t.dim() == 4:
        t = t[0]
    if t.dim() == 3:
        t = t.mean(-1)
    if t.dim() != 2:
        raise ValueError(f"depth has shape {tuple(depth.shape)}; expected [H, W] or [H, W, C].")
    if not torch.isfinite(t).all():
        raise ValueError("depth contains NaN or infinite values.")
    return t.contiguous()


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Antialiased bilinear resize of [C, H, W] or [H, W]."""
    squeeze = x.dim() == 2
    y = F.interpolate(x[None, None] if squeeze else x[None], size=size, mode="bilinear", antialias=True)
    return y[0, 0] if squeeze else y[0]


def prepare_inputs(
    image: Image.Image | Tensor | np.ndarray,
    mask: Image.Image | Tensor | np.ndarray | None = None,
    depth: Image.Image | Tensor | np.ndarray | None = None,
    min_side: int = 16,
    max_side: int = 2048,
) -> RawInputs:
    """Check sizes and value ranges, convert to float tensors and shrink images larger than `max_side`.

    A mask must match the image size exactly (a mismatch usually means the wrong mask); a depth image may
    differ in size if it has the same aspect ratio (depth nodes often work at their own resolution).
    """
    h, w = _size_of(image, "image")
    if min(h, w) < min_side:
        raise ValueError(
            f"The reference image is {w}x{h} px; it needs at least {min_side} px on each side "
            "(use a real photo or render of the object, ideally 512 px or more)."
        )
    if mask is not None:
        mh, mw = _size_of(mask, "mask")
        if (mh, mw) != (h, w):
            raise ValueError(
                f"The mask is {mw}x{mh} px but the image is {w}x{h} px; pass the mask made for this image "
                "(or resize it to the image size)."
            )
    if depth is not None:
        dh, dw = _size_of(depth, "depth")
        if abs(dh / dw - h / w) > 0.01 * (h / w):
            raise ValueError(
                f"The depth image is {dw}x{dh} px, a different aspect ratio from the {w}x{h} px image; "
                "pass the depth map computed from this image."
            )

    scale = min(1.0, max_side / max(h, w))
    target = (max(1, round(h * scale)), max(1, round(w * scale)))
    if isinstance(image, Image.Image) and scale < 1.0:
        # Shrink 8-bit images in PIL before they become float tensors (a 10000 px RGBA is 1.6 GB as float).
        image = ImageOps.exif_transpose(image)
        if image.mode not in _ALPHA_MODES | _RGB_MODES:
            raise ValueError(f"Image mode {image.mode!r} is not supported; convert it to 8-bit RGB or RGBA first.")
        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")
        elif image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if image.mode in _ALPHA_MODES else "RGB")
        if image.mode == "RGBA":  # premultiply so hidden background colours do not bleed into the edges
            image = image.convert("RGBa").resize(target[::-1], Image.Resampling.BILINEAR, reducing_gap=3.0)
            image = image.convert("RGBA")
        else:
            image = image.resize(target[::-1], Image.Resampling.BILINEAR, reducing_gap=3.0)

    img = _image_to_tensor(image)
    if img.shape[1:] != target:
        if img.shape[0] == 4:
            premult = torch.cat([img[:3] * img[3:], img[3:]])
            premult = _resize(premult, target)
            a = premult[3:].clamp(0, 1)
            img = torch.cat([(premult[:3] / a.clamp_min(1e-6)).clamp(0, 1) * (a > 0), a])
        else:
            img = _resize(img, target).clamp(0, 1)
    rgb = img[:3].contiguous()
    alpha = img[3] if img.shape[0] == 4 else None
    if alpha is not None and bool((alpha > 1 - 0.5 / 255).all()):
        alpha = None  # fully opaque: the alpha channel says nothing about the object

    m = None
    if mask is not None:
        m = _mask_to_tensor(mask)
        if m.shape != target:
            m = _resize(m, target).clamp(0, 1)
    d = None
    if depth is not None:
        d = _depth_to_tensor(depth)
        if d.shape != target:
            d = _resize(d, target)
    return RawInputs(rgb=rgb, alpha=alpha, mask=m, depth=d, downscaled=scale < 1.0)
