"""Where a run's priors live in ComfyUI's `models/` folder, what must be there, and loading them.

The layout is the README's (model files): diffusers folders of SD1.5, Zero123-XL and the video prior, the
ControlNet-Tile folder. `missing_files` names every absent file before anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelPaths:
    """Local model folders in ComfyUI's `models/` layout (see README: model files)."""

    sd15: Path
    zero123: Path
    video: Path
    controlnet: Path

    @classmethod
    def from_models_dir(cls, models_dir: str | Path, video: str = "text-to-video-ms-1.7b") -> ModelPaths:
        root = Path(models_dir)
        return cls(
            sd15=root / "diffusers" / "stable-diffusion-v1-5",
            zero123=root / "diffusers" / "zero123-xl",
            video=root / "diffusers" / video,
            controlnet=root / "controlnet" / "control_v11f1e_sd15_tile",
        )

    def missing_files(self) -> list[str]:
        """Every expected file that is absent, as 'file missing in folder' lines (empty when all are there)."""
        expected = {
            self.sd15: [
                "model_index.json",
                "unet/config.json",
                "vae/config.json",
                "text_encoder/config.json",
                "tokenizer/vocab.json",
                "scheduler/scheduler_config.json",
            ],
            self.zero123: ["unet/config.json", "vae/config.json", "image_encoder/config.json"],
            self.video: [
                "unet/config.json",
                "vae/config.json",
                "text_encoder/config.json",
                "tokenizer/vocab.json",
                "scheduler/scheduler_config.json",
            ],
            self.controlnet: ["config.json"],
        }
        missing = []
        for folder, files in expected.items():
            if not folder.is_dir():
                missing.append(f"folder {folder} does not exist (expected {', '.join(files)})")
                continue
            missing += [f"{name} missing in {folder}" for name in files if not (folder / name).is_file()]
        if self.zero123.is_dir() and not any(
            (self.zero123 / p).is_dir() for p in ("cc_projection", "clip_camera_projection")
        ):
            missing.append(f"cc_projection/ (or clip_camera_projection/) missing in {self.zero123}")
        return missing


def load_priors(models_root: Path, video_model: str) -> dict[str, Any]:
    """Load every prior onto the CPU; each stage moves its own onto the GPU only while it runs."""
    from ..priors.controlnet_tile import ControlNetTilePrior
    from ..priors.sd import StableDiffusionPrior
    from ..priors.video import TextToVideoPrior
    from ..priors.zero123 import Zero123Prior

    paths = ModelPaths.from_models_dir(models_root, video_model)
    return {
        "sd": StableDiffusionPrior.from_pretrained(paths.sd15, device="cpu"),
        "zero123": Zero123Prior.from_pretrained(paths.zero123, device="cpu"),
        "video": TextToVideoPrior.from_pretrained(paths.video, device="cpu"),
        "controlnet": ControlNetTilePrior.from_pretrained(paths.controlnet, paths.sd15, device="cpu"),
    }


__all__ = ["ModelPaths", "load_priors"]
