"""ComfyUI's model objects (MODEL, CLIP, VAE, CLIP_VISION, CONTROL_NET), re-created around tiny diffusers models.

Each follows the contract of ComfyUI 0.3.64 the adapters rely on: `model.model.apply_model(x, sigma, c_concat,
c_crossattn, control)` takes the variance-exploding input and returns x0 (BaseModel._apply_model with
ModelSamplingDiscrete + EPS), `model_sampling.sigmas`, `latent_format.process_in`, `vae.first_stage_model`
(encoder + quant_conv), `clip.tokenize` / `clip.encode_from_tokens`, `clip_vision.encode_image(...)["image_embeds"]`
and ControlNet's copy / set_cond_hint / pre_run / get_control / cleanup. The adapters must then give exactly what
the library's diffusers priors give on the same weights.
"""

from __future__ import annotations

import copy

import torch


class ModelSampling:
    def __init__(self, alphas_cumprod: torch.Tensor):
        self.sigmas = ((1 - alphas_cumprod) / alphas_cumprod).sqrt().float()
        self.log_sigmas = self.sigmas.log()

    def timestep(self, sigma):
        dists = sigma.log().to(self.log_sigmas.device) - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape).to(sigma.device)

    def calculate_input(self, sigma, x):
        return x / (sigma.view(-1, 1, 1, 1) ** 2 + 1.0).sqrt()

    def calculate_denoised(self, sigma, out, x):
        return x - out * sigma.view(-1, 1, 1, 1)

    def percent_to_sigma(self, percent):
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return float(self.sigmas[int((1.0 - percent) * (len(self.sigmas) - 1))])


class LatentFormat:
    def __init__(self, scale: float):
        self.scale_factor = scale

    def process_in(self, latent):
        return latent * self.scale_factor


class BaseModel:
    def __init__(self, unet, alphas_cumprod, scale, cc_projection=None):
        self.diffusion_model = unet
        self.model_sampling = ModelSampling(alphas_cumprod)
        self.latent_format = LatentFormat(scale)
        if cc_projection is not None:
            self.cc_projection = cc_projection

    def apply_model(self, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None, **kwargs):
        sigma = t
        xc = self.model_sampling.calculate_input(sigma, x)
        if c_concat is not None:
            xc = torch.cat([xc, c_concat], dim=1)
        extra = {}
        if control is not None:
            extra = {
                "down_block_additional_residuals": control["down"],
                "mid_block_additional_residual": control["mid"],
            }
        eps = self.diffusion_model(xc, self.model_sampling.timestep(sigma), encoder_hidden_states=c_crossattn, **extra)
        return self.model_sampling.calculate_denoised(sigma, eps.sample.float(), x)


class ModelPatcher:
    def __init__(self, model):
        self.model = model


class VAE:
    def __init__(self, diffusers_vae):
        self.first_stage_model = diffusers_vae


class CLIP:
    """Tokens are the prompt itself; encoding is the diffusers text encoder's last hidden state."""

    def __init__(self, prompt_encoder):
        self.encoder = prompt_encoder

    def tokenize(self, text):
        return text

    def encode_from_tokens(self, tokens):
        return self.encoder.encode_uncached(tokens)


class ClipVision:
    def __init__(self, zero123_prior):
        self.prior = zero123_prior

    def encode_image(self, image):
        ref = self.prior.reference_condition(image.permute(0, 3, 1, 2))
        return {"image_embeds": ref.clip_embedding[:, 0]}


class ControlNet:
    def __init__(self, controlnet):
        self.controlnet = controlnet
        self.hint = None
        self.strength = 1.0
        self.sampling = None
        self.cleaned = 0

    def copy(self):
        c = copy.copy(self)
        c.cleaned = 0
        return c

    def set_cond_hint(self, hint, strength=1.0, timestep_percent_range=(0.0, 1.0), vae=None, extra_concat=None):
        self.hint, self.strength = hint, strength
        return self

    def pre_run(self, model, percent_to_timestep_function):
        self.sampling = model.model_sampling
        assert percent_to_timestep_function(0.0) > percent_to_timestep_function(1.0)

    def get_control(self, x_noisy, t, cond, batched_number, transformer_options):
        hint = (
            torch.cat([self.hint] * batched_number)
            if self.hint.shape[0] * batched_number == x_noisy.shape[0]
            else self.hint
        )
        xc = self.sampling.calculate_input(t, x_noisy)
        down, mid = self.controlnet(
            xc,
            self.sampling.timestep(t),
            encoder_hidden_states=cond.get("crossattn_controlnet", cond["c_crossattn"]),
            controlnet_cond=hint,
            conditioning_scale=self.strength,
            return_dict=False,
        )
        return {"down": down, "mid": mid}

    def cleanup(self):
        self.cleaned += 1

    def get_models(self):
        return []
