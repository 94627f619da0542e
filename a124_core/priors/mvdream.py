"""MVDream: the 3D-aware prior of Dream-in-4D's static stage (multi-view text -> image, Shi et al. 2023).

Four views of one object are denoised together: the UNet adds each view's camera (a 4x4 matrix in MVDream's
convention, `multiview_cameras.mvdream_camera_matrices`) to its timestep embedding and takes self-attention over
the four views jointly (`mvdream_arch`). Classifier-free guidance batches both branches in one UNet call with the
same cameras (the original's `t2i` and threestudio guidance do the same); text embeddings are cached per prompt.

Two ways in: a released original-layout file (`sd-v2.1-base-4view.pt`, `sd-v1.5-4view.pt`, read with
`torch.load(weights_only=True)`; the tokenizer files come from elsewhere, e.g. ComfyUI's `comfy/sd1_tokenizer`),
or a diffusers-layout folder (ashawkey/mvdream-sd2.1-diffusers: `unet/` in the original key names and config terms,
standard `vae/`, `text_encoder/`, `tokenizer/`, `scheduler/`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..compat import transformers_dtype_kwargs
from ..weight_files import WEIGHT_SUFFIXES
from .base import PriorKind, cfg_combine
from .latent import LatentComponents, TextLatentPrior, check_text_condition, tokenizer_files
from .ldm_format import UNET_PREFIX
from .loading import (
    TRANSFORMERS_WEIGHTS,
    choose_device_dtype,
    class_name,
    load_schedule,
    read_json,
    require_component,
    require_folder,
    weight_file,
)
from .mvdream_arch import MultiViewAttnProcessor, MVDreamArchitecture, build_networks
from .mvdream_weights import load_original, read_state, text_layout
from .text import TextCondition


@dataclass
class MultiViewCondition:
    """The text condition and the camera of every view of one step."""

    text: TextCondition
    cameras: Tensor  # [B, 16] MVDream camera matrices, flattened row-major; B a multiple of num_views


class MVDreamPrior(TextLatentPrior):
    """MVDream epsilon prior over latents [B, 4, 32, 32] of 256 px renders, B = groups of `num_views` views."""

    kind = PriorKind.IMAGE_TEXT_MULTIVIEW

    @dataclass
    class Config:
        #: Render size fed to the VAE; None = the model's native size (UNet sample_size x 8 = 256 for MVDream).
        image_size: int | None = None

    def __init__(
        self,
        parts: LatentComponents,
        architecture: MVDreamArchitecture,
        config: MVDreamPrior.Config,
        device: torch.device,
        dtype: torch.dtype,
    ):
        """Wrap loaded networks (frozen here); `from_pretrained` is the loading entry point."""
        super().__init__(parts, 0, device, dtype)
        self.cfg = config
        self.architecture = architecture
        self.num_views = architecture.num_views
        self.image_size = config.image_size or self._native_size(parts.unet_config)
        self.unet.set_attn_processor(MultiViewAttnProcessor())

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        config: MVDreamPrior.Config | None = None,
        device: torch.device | str | None = None,
        tokenizer_dir: str | Path | None = None,
        architecture: MVDreamArchitecture | str | Path | None = None,
    ) -> MVDreamPrior:
        """Load an original-layout file (+ `tokenizer_dir`: CLIP's vocab.json + merges.txt) or a diffusers folder.

        architecture: for a file whose network is not one of the released two (a JSON in the terms of
        configs/mvdream_sd21.json, or the object); default: `<file>.json` beside it, else the released model with
        the file's text tower.
        """
        path = Path(path)
        dev, dtype = choose_device_dtype(device)
        if path.is_dir():
            parts, arch = _load_folder(path, dtype)
        else:
            parts, arch = _load_checkpoint(path, tokenizer_dir, architecture)
        return cls(parts, arch, config or cls.Config(), dev, dtype)

    def multiview_condition(self, text: Any, camera_matrices: Tensor) -> MultiViewCondition:
        """Condition for B views: the text condition and their cameras [B, 4, 4] (or [B, 16]) in MVDream's
        convention; the guidance term builds the matrices from its cameras, the prior only embeds them."""
        text = check_text_condition(text, "MVDreamPrior")
        cams = torch.as_tensor(camera_matrices, dtype=torch.float32)
        if cams.dim() == 3 and cams.shape[-2:] == (4, 4):
            cams = cams.reshape(cams.shape[0], 16)
        if cams.dim() != 2 or cams.shape[1] != 16 or cams.shape[0] % self.num_views:
            raise ValueError(
                f"camera_matrices must be [B, 4, 4] or [B, 16] with B a multiple of {self.num_views} views "
                f"(multiview_cameras.mvdream_camera_matrices), got {tuple(cams.shape)}."
            )
        return MultiViewCondition(text=text, cameras=cams.to(self.device))

    def _both_branches(self, noisy_latents: Tensor, t: Tensor, condition: Any) -> Tensor:
        """eps [2B, 4, h, w] ordered (uncond, cond) from one UNet call over both branches."""
        if not isinstance(condition, MultiViewCondition):
            raise TypeError(
                f"MVDreamPrior needs a MultiViewCondition from multiview_condition(), got {type(condition).__name__}."
            )
        b = noisy_latents.shape[0]
        if b != condition.cameras.shape[0]:
            raise ValueError(f"{b} latents but {condition.cameras.shape[0]} cameras; give one camera per view.")
        c, u = condition.text.batched(b)
        cams = condition.cameras.to(self.device, self.dtype)
        return self._unet_eps(
            torch.cat([noisy_latents] * 2),
            torch.cat([t, t]),
            torch.cat([u, c]),
            class_labels=torch.cat([cams, cams]),
            cross_attention_kwargs={"num_views": self.num_views},
        )

    def predict_noise_branches(self, noisy_latents: Tensor, t: Tensor, condition: Any) -> tuple[Tensor, Tensor]:
        """noisy_latents [B, 4, h, w], t [B] -> (eps_uncond, eps_cond), each [B, 4, h, w] float32; one UNet call."""
        eps_u, eps_c = self._both_branches(noisy_latents, t, condition).chunk(2)
        return eps_u, eps_c

    def predict_noise(self, noisy_latents: Tensor, t: Tensor, condition: Any, guidance_scale: float) -> Tensor:
        """noisy_latents [B, 4, h, w], t [B] -> CFG epsilon [B, 4, h, w] (float32); one batched UNet call."""
        return cfg_combine(self._both_branches(noisy_latents, t, condition), guidance_scale)


def clip_tokenizer(folder: Path, layout: str) -> Any:
    """CLIP's BPE tokenizer from `folder`; OpenCLIP (SD2) pads with id 0 ("!"), CLIP with <|endoftext|>."""
    from transformers import CLIPTokenizer

    tokenizer_files(folder)
    extra = {"pad_token": "!"} if layout == "open_clip" else {}
    return CLIPTokenizer.from_pretrained(folder, local_files_only=True, model_max_length=77, **extra)


def _architecture(
    given: MVDreamArchitecture | str | Path | None, path: Path, layout: str, state: dict[str, Tensor]
) -> MVDreamArchitecture:
    """The architecture to read `path` as, with the transformer projection kind taken from the weights."""
    sidecar = path.with_suffix(".json")
    if isinstance(given, MVDreamArchitecture):
        arch = given
    elif given is not None or sidecar.is_file():
        arch = MVDreamArchitecture.from_json(Path(given) if given is not None else sidecar)
    else:
        arch = MVDreamArchitecture.preset(layout)
    if arch.text_encoder.get("layout") != layout:
        raise ValueError(
            f"{path} carries a {layout} text encoder but its architecture says {arch.text_encoder.get('layout')}."
        )
    return _with_projection(arch, state, UNET_PREFIX)


def _with_projection(arch: MVDreamArchitecture, state: dict[str, Tensor], prefix: str) -> MVDreamArchitecture:
    """Linear (SD2) or 1x1-conv (SD1) transformer projections, as the weights have them (the diffusers port's
    config drops the flag)."""
    proj = next((v for k, v in state.items() if k.startswith(prefix) and k.endswith(".proj_in.weight")), None)
    if proj is None:
        return arch
    return MVDreamArchitecture.from_dict(
        {**arch.to_dict(), "unet": {**arch.unet, "use_linear_in_transformer": proj.dim() == 2}}
    )


def _load_checkpoint(
    path: Path,
    tokenizer_dir: str | Path | None,
    architecture: MVDreamArchitecture | str | Path | None,
) -> tuple[LatentComponents, MVDreamArchitecture]:
    """Networks built empty and filled from the original-layout file (memory-mapped: no second copy in RAM)."""
    if not path.is_file():
        raise FileNotFoundError(f"MVDream checkpoint {path} does not exist (MVDream/MVDream: sd-v2.1-base-4view.pt).")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ValueError(f"{path}: MVDream weights are a .pt / .safetensors file or a diffusers folder.")
    if tokenizer_dir is None:
        raise ValueError(
            f"Loading {path} needs tokenizer_dir: a folder with CLIP's vocab.json and merges.txt (the released file "
            f"has no tokenizer; ComfyUI ships one in comfy/sd1_tokenizer)."
        )
    state = read_state(path)
    layout = text_layout(state, path)
    arch = _architecture(architecture, path, layout, state)
    tokenizer = clip_tokenizer(Path(tokenizer_dir), layout)
    nets = build_networks(arch, tokenizer, empty=True)
    schedule = load_original(nets, state, arch, path)
    parts = LatentComponents(
        tokenizer=tokenizer,
        text_encoder=nets["text_encoder"],
        unet=nets["unet"],
        vae=nets["vae"],
        schedule=schedule,
        unet_config=dict(nets["unet"].config),
    )
    return parts, arch


def _load_folder(root: Path, dtype: torch.dtype) -> tuple[LatentComponents, MVDreamArchitecture]:
    """ashawkey/mvdream-sd2.1-diffusers: the UNet in the original key names, its config in the original terms."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    root = require_folder(root, "MVDream")
    require_component(root, "unet")
    unet_class = class_name(root / "unet" / "config.json")
    if unet_class != "MultiViewUNetModel":
        raise ValueError(
            f"{root}/unet is a {unet_class or 'UNet without _class_name'}, not MVDream's MultiViewUNetModel; "
            f"a plain Stable Diffusion folder is loaded as the 2D (image-text) prior."
        )
    text_variant = require_component(root, "text_encoder", TRANSFORMERS_WEIGHTS)
    vae_variant = require_component(root, "vae")
    tokenizer_files(root / "tokenizer")
    schedule = load_schedule(root)  # MVDream predicts epsilon; anything else is refused here
    text_encoder = CLIPTextModel.from_pretrained(
        root / "text_encoder", variant=text_variant, local_files_only=True, **transformers_dtype_kwargs(dtype)
    )
    layout = "open_clip" if text_encoder.config.hidden_act == "gelu" else "clip"
    tokenizer = clip_tokenizer(root / "tokenizer", layout)
    unet_cfg = {k: v for k, v in read_json(root / "unet" / "config.json").items() if not k.startswith("_")}
    if unet_cfg.get("ip_dim", 0):
        raise ValueError(f"{root} is ImageDream (image-prompted, ip_dim {unet_cfg['ip_dim']}), not MVDream.")
    weights = weight_file(root, "unet")
    state = {UNET_PREFIX + k: v for k, v in read_state(weights).items()}
    text = {"layout": layout, "layers": text_encoder.config.num_hidden_layers, "layer": "last"}
    arch = _with_projection(MVDreamArchitecture(unet=unet_cfg, vae={}, text_encoder=text), state, UNET_PREFIX)
    unet = build_networks(arch, empty=True, parts=("unet",))["unet"]
    load_original({"unet": unet}, state, arch, weights)
    vae = AutoencoderKL.from_pretrained(root / "vae", variant=vae_variant, local_files_only=True, torch_dtype=dtype)
    parts = LatentComponents(tokenizer, text_encoder, unet, vae, schedule, dict(unet.config))
    return parts, arch
