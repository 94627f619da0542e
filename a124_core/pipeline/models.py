"""Where a run's priors live in ComfyUI's `models/` folder, which ones a run uses, what must be there, loading them.

The layout is the README's (model files): diffusers folders of SD1.5 (or SD2.1-base), Zero123-XL and the video
prior, the ControlNet-Tile folder, MVDream's file in `checkpoints/` (or its diffusers port in `diffusers/`). The 2D
prior may instead be one `.safetensors` file (a DreamBooth checkpoint) with its model's config folder in `configs/`.
An image run uses SD, Zero123, the video prior and ControlNet-Tile; a text run (text-to-4D) only SD and the video
prior, plus MVDream when asked for. `missing_files` names every absent file of the priors a run uses, before
anything loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..weight_files import WEIGHT_SUFFIXES, check_safetensors

#: The released MVDream file (MVDream/MVDream on the Hugging Face hub), looked for in `models/checkpoints`.
MVDREAM_FILE = "sd-v2.1-base-4view.pt"
SD15_FOLDER = "stable-diffusion-v1-5"
SD21_FOLDER = "stable-diffusion-2-1-base"
#: What a diffusers folder of each prior must hold (the weights are checked by header in `validate`).
SD_FILES = (
    "model_index.json",
    "unet/config.json",
    "vae/config.json",
    "text_encoder/config.json",
    "tokenizer/vocab.json",
    "scheduler/scheduler_config.json",
)
EXPECTED = {
    "zero123": ("unet/config.json", "vae/config.json", "image_encoder/config.json"),
    "video": (
        "unet/config.json",
        "vae/config.json",
        "text_encoder/config.json",
        "tokenizer/vocab.json",
        "scheduler/scheduler_config.json",
    ),
    "controlnet": ("config.json",),
    "mvdream": ("unet/config.json", "vae/config.json", "text_encoder/config.json", "tokenizer/vocab.json"),
}
SD_CONFIG_FILES = ("model_index.json", "unet/config.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json")


def resolve_model(models_dir: Path, given: str | Path, folders: tuple[str, ...]) -> Path:
    """`given` as a path when it exists (or is absolute), else the same name under each of `models_dir`'s
    `folders` in turn (`--mvdream sd-v2.1-base-4view.pt` -> models/checkpoints/sd-v2.1-base-4view.pt); a name
    found nowhere resolves to the first folder's, so the missing-file line names the usual place."""
    path = Path(given)
    if path.exists() or path.is_absolute():
        return path
    candidates = [models_dir / folder / path for folder in folders]
    return next((c for c in candidates if c.exists()), candidates[0])


@dataclass(frozen=True)
class ModelPaths:
    """Local model files in ComfyUI's `models/` layout (see README: model files) and which of them a run uses."""

    sd: Path
    """The 2D image-text prior: a diffusers folder, or one .safetensors file (e.g. a DreamBooth checkpoint)."""
    zero123: Path
    video: Path
    controlnet: Path
    sd_config: Path | None = None
    """The config folder (configs + tokenizer, no weights) a single-file `sd` is read with."""
    mvdream: Path | None = None
    """MVDream's original .pt / .safetensors file or its diffusers folder; None: no multi-view prior."""
    text_only: bool = False
    """Text-to-4D: only SD, the video prior and (when given) MVDream are used."""

    @classmethod
    def from_models_dir(
        cls,
        models_dir: str | Path,
        video: str = "text-to-video-ms-1.7b",
        *,
        sd: str | Path | None = None,
        sd_config: str | Path | None = None,
        mvdream: str | Path | None = None,
        text_only: bool = False,
    ) -> ModelPaths:
        """The paths of a run. sd: default diffusers/stable-diffusion-v1-5, with MVDream diffusers/
        stable-diffusion-2-1-base (Dream-in-4D's 2D prior); sd_config for a single file: default
        configs/<that folder name>, by the file's text tower (OpenCLIP: SD2.1-base)."""
        root = Path(models_dir)
        default_sd = SD21_FOLDER if mvdream is not None else SD15_FOLDER
        sd_path = resolve_model(root, sd, ("checkpoints", "diffusers")) if sd else root / "diffusers" / default_sd
        config = Path(sd_config) if sd_config is not None else None
        if config is None and is_weight_file(sd_path):
            config = root / "configs" / (SD21_FOLDER if has_open_clip_tower(sd_path) else SD15_FOLDER)
        return cls(
            sd=sd_path,
            zero123=root / "diffusers" / "zero123-xl",
            video=root / "diffusers" / video,
            controlnet=root / "controlnet" / "control_v11f1e_sd15_tile",
            sd_config=config,
            mvdream=resolve_model(root, mvdream, ("checkpoints", "diffusers")) if mvdream is not None else None,
            text_only=text_only,
        )

    def used(self, only: tuple[str, ...] | None = None) -> dict[str, Path]:
        """The priors this run loads (of `only`, when given), by name."""
        names = ("sd", "video", "mvdream") if self.text_only else ("sd", "zero123", "video", "controlnet")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None and (only is None or n in only)}

    def missing_files(self, only: tuple[str, ...] | None = None) -> list[str]:
        """Every expected file of the used priors (of `only`, when given) that is absent, as 'file missing in
        folder' lines (empty when all are there)."""
        missing = []
        for name, path in self.used(only).items():
            if is_weight_file(path):
                missing += [] if path.is_file() else [f"{name} file {path} does not exist"]
                if name == "sd":
                    missing += _missing_in(self.sd_config, SD_CONFIG_FILES, "SD config folder (--sd-config)")
                continue
            missing += _missing_in(path, SD_FILES if name == "sd" else EXPECTED[name])
        projections = ("cc_projection", "clip_camera_projection")
        zero123 = self.zero123
        if "zero123" in self.used(only) and zero123.is_dir() and not any((zero123 / p).is_dir() for p in projections):
            missing.append(f"cc_projection/ (or clip_camera_projection/) missing in {self.zero123}")
        return missing

    def tokenizer_dir(self) -> Path:
        """A CLIP tokenizer folder for MVDream's original file (which carries none): the 2D prior's."""
        base = self.sd_config if is_weight_file(self.sd) and self.sd_config is not None else self.sd
        return base / "tokenizer"


def is_weight_file(path: Path) -> bool:
    """A model given as one weight file (by its suffix: a missing file still reads as one) rather than a folder."""
    return path.suffix in WEIGHT_SUFFIXES and not path.is_dir()


def has_open_clip_tower(path: Path) -> bool:
    """Whether an SD model (a diffusers folder or one file) is SD2.x: its text tower is OpenCLIP's (GELU)."""
    if is_weight_file(path):
        return _open_clip_file(path)
    config = path / "text_encoder" / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("hidden_act") == "gelu"


def _open_clip_file(path: Path) -> bool:
    """Whether a single-file SD checkpoint has SD2's OpenCLIP text tower (header only; False if unreadable)."""
    try:
        header = check_safetensors(path)
    except (OSError, ValueError):
        return False
    return any(k.startswith("cond_stage_model.model.") for k in header)


def _missing_in(folder: Path | None, files: tuple[str, ...], what: str = "") -> list[str]:
    if folder is None:
        return [f"{what or 'folder'}: none given"]
    if not folder.is_dir():
        return [f"folder {folder} does not exist (expected {', '.join(files)})"]
    return [f"{name} missing in {folder}" for name in files if not (folder / name).is_file()]


def load_priors(paths: ModelPaths) -> dict[str, Any]:
    """Load the priors the run uses onto the CPU; each stage moves its own onto the GPU only while it runs."""
    from ..priors.sd import StableDiffusionPrior

    used = paths.used()
    priors: dict[str, Any] = {
        "sd": StableDiffusionPrior.from_pretrained(paths.sd, device="cpu", config_dir=paths.sd_config)
    }
    if "zero123" in used:
        from ..priors.zero123 import Zero123Prior

        priors["zero123"] = Zero123Prior.from_pretrained(paths.zero123, device="cpu")
    if "video" in used:
        from ..priors.video import TextToVideoPrior

        priors["video"] = TextToVideoPrior.from_pretrained(paths.video, device="cpu")
    if "controlnet" in used:
        from ..priors.controlnet_tile import ControlNetTilePrior

        priors["controlnet"] = ControlNetTilePrior.from_pretrained(
            paths.controlnet, paths.sd, device="cpu", base_config_dir=paths.sd_config
        )
    if "mvdream" in used:
        from ..priors.mvdream import MVDreamPrior

        tokenizer = paths.tokenizer_dir()
        priors["mvdream"] = MVDreamPrior.from_pretrained(paths.mvdream, device="cpu", tokenizer_dir=tokenizer)
    return priors


__all__ = ["MVDREAM_FILE", "ModelPaths", "has_open_clip_tower", "is_weight_file", "load_priors", "resolve_model"]
