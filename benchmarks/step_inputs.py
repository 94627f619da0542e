"""What the CPU-side step scripts (estimate_gpu.py, roofline.py, gpu_pipeline.py) share: the four priors (tiny
real ones or full-size fp16 FakeTensors), a reference image that needs no files, a sphere's occupancy grid standing
for the object, and the textual-inversion micro step.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from a124_core.reference.reference import build_reference
from a124_core.rendering.occupancy import OccupancyGrid


def synthetic_reference():
    """An RGBA disc with a stripe: a reference that needs no data files."""
    image = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((128, 96, 384, 416), fill=(200, 120, 60, 255))
    draw.rectangle((200, 96, 312, 416), fill=(60, 90, 200, 255))
    return build_reference(image)


class SphereDensity:
    """An analytic object for counting valid samples: density 100 inside radius r, 0 outside."""

    def __init__(self, radius: float):
        self.radius = radius

    def density(self, x: torch.Tensor, t=None) -> torch.Tensor:
        return 100.0 * (x.norm(dim=-1) < self.radius).float()


def sphere_occupancy(config, radius: float, time_slots: int, generator: torch.Generator) -> OccupancyGrid:
    """The occupancy grid of a stage config (`config.occupancy`, `config.render.bound`) around a still sphere."""
    occupancy = OccupancyGrid(config.occupancy, time_slots, config.render.bound)
    occupancy.refresh(SphereDensity(radius).density, generator=generator)  # every time slot (the sphere is still)
    return occupancy


def build_priors(tiny: bool, configs=None, extra: tuple[str, ...] = ()) -> dict:
    """Full-size fake fp16 priors (call inside a FakeTensorMode) or tiny real ones, keyed by stage slot. Priors own
    no preset settings: the stages' terms choose frame counts and scoring sizes (`configs` is not needed). `extra`:
    full-size only, the priors of other paths ('mvdream': MVDream on SD2.1, 'sd21': SD2.1-base)."""
    if tiny and extra:
        raise ValueError(f"No tiny priors for {extra}: project this path at full size (without --tiny).")
    if tiny:
        from a124_core.priors.controlnet_tile import ControlNetTilePrior
        from a124_core.priors.sd import StableDiffusionPrior
        from a124_core.priors.tiny import build_tiny_models
        from a124_core.priors.video import TextToVideoPrior
        from a124_core.priors.zero123 import Zero123Prior

        models = build_tiny_models(Path(tempfile.mkdtemp(prefix="a124-bench-")))
        return {
            "sd": StableDiffusionPrior.from_pretrained(models.sd15, device="cpu"),
            "zero123": Zero123Prior.from_pretrained(models.zero123, device="cpu"),
            "video": TextToVideoPrior.from_pretrained(models.video, device="cpu"),
            "controlnet": ControlNetTilePrior.from_pretrained(models.controlnet_tile, models.sd15, device="cpu"),
        }
    from a124_core.priors.full_size import fake_prior

    names = {"mvdream": "mvdream_sd21", "sd21": "sd21_base"}
    return {
        **{name: fake_prior(names[name]) for name in extra},
        "sd": fake_prior("sd15"),
        "zero123": fake_prior("zero123_xl"),
        "video": fake_prior("text_to_video_ms_1.7b"),
        "controlnet": fake_prior("controlnet_tile_sd15"),
    }


class TIMicroStep:
    """One textual-inversion micro batch, forward + backward to the token table (the trainer's `_micro_step`).

    The whole embedding table stands for the learned row (the gradient reaches only the embedding lookup);
    `release()` undoes that. `micro_steps` micro batches make one iteration (gradient accumulation). With a latent
    pool the step draws latents and the encoder runs `encodes_per_step` times per iteration (the pool's encoding
    spread over the run's steps).
    """

    def __init__(self, sd, tiny: bool, cfg=None):
        """cfg: the preset's TextualInversionConfig (default: the trainer's defaults)."""
        from a124_core.textual_inversion.trainer import TextualInversionConfig

        cfg = cfg or TextualInversionConfig()
        micro = 2 if tiny else min(cfg.micro_batch, cfg.batch_size)
        size = int(cfg.resolution or sd.image_size)
        self.sd, self.micro = sd, micro
        self.micro_steps = cfg.batch_size / micro
        self.pooled = cfg.latent_pool > 0
        self.encodes_per_step = -(-cfg.latent_pool // micro) / cfg.steps if self.pooled else 0.0
        self.pool_latents: torch.Tensor | None = None  # with a pool: the latents the steps draw (the caller encodes)
        self.table = sd.text_encoder.get_input_embeddings().weight
        self.table.requires_grad_(True)
        self.images = torch.rand(micro, 3, size, size)

    def encode(self) -> torch.Tensor:
        with torch.no_grad():
            return self.sd.encode_images(self.images)

    def __call__(self) -> None:
        from a124_core.textual_inversion.trainer import _micro_step

        prompts = ["a photo of a panda"] * self.micro
        latents = self.pool_latents if self.pooled else self.encode()
        _micro_step(self.sd, self.sd.tokenizer, latents, prompts, torch.Generator().manual_seed(0)).backward()

    def release(self) -> None:
        self.table.requires_grad_(False)
        self.table.grad = None


__all__ = ["TIMicroStep", "SphereDensity", "build_priors", "sphere_occupancy", "synthetic_reference"]
