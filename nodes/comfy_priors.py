"""Priors built from ComfyUI's own loader outputs (MODEL, CLIP, VAE, CLIP_VISION, CONTROL_NET).

They implement the library's prior interface with ComfyUI's model contract: `model.model.apply_model(x, sigma, ...)`
takes the variance-exploding input x = z_t / sqrt(alpha_bar) at sigma = sqrt((1 - alpha_bar) / alpha_bar) and
returns x0; the epsilon the library expects is (x - x0) / sigma. The DDPM schedule is read from the model's
`model_sampling` (alpha_bar = 1 / (1 + sigma^2)). ComfyUI's loaders give inference tensors, so the VAE encoder,
which score distillation differentiates, is cloned outside inference mode once; the UNet only runs without grad.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from a124_core.priors.base import NoiseSchedule, Prior, PriorKind, Tokens, cfg_combine
from a124_core.priors.controlnet_tile import ControlCondition
from a124_core.priors.text import TextCondition, ViewDependentTextCondition
from a124_core.priors.zero123 import Zero123Condition, Zero123Reference

#: The 4th pose component of Stable Zero123 as ComfyUI's StableZero123_Conditioning writes it: rad(90 - 0).
STABLE_ZERO123_FOURTH = torch.pi / 2


def _load_models(*patchers: Any) -> None:
    """Put ComfyUI models on their compute device with their patches applied (a LoRA from ComfyUI's LoRA loader is
    a patch: it reaches the weights only here, also under --cpu); a no-op without ComfyUI."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return
    mm.load_models_gpu([p for p in patchers if p is not None])


class _ComfyLatentPrior(Prior):
    """Shared parts: schedule, differentiable VAE encoding, eps from apply_model, device moves."""

    def __init__(self, model: Any, vae: Any, image_size: int):
        self.patcher = model
        self.base = model.model  # comfy BaseModel: apply_model, model_sampling, latent_format
        sigmas = self.base.model_sampling.sigmas.detach().float().cpu()
        self.schedule = NoiseSchedule(alphas_cumprod=(1.0 / (1.0 + sigmas**2)).clone())
        self.image_size = int(image_size)
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        with torch.inference_mode(False):  # inference tensors -> normal ones: the encoder is differentiated
            first = vae.first_stage_model
            self.encoder = copy.deepcopy(first.encoder).float().requires_grad_(False).train(False)
            quant = getattr(first, "quant_conv", None)
            self.quant_conv = (
                copy.deepcopy(quant).float().requires_grad_(False).train(False) if quant is not None else None
            )

    def vae_latent(self, images: Tensor) -> Tensor:
        """images [B, 3, H, W] in [0, 1] -> raw (unscaled) posterior-mean latents [B, 4, H/8, W/8], differentiable."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"Expected images [B, 3, H, W] in [0, 1], got {tuple(images.shape)}.")
        param = next(self.encoder.parameters())
        moments = self.encoder((images * 2.0 - 1.0).to(param.device, param.dtype))
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        return moments.chunk(2, dim=1)[0].float()

    def encode_images(self, images: Tensor) -> Tensor:
        """images [B, 3, H, W] in [0, 1] -> latents in the model's space (SD1.5: x 0.18215), differentiable."""
        return self.base.latent_format.process_in(self.vae_latent(images)).float()

    def _eps(self, noisy: Tensor, t: Tensor, **conds: Any) -> Tensor:
        """eps of the batch noisy [N, C, h, w] (DDPM z_t) at timesteps t [N] through apply_model (x0 output)."""
        a = self.schedule.alphas_cumprod.to(noisy.device)[t.long()].float().view(-1, 1, 1, 1)
        sigma = ((1 - a) / a).sqrt()
        x = noisy.float() / a.sqrt()
        with torch.no_grad():
            x0 = self.base.apply_model(x.to(self.device), sigma.flatten().to(self.device), **conds).float()
        return ((x.to(x0.device) - x0) / sigma.to(x0.device)).float()

    def models(self) -> list[Any]:
        return [self.patcher]

    def to(self, device: torch.device | str) -> _ComfyLatentPrior:
        self.device = torch.device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.encoder.to(self.device, self.dtype)
        if self.quant_conv is not None:
            self.quant_conv.to(self.device, self.dtype)
        if self.device.type == torch.device(getattr(self.patcher, "load_device", "cpu")).type:
            _load_models(*self.models())  # not when a GPU run ends: ComfyUI offloads its models itself
        return self


class _ComfyText:
    """Prompt embeddings from a ComfyUI CLIP, cached; textual-inversion tokens via ComfyUI's `embedding:` syntax.

    ComfyUI's CLIP reads token vectors from the embeddings folder, so a token is written there once as
    `<name>.safetensors` (never over a different file of the same name); the CLIP object itself is not changed.
    """

    def __init__(self, clip: Any):
        self.clip = clip
        self.cache: dict[str, Tensor] = {}

    def __call__(self, prompt: str, tokens: Tokens | None = None) -> Tensor:
        text = prompt
        for name, vectors in (tokens or {}).items():
            ensure_embedding_file(name, vectors)
            text = text.replace(name, f"embedding:{name}")
        if text not in self.cache:
            with torch.no_grad():
                self.cache[text] = self.clip.encode_from_tokens(self.clip.tokenize(text)).float()
        return self.cache[text]


def ensure_embedding_file(name: str, embedding: Tensor) -> Path:
    """`<embeddings folder>/<name>.safetensors` holding exactly these vectors (written atomically once)."""
    from safetensors.torch import load_file

    from a124_core.textual_inversion.trainer import save_embedding

    from .glue import folder_paths

    vectors = embedding.detach().float().cpu().reshape(-1, embedding.shape[-1]).contiguous()
    folder = Path(folder_paths().get_folder_paths("embeddings")[0])
    path = folder / f"{name}.safetensors"
    if path.is_file():
        existing = load_file(str(path))
        if list(existing) != [name] or not torch.equal(existing[name].float(), vectors):
            raise ValueError(
                f"{path} exists with other vectors for {name!r}; pick another token name or remove the old file."
            )
        return path
    return save_embedding(path, name, vectors)


class ComfySDPrior(_ComfyLatentPrior):
    """SD1.5 from CheckpointLoaderSimple (MODEL + CLIP + VAE) as the image-text prior."""

    kind = PriorKind.IMAGE_TEXT

    def __init__(self, model: Any, clip: Any, vae: Any, image_size: int = 512):
        super().__init__(model, vae, image_size)
        self.text = _ComfyText(clip)

    def text_condition(self, prompt: str, negative: str = "", tokens: Tokens | None = None) -> TextCondition:
        return TextCondition(cond=self.text(prompt, tokens), uncond=self.text(negative))

    def view_dependent_condition(self, prompt: str, negative: str = "") -> ViewDependentTextCondition:
        """Front/side/back embeddings blended by azimuth (SPEC 5), as the diffusers SD prior does."""
        views = [self.text(f"{prompt}, {v} view") for v in ("front", "side", "back")]
        return ViewDependentTextCondition(*views, uncond=self.text(negative))

    def predict_noise(self, noisy_latents: Tensor, t: Tensor, condition: Any, guidance_scale: float) -> Tensor:
        """CFG eps (float32) with uncond and cond in one apply_model call."""
        if not isinstance(condition, TextCondition):
            raise TypeError(f"ComfySDPrior needs a TextCondition, got {type(condition).__name__}.")
        c, u = condition.batched(noisy_latents.shape[0])
        eps = self._eps(
            torch.cat([noisy_latents] * 2), torch.cat([t, t]), c_crossattn=torch.cat([u, c]).to(self.device)
        )
        return cfg_combine(eps, guidance_scale)


class ComfyControlNetTilePrior(ComfySDPrior):
    """ControlNet-Tile (ControlNetLoader) on an SD1.5 base from CheckpointLoaderSimple as the image-control prior."""

    kind = PriorKind.IMAGE_CONTROL

    def __init__(
        self, control_net: Any, model: Any, clip: Any, vae: Any, image_size: int = 1024, strength: float = 1.0
    ):
        """image_size: the default scoring size (the refine stage's ControlNet term sets its own, SPEC 5)."""
        super().__init__(model, clip, vae, image_size)
        self.control_net = control_net
        self.strength = float(strength)

    def control_condition(
        self, text: TextCondition, control_images: Tensor, controlnet_prompt: str = "best quality, high resolution"
    ) -> ControlCondition:
        """control_images [B, 3, S, S] in [0, 1] at the size the term scores (the term resizes them)."""
        control_text = TextCondition(cond=self.text(controlnet_prompt), uncond=text.uncond)
        return ControlCondition(
            text=text, control_text=control_text, image=control_images.detach().float().clamp(0, 1)
        )

    def models(self) -> list[Any]:
        return [self.patcher, *self.control_net.get_models()]

    def predict_noise(self, noisy_latents: Tensor, t: Tensor, condition: Any, guidance_scale: float) -> Tensor:
        """ControlNet residuals from ComfyUI's ControlNet (its own text via `crossattn_controlnet`) + UNet, batched."""
        if not isinstance(condition, ControlCondition):
            raise TypeError(f"ComfyControlNetTilePrior needs a ControlCondition, got {type(condition).__name__}.")
        b = noisy_latents.shape[0]
        c, u = condition.text.batched(b)
        cc, cu = condition.control_text.batched(b)
        image = condition.image.expand(b, -1, -1, -1) if condition.image.shape[0] == 1 else condition.image
        net = self.control_net.copy().set_cond_hint(image.to(self.device), self.strength, (0.0, 1.0))
        sampling = self.base.model_sampling
        net.pre_run(self.base, lambda p: sampling.percent_to_sigma(p))
        noisy, tt = torch.cat([noisy_latents] * 2), torch.cat([t, t])
        a = self.schedule.alphas_cumprod.to(noisy.device)[tt.long()].float().view(-1, 1, 1, 1)
        sigma, x = ((1 - a) / a).sqrt(), noisy.float() / a.sqrt()
        ctx = torch.cat([u, c]).to(self.device)
        cond = {"c_crossattn": ctx, "crossattn_controlnet": torch.cat([cu, cc]).to(self.device)}
        try:
            with torch.no_grad():
                control = net.get_control(x.to(self.device), sigma.flatten().to(self.device), cond, 2, {})
                x0 = self.base.apply_model(
                    x.to(self.device), sigma.flatten().to(self.device), c_crossattn=ctx, control=control
                ).float()
        finally:
            net.cleanup()
        return cfg_combine((x.to(x0.device) - x0) / sigma.to(x0.device), guidance_scale)


class ComfyZero123Prior(_ComfyLatentPrior):
    """Stable Zero123 from ImageOnlyCheckpointLoader (MODEL + CLIP_VISION + VAE) as the image-pose prior.

    Conditioning as ComfyUI's StableZero123_Conditioning builds it: cc_projection([CLIP image embedding, pose]) with
    pose [rad(d_polar), sin(d_az), cos(d_az), pi/2]; uncond = zero embedding + zero concat latent (SPEC 5).
    """

    kind = PriorKind.IMAGE_POSE

    def __init__(self, model: Any, clip_vision: Any, vae: Any, image_size: int = 256):
        super().__init__(model, vae, image_size)
        if not hasattr(self.base, "cc_projection"):
            raise ValueError(
                "This MODEL has no cc_projection: it is not a Stable Zero123 checkpoint. Load stable_zero123.ckpt "
                "with ImageOnlyCheckpointLoader (or use Load Zero123 Prior for a diffusers Zero123-XL folder)."
            )
        self.clip_vision = clip_vision

    def reference_condition(self, image: Tensor) -> Zero123Reference:
        """image [1, 3, H, W] in [0, 1] -> CLIP image embedding [1, 1, 768] + raw VAE latent of the 256 reference."""
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"Reference image must be [1, 3, H, W] in [0, 1], got {tuple(image.shape)}.")
        with torch.no_grad():
            emb = self.clip_vision.encode_image(image.permute(0, 2, 3, 1).float())["image_embeds"].float()
            ref = torch.nn.functional.interpolate(
                image.float(), size=(self.image_size,) * 2, mode="bilinear", antialias=True
            )
            latent = self.vae_latent(ref)
        return Zero123Reference(clip_embedding=emb.reshape(1, 1, -1), latent=latent)

    def pose_condition(self, reference: Zero123Reference, pose: Tensor) -> Zero123Condition:
        """pose [B, 4] as `pose_embedding` builds it; Stable Zero123 reads pi/2 + d_radius in the fourth slot."""
        pose = torch.as_tensor(pose, dtype=torch.float32).clone()
        pose[:, 3] = STABLE_ZERO123_FOURTH + pose[:, 3]
        clip = reference.clip_embedding.expand(pose.shape[0], 1, -1)
        proj = self.base.cc_projection
        with torch.no_grad():
            emb = proj(torch.cat([clip, pose[:, None, :]], dim=-1).to(proj.weight.device, proj.weight.dtype)).float()
        return Zero123Condition(embedding=emb, latent=reference.latent, pose=pose)

    def predict_noise(self, noisy_latents: Tensor, t: Tensor, condition: Any, guidance_scale: float) -> Tensor:
        if not isinstance(condition, Zero123Condition):
            raise TypeError(f"ComfyZero123Prior needs a Zero123Condition, got {type(condition).__name__}.")
        b = noisy_latents.shape[0]
        emb = condition.embedding.expand(b, -1, -1).to(self.device)
        ref = condition.latent.expand(b, -1, -1, -1).to(self.device)
        eps = self._eps(
            torch.cat([noisy_latents] * 2),
            torch.cat([t, t]),
            c_crossattn=torch.cat([torch.zeros_like(emb), emb]),
            c_concat=torch.cat([torch.zeros_like(ref), ref]),
        )
        return cfg_combine(eps, guidance_scale)
