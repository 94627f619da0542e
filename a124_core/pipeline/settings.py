"""What a command-line run was asked for (`RunSettings`) and what it reports (`RunSummary`, the notes it prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..training.representations import DEFAULT_REPRESENTATION

SMOKE_WARNING = (
    "SMOKE PRESET: tiny random-weight priors and a tiny grid. This checks that everything runs; "
    "the images it writes are not meaningful."
)
TEXT_ONLY_NOTE = (
    "No --image: text-to-4D (Dream-in-4D's path): the static stage learns from the 2D prior (with --mvdream also from "
    "MVDream), the coarse stage from the video prior alone; textual inversion, Zero123, reconstruction and the refine "
    "stage need an image."
)


@dataclass
class RunSettings:
    """What the user asked for."""

    image: Path | None
    """The reference image; None for text-to-4D (no textual inversion, Zero123, reconstruction or refinement)."""
    prompt: str
    out: Path
    mask: Path | None = None
    """Foreground mask image (white = object) for an image without alpha (else rembg cuts the object out)."""
    depth: Path | None = None
    """Depth image aligned with the reference (larger = nearer); turns the depth loss on."""
    depth_model: Path | None = None
    """A transformers depth-estimation model folder (e.g. DPT) to estimate the depth instead."""
    rembg_model: str = "u2net"
    """rembg model used without alpha or mask; its .onnx is looked for in rembg's folders and <models_dir>/rembg."""
    preset: str = "smoke"
    representation: str = DEFAULT_REPRESENTATION
    """Dynamic field: a registered representation's name (`training/representations`)."""
    models_dir: Path | None = None
    video_model: str = "text-to-video-ms-1.7b"
    sd_model: Path | None = None
    """The 2D prior: a diffusers folder or one .safetensors file (a DreamBooth checkpoint); a bare name is looked for
    in <models_dir>/checkpoints and /diffusers. Default: diffusers/stable-diffusion-v1-5 (with MVDream: -2-1-base)."""
    sd_config: Path | None = None
    """Config folder (configs + tokenizer) of a single-file `sd_model`; default configs/<its model's folder name>."""
    mvdream: Path | None = None
    """Text mode's multi-view prior: MVDream's file or diffusers folder (a bare name: under checkpoints/ or
    diffusers/); None: the 2D prior alone."""
    static_prompt: str | None = None
    token: str | None = None
    initializer: str | None = None
    refine_prompt: str | None = None
    seed: int = 3407
    device: str | None = None
    resume: bool = False
    render_resolution: int | None = None
    render_frames: int | None = None
    render_views: int | None = None
    fps: int = 25
    video: Path | None = None
    """The reference video (video-to-4D, `pipeline/video.py`); then `image` is None."""
    mask_video: Path | None = None
    """Mask video of `video` (white = object), one mask per frame; else the frames' alpha, else rembg per frame."""
    video_prior: bool = False
    """Video-to-4D: add the text-to-video SDS under the motion prompt (off by default: the video is the motion)."""

    @property
    def text_only(self) -> bool:
        """Text-to-4D: no reference image and no reference video."""
        return self.image is None and self.video is None


@dataclass
class RunSummary:
    """Written as `<out>/summary.json`."""

    settings: dict[str, Any]
    prompts: dict[str, str]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_memory_gb: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


__all__ = ["SMOKE_WARNING", "TEXT_ONLY_NOTE", "RunSettings", "RunSummary"]
