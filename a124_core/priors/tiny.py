"""Tiny random-weight priors written to disk in the exact layouts of the real models.

Tests and the CLI's smoke preset load them through the real loading code with the hub blocked
(HF_HUB_OFFLINE=1), so the loaders are exercised on the same folder structures users have. Sizes follow
FACTS.md: each model is a few hundred K parameters and runs a forward pass in milliseconds on CPU.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .ldm_format import text_encoder_to_ldm, text_encoder_to_open_clip, unet_to_ldm, vae_to_ldm

#: Whole-word tokens of the tiny CLIP vocabulary (prompt words the tests and the smoke preset use).
from .tiny_files import SD_SCHEDULER, build_once, model_index, write_json
from .tiny_mvdream import build_tiny_mvdream, build_tiny_mvdream_diffusers
from .tiny_tokenizer import TINY_WORDS, write_clip_tokenizer  # noqa: F401  (re-exported)

TINY_UNET = {
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "cross_attention_dim": 32,
    "attention_head_dim": 4,
    "norm_num_groups": 8,
}
TINY_VAE = {
    "block_out_channels": (8, 16),
    "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
    "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
    "latent_channels": 4,
    "norm_num_groups": 4,
    "layers_per_block": 1,
    "sample_size": 32,
}
#: Native render size of the tiny priors: latent 16 (unet sample_size) x VAE factor 2.
TINY_IMAGE_SIZE = 32
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@dataclass(frozen=True)
class TinyModels:
    """Where `build_tiny_models` put each tiny prior (a ComfyUI-like models folder)."""

    models_dir: Path
    #: diffusers/stable-diffusion-v1-5: full diffusers folder (tokenizer, text encoder, UNet, VAE, scheduler).
    sd15: Path
    #: checkpoints/tiny-sd15.safetensors: original (LDM) single-file layout.
    sd15_single_file: Path
    #: configs/stable-diffusion-v1-5: configs + tokenizer, no weights (for `from_single_file(config=...)`).
    sd15_config_dir: Path
    #: diffusers/zero123-xl: Zero123 layout with `cc_projection` (`projection.*`).
    zero123: Path
    #: diffusers/stable-zero123: Zero123 layout with `clip_camera_projection` (`proj.*`).
    zero123_clip_camera: Path
    #: diffusers/text-to-video-ms-1.7b: ModelScope layout (UNet3DConditionModel).
    video: Path
    #: controlnet/control_v11f1e_sd15_tile: diffusers ControlNet folder matching the tiny SD1.5 base.
    controlnet_tile: Path
    #: Native render size of every tiny prior.
    image_size: int = TINY_IMAGE_SIZE
    #: checkpoints/sd-v2.1-base-4view.pt: MVDream's original layout, SD2.1 variant (+ its architecture .json), under
    #: the released file's name (where the CLI's `--mvdream` looks by default).
    mvdream: Path | None = None
    #: checkpoints/sd-v1.5-4view.pt: the SD1.5 variant (CLIP text tower, conv projections).
    mvdream_sd15: Path | None = None
    #: diffusers/mvdream-sd2.1-diffusers: the diffusers-layout port, same weights as `mvdream`.
    mvdream_diffusers: Path | None = None
    #: The CLIP tokenizer folder an original-layout MVDream file is loaded with (the files carry none).
    clip_tokenizer: Path | None = None
    #: diffusers/stable-diffusion-2-1-base: SD2.1-base diffusers folder (the 2D prior beside MVDream).
    sd21: Path | None = None
    #: checkpoints/tiny-sd21-base.safetensors: SD2.1-base single file with the OpenCLIP tower.
    sd21_single_file: Path | None = None
    #: configs/stable-diffusion-2-1-base: its configs + tokenizer, no weights.
    sd21_config_dir: Path | None = None


def text_stack(folder: Path, seed: int, open_clip: bool = False) -> None:
    """Tokenizer + CLIP text encoder; open_clip: SD2's flavour (GELU, pads with "!")."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    write_clip_tokenizer(folder / "tokenizer", pad_token="!" if open_clip else "<|endoftext|>")
    tok = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    torch.manual_seed(seed)
    cfg = CLIPTextConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        hidden_act="gelu" if open_clip else "quick_gelu",
    )
    CLIPTextModel(cfg).save_pretrained(folder / "text_encoder")


def _vae_and_scheduler(folder: Path, seed: int) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler

    torch.manual_seed(seed + 1)
    AutoencoderKL(**TINY_VAE).save_pretrained(folder / "vae")
    DDIMScheduler(**SD_SCHEDULER).save_pretrained(folder / "scheduler")


def _unet2d(in_channels: int, seed: int, **overrides: Any):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed + 2)
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        **{**TINY_UNET, **overrides},
    )


SD_COMPONENTS = {
    "feature_extractor": [None, None],
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def build_tiny_sd15(folder: Path, seed: int = 0) -> Path:
    """SD1.5 diffusers folder (tokenizer files, text encoder, 4-channel UNet, VAE, DDIM scheduler)."""

    def build(out: Path) -> None:
        text_stack(out, seed)
        _vae_and_scheduler(out, seed)
        _unet2d(4, seed).save_pretrained(out / "unet")
        model_index(out, "StableDiffusionPipeline", SD_COMPONENTS)

    return build_once(Path(folder), build)


def build_tiny_sd21(folder: Path, seed: int = 0) -> Path:
    """SD2.1-base diffusers folder: OpenCLIP-style text encoder (GELU, "!" padding), linear transformer projections,
    heads of width 4 (diffusers' attention_head_dim lists head counts per level), epsilon prediction."""

    def build(out: Path) -> None:
        text_stack(out, seed, open_clip=True)
        _vae_and_scheduler(out, seed)
        _unet2d(4, seed, attention_head_dim=[4, 8], use_linear_projection=True).save_pretrained(out / "unet")
        model_index(out, "StableDiffusionPipeline", SD_COMPONENTS)

    return build_once(Path(folder), build)


def build_tiny_single_file(
    folder: Path, checkpoint: Path, config_dir: Path, open_clip: bool = False
) -> tuple[Path, Path]:
    """Save a tiny SD folder as one original-layout .safetensors plus a weightless config folder; open_clip: the
    text tower in SD2's OpenCLIP layout (`cond_stage_model.model.*`) instead of SD1's CLIP one."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    def build_config(out: Path) -> None:
        shutil.copytree(folder, out, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))

    def build_ckpt(out: Path) -> None:
        unet = UNet2DConditionModel.from_pretrained(folder / "unet")
        vae = AutoencoderKL.from_pretrained(folder / "vae")
        text = CLIPTextModel.from_pretrained(folder / "text_encoder")
        state = unet_to_ldm(unet.state_dict(), unet.config.layers_per_block)
        state.update(vae_to_ldm(vae.state_dict(), len(vae.config.block_out_channels)))
        if open_clip:
            state.update(text_encoder_to_open_clip(text.state_dict(), text.config.projection_dim))
        else:
            state.update(text_encoder_to_ldm(text.state_dict()))
        save_file({k: v.contiguous() for k, v in state.items()}, str(out))

    return build_once(Path(checkpoint), build_ckpt), build_once(Path(config_dir), build_config)


def _zero123_common(out: Path, seed: int) -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    _vae_and_scheduler(out, seed)
    _unet2d(8, seed).save_pretrained(out / "unet")
    torch.manual_seed(seed + 3)
    vision = CLIPVisionConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=32,
    )
    CLIPVisionModelWithProjection(vision).save_pretrained(out / "image_encoder")
    processor = {
        "crop_size": {"height": 32, "width": 32},
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "image_mean": _CLIP_MEAN,
        "image_std": _CLIP_STD,
        "image_processor_type": "CLIPImageProcessor",
        "resample": 3,
        "size": {"shortest_edge": 32},
    }
    write_json(out / "feature_extractor" / "preprocessor_config.json", processor)


def build_tiny_zero123(folder: Path, seed: int = 0, layout: str = "cc_projection") -> Path:
    """Zero123(-XL) diffusers folder: 8-channel UNet, CLIP vision tower, Linear(D + 4 -> D) projection.

    layout "cc_projection" writes `cc_projection/` with `projection.*` keys (zero123-xl diffusers ports);
    "clip_camera_projection" writes `clip_camera_projection/` with `proj.*` keys (stable-zero123 ports).
    """
    names = {
        "cc_projection": ("projection", "CCProjection"),
        "clip_camera_projection": ("proj", "CLIPCameraProjection"),
    }
    if layout not in names:
        raise ValueError(f"Unknown Zero123 layout {layout!r}; use one of {sorted(names)}.")
    prefix, cls = names[layout]

    def build(out: Path) -> None:
        _zero123_common(out, seed)
        torch.manual_seed(seed + 4)
        proj = torch.nn.Linear(36, 32)
        weights = {f"{prefix}.weight": proj.weight.detach().clone(), f"{prefix}.bias": proj.bias.detach().clone()}
        (out / layout).mkdir()
        save_file(weights, str(out / layout / "diffusion_pytorch_model.safetensors"))
        if layout == "cc_projection":
            cfg = {"_class_name": cls, "in_channel": 36, "out_channel": 32}
        else:
            cfg = {"_class_name": cls, "embedding_dim": 32, "additional_embeddings": 4}
        write_json(out / layout / "config.json", cfg)
        pipeline = "Zero1to3StableDiffusionPipeline" if layout == "cc_projection" else "StableZero123Pipeline"
        model_index(
            out,
            pipeline,
            {
                layout: ["pipeline_zero1to3" if layout == "cc_projection" else "stable_zero123", cls],
                "feature_extractor": ["transformers", "CLIPImageProcessor"],
                "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
                "requires_safety_checker": False,
                "safety_checker": [None, None],
                "scheduler": ["diffusers", "DDIMScheduler"],
                "unet": ["diffusers", "UNet2DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"],
            },
        )

    return build_once(Path(folder), build)


def build_tiny_video(folder: Path, seed: int = 0) -> Path:
    """ModelScope text-to-video diffusers folder (UNet3DConditionModel + SD-style VAE/text stack)."""
    from diffusers import UNet3DConditionModel

    def build(out: Path) -> None:
        text_stack(out, seed)
        _vae_and_scheduler(out, seed)
        torch.manual_seed(seed + 5)
        unet = UNet3DConditionModel(
            sample_size=16,
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
            up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
            **TINY_UNET,
        )
        unet.save_pretrained(out / "unet")
        components = {k: v for k, v in SD_COMPONENTS.items() if k in ("scheduler", "text_encoder", "tokenizer", "vae")}
        model_index(out, "TextToVideoSDPipeline", {**components, "unet": ["diffusers", "UNet3DConditionModel"]})

    return build_once(Path(folder), build)


def build_tiny_controlnet(folder: Path, sd15_folder: Path, seed: int = 0) -> Path:
    """ControlNet v1.1 (Tile) diffusers folder derived from the tiny SD1.5 UNet (2x conditioning embedding)."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    def build(out: Path) -> None:
        unet = UNet2DConditionModel.from_pretrained(sd15_folder / "unet")
        torch.manual_seed(seed + 6)
        net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
        # from_unet copies the UNet and zero-initialises the output convs; perturb them so tests see an effect.
        with torch.no_grad():
            for p in net.parameters():
                if not p.any():
                    p.normal_(0.0, 0.05)
        net.save_pretrained(out)

    return build_once(Path(folder), build)


def build_tiny_models(models_dir: Path, seed: int = 0) -> TinyModels:
    """Build (or reuse) every tiny prior under a ComfyUI-like `models_dir`; see `TinyModels`."""

    root = Path(models_dir)
    sd15 = build_tiny_sd15(root / "diffusers" / "stable-diffusion-v1-5", seed)
    ckpt, cfg_dir = build_tiny_single_file(
        sd15, root / "checkpoints" / "tiny-sd15.safetensors", root / "configs" / "stable-diffusion-v1-5"
    )
    sd21 = build_tiny_sd21(root / "diffusers" / "stable-diffusion-2-1-base", seed)
    sd21_ckpt, sd21_cfg = build_tiny_single_file(
        sd21, root / "checkpoints" / "tiny-sd21-base.safetensors", root / "configs" / "stable-diffusion-2-1-base", True
    )
    return TinyModels(
        models_dir=root,
        sd15=sd15,
        sd15_single_file=ckpt,
        sd15_config_dir=cfg_dir,
        zero123=build_tiny_zero123(root / "diffusers" / "zero123-xl", seed, "cc_projection"),
        zero123_clip_camera=build_tiny_zero123(root / "diffusers" / "stable-zero123", seed, "clip_camera_projection"),
        video=build_tiny_video(root / "diffusers" / "text-to-video-ms-1.7b", seed),
        controlnet_tile=build_tiny_controlnet(root / "controlnet" / "control_v11f1e_sd15_tile", sd15, seed),
        mvdream=build_tiny_mvdream(root / "checkpoints" / "sd-v2.1-base-4view.pt", "open_clip", seed),
        mvdream_sd15=build_tiny_mvdream(root / "checkpoints" / "sd-v1.5-4view.pt", "clip", seed),
        mvdream_diffusers=build_tiny_mvdream_diffusers(root / "diffusers" / "mvdream-sd2.1-diffusers", seed),
        clip_tokenizer=sd15 / "tokenizer",
        sd21=sd21,
        sd21_single_file=sd21_ckpt,
        sd21_config_dir=sd21_cfg,
    )
