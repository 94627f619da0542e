"""The oracle input of video-to-4D: the moving analytic scene filmed from the reference camera.

`render_clip` ray-traces `scenes.moving` (or any scene) at N >= 24 evenly spaced times from the reference camera
(polar 90, azimuth 0), the camera the static oracle's reference image comes from: frame 0 is that image exactly.
The clip is handed over three ways, for the three ways a user's clip arrives:
- arrays (`OracleClip.frames` [N, H, W, 3], `masks` [N, H, W]): an image batch;
- `reference_clip()`: the `ReferenceClip` the stages take, built WITHOUT recentring (like `setup.reference()`, the
  frames keep the camera's framing, so the scene's cameras and the clip agree);
- `write_videos()`: an mp4 and a mask mp4 (H.264 4:4:4, lossless before colour conversion), written here with
  imageio-ffmpeg directly, independent of the library's writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from a124_core.reference import ReferenceClip
from a124_core.reference.recentre import checkerboard
from a124_core.reference.reference import Reference

from ..reference.videos import write_video
from . import scenes

NUM_FRAMES = 24
REFERENCE_POLAR, REFERENCE_AZIMUTH = 90.0, 0.0


@dataclass
class OracleClip:
    """The scene filmed from the reference camera."""

    frames: Tensor  # [N, H, W, 3] in [0, 1] on white (ComfyUI IMAGE layout)
    masks: Tensor  # [N, H, W] in {0, 1}, 1 = object
    times: Tensor  # [N]: frame i at i / (N - 1)
    scene: scenes.SceneAt

    def __len__(self) -> int:
        return int(self.times.shape[0])

    def reference_clip(self) -> ReferenceClip:
        """The clip as the stages take it, at the render size, with the camera's framing (no recentring)."""
        rgb = self.frames.permute(0, 3, 1, 2).contiguous()
        mask = self.masks[:, None].contiguous()
        n = len(self)
        return ReferenceClip(
            rgb=rgb,
            alpha=mask.clone(),
            mask=mask.clone(),
            times=self.times.clone(),
            depth=None,
            source_index=torch.arange(n),
            first=_reference(rgb[0].clone(), mask[0].clone()),
            fps=24.0,
            foreground_source="mask",
            meta={"oracle": "tests/oracle/clip.py"},
        )

    def write_videos(self, folder: str | Path, fps: float = 24.0) -> tuple[Path, Path]:
        """clip.mp4 and clip_mask.mp4 (white = object) in `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        video, mask = folder / "clip.mp4", folder / "clip_mask.mp4"
        write_mp4(self.frames, video, fps)
        write_mp4(self.masks[..., None].expand(-1, -1, -1, 3), mask, fps)
        return video, mask


def _reference(rgb: Tensor, mask: Tensor) -> Reference:
    """Frame 0 as a `Reference` (what the static oracle's reference image is), at the render size."""
    size = rgb.shape[-1]
    big = F.interpolate(torch.cat([rgb, mask])[None], size=(512, 512), mode="nearest")[0]
    preview = rgb * mask + (1 - mask) * checkerboard(size)[None]
    return Reference(
        rgb=rgb,
        alpha=mask.clone(),
        mask=mask.clone(),
        depth=None,
        rgba_512=big,
        preview=preview.permute(1, 2, 0).contiguous(),
        border_ratio=0.0,
        foreground_source="mask",
    )


def render_clip(scene: scenes.SceneAt = scenes.moving, num_frames: int = NUM_FRAMES, size: int = 32) -> OracleClip:
    """`scene` at times i / (N - 1) from the reference camera: hard-edged albedo on white and its mask."""
    times = torch.linspace(0.0, 1.0, num_frames)
    frames, masks = [], []
    for t in times.tolist():
        rgb, alpha = scenes.trace(scene(t), REFERENCE_POLAR, REFERENCE_AZIMUTH, size, size)
        frames.append(rgb.permute(1, 2, 0))
        masks.append(alpha[0])
    return OracleClip(frames=torch.stack(frames), masks=torch.stack(masks), times=times, scene=scene)


def write_mp4(frames: Tensor, path: Path, fps: float) -> None:
    """uint8 H.264 at qp 0 in 4:4:4 (no chroma subsampling): only the RGB <-> YUV rounding changes the pixels."""
    write_video(path, (frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy(), fps)
