"""The reference clip of video-to-4D (issue 26): recentred frames, masks and times of the user's video.

Every frame is recentred with ONE square crop, centred on the union of all frames' object boxes: the camera of
a video does not follow the object, and a per-frame crop would turn motion into zoom and drift. The first frame
(source frame 0, time 0) is kept whole as the `Reference` the static stage takes. Frame i of N is at time
i / (N - 1), so the clip spans [0, 1] like the dynamic stages' time axis.

Resampling to a stage's frame times is nearest-frame: a reconstruction target must be a real frame (a blend of two
frames is a double exposure, and a blended mask is soft where neither frame is). The time error is at most half a
frame interval, 1 / (2 (N - 1)).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
from torch import Tensor

from ..checkpoint import load_checkpoint, save_checkpoint
from .reference import Reference, ReferenceConfig

FORMAT = "a124-reference-clip"


@dataclass(frozen=True)
class ClipConfig:
    """How a video (or an image batch) becomes a `ReferenceClip`."""

    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    """Recentring margin, output sizes, mask threshold, rembg model, depth orientation: as for one image."""
    max_frames: int = 64
    """Frame budget: a longer input keeps every k-th frame, k = ceil(N / max_frames) (`plan_frames`)."""
    max_input_side: int = 1024
    """Frames are shrunk to this longer side when decoded (outputs are 256/512 px; memory grows with N)."""
    fps_tolerance: float = 0.05
    """A constant-rate file's frame intervals may differ from their median by this fraction (plus one tick)."""

    def __post_init__(self) -> None:
        if self.max_frames < 2:
            raise ValueError(f"max_frames is {self.max_frames}; a clip needs at least 2 frames.")
        if self.max_input_side < self.reference.min_input_side:
            raise ValueError(f"max_input_side ({self.max_input_side}) is below min_input_side.")
        if not 0.0 <= self.fps_tolerance < 0.5:
            raise ValueError(f"fps_tolerance is {self.fps_tolerance}; it must be in [0, 0.5).")


@dataclass
class ReferenceClip:
    """Recentred frames of a clip, all float32, channel-first, one shared crop."""

    rgb: Tensor  # [N, 3, S, S] in [0, 1], composited on white
    alpha: Tensor  # [N, 1, S, S] in [0, 1]
    mask: Tensor  # [N, 1, S, S] in {0, 1}: alpha > mask_threshold
    times: Tensor  # [N] in [0, 1], increasing: frame i of the source clip at i / (N - 1)
    depth: Tensor | None  # [N, 1, S, S] in [0, 1], larger = nearer, 0 outside the mask; None = no depth loss
    source_index: Tensor  # [N] long: the frame's index in the input (video file or image batch)
    first: Reference  # source frame 0 with the clip's crop: the static stage's reference image
    fps: float = 0.0  # frame rate of the clip's frames (source rate / stride); 0 when unknown
    foreground_source: str = "alpha"  # "alpha", "mask" or "rembg:<model>"
    depth_source: str = "none"  # "none", "image" or "model:<folder name>"
    meta: dict = field(default_factory=dict)  # input size, crop box, frame plan note, config

    def __post_init__(self) -> None:
        n = self.times.shape[0]
        for name in ("rgb", "alpha", "mask", "depth", "source_index"):
            value = getattr(self, name)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"ReferenceClip.{name} has {value.shape[0]} frames but times has {n}.")

    def __len__(self) -> int:
        return int(self.times.shape[0])

    @property
    def size(self) -> int:
        return int(self.rgb.shape[-1])

    @property
    def border_ratio(self) -> float:
        return self.first.border_ratio

    def first_reference(self) -> Reference:
        """The `Reference` of source frame 0 (what `build_reference` returns, recentred with the clip's crop)."""
        return self.first

    def to(self, device: str | torch.device) -> ReferenceClip:
        """A copy with every tensor on `device` (the original is left untouched)."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in moved.items():
            if isinstance(value, Tensor):
                moved[key] = value.to(device)
        moved["first"] = self.first.to(device)
        return ReferenceClip(**moved)

    def nearest_index(self, times: Tensor | float) -> Tensor:
        """Index of the frame nearest to each time ([K] long; ties go to the earlier frame)."""
        t = torch.as_tensor(times, dtype=torch.float32, device=self.times.device).reshape(-1)
        if t.numel() and (not bool(torch.isfinite(t).all()) or float(t.min()) < 0.0 or float(t.max()) > 1.0):
            raise ValueError(f"Clip times must lie in [0, 1], got values from {float(t.min())} to {float(t.max())}.")
        return (t[:, None] - self.times[None, :]).abs().argmin(dim=1)

    def select(self, index: Tensor | list[int]) -> ReferenceClip:
        """The frames `index` (in that order), with their own times."""
        idx = torch.as_tensor(index, dtype=torch.long, device=self.times.device).reshape(-1)
        pick = {name: getattr(self, name) for name in ("rgb", "alpha", "mask", "times", "source_index")}
        pick = {name: value[idx] for name, value in pick.items()}
        return replace(self, depth=None if self.depth is None else self.depth[idx], **pick)

    def at_times(self, times: Tensor | list[float]) -> ReferenceClip:
        """The nearest frame for each requested time, relabelled with the requested times.

        This is what a stage's reconstruction targets are: `at_times(step_times).rgb` [K, 3, S, S] etc.;
        `source_index` still says which input frame each target is.
        """
        t = torch.as_tensor(times, dtype=torch.float32, device=self.times.device).reshape(-1)
        return replace(self.select(self.nearest_index(t)), times=t.clone())

    def resample(self, num_frames: int) -> ReferenceClip:
        """The clip at `num_frames` evenly spaced times in [0, 1] (nearest frames), e.g. a stage's frame lattice."""
        if num_frames < 2:
            raise ValueError(f"num_frames is {num_frames}; a clip needs at least 2 frames.")
        return self.at_times(torch.linspace(0.0, 1.0, num_frames))

    def save(self, path: str | Path) -> Path:
        """Write one safetensors file (JSON metadata in its header) through the atomic writer; see `load`."""
        tensors = {k: getattr(self, k) for k in ("rgb", "alpha", "mask", "times", "source_index")}
        if self.depth is not None:
            tensors["depth"] = self.depth
        # clones: the first frame's tensors may be views of the clip's (safetensors refuses shared storage)
        tensors.update({f"first/{k}": v.clone() for k, v in self.first.tensors().items()})
        meta = {
            "format": FORMAT,
            "fps": self.fps,
            "foreground_source": self.foreground_source,
            "depth_source": self.depth_source,
            "meta": self.meta,
            "first": self.first.metadata(),
        }
        return save_checkpoint(path, tensors, meta)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> ReferenceClip:
        tensors, meta = load_checkpoint(path, device=device)
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{path} is an Animate124 checkpoint but not a reference clip (format {meta.get('format')!r}); "
                "pass the clip file the Reference Video step wrote."
            )
        first = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("first/")}
        return cls(
            rgb=tensors["rgb"],
            alpha=tensors["alpha"],
            mask=tensors["mask"],
            times=tensors["times"],
            depth=tensors.get("depth"),
            source_index=tensors["source_index"],
            first=Reference.from_parts(first, meta["first"]),
            fps=float(meta["fps"]),
            foreground_source=meta["foreground_source"],
            depth_source=meta["depth_source"],
            meta=meta.get("meta", {}),
        )
