"""Textual inversion (SPEC 9): learn one token for the reference image with the frozen SD1.5 prior.

The prior is not changed (other nodes share it): a private copy of its tokenizer learns the token, and what is
optimised is a float32 copy of the token's vectors, injected by hooks on the embedding layer
(`priors.tokens.injected`), so the embedding table never changes (also under fp16 on CUDA, where a half-precision
row could not absorb lr 1e-4 updates). The result is a `<token>.safetensors` file and the vectors, which later
conditions use through the same injection. The loss is the plain denoising epsilon MSE (not SDS); a batch of 16 is
built by gradient accumulation. Progress, cancellation and checkpoint-on-interrupt are the stage runner's.

With `latent_pool` > 0 (the `fast` preset) the VAE encoder runs once per pooled image instead of once per image of
every step: a pool of augmented images is encoded at the start and each micro batch draws latents from it (kohya's
`cache_latents`, with the augmentations kept). The encoder returns the posterior mean, so a pooled latent is exactly
what encoding that augmented image in the step would give; what changes is that the batches are drawn from a finite
set of augmentations instead of fresh ones.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checkpoint import load_checkpoint, optimizer_tensors, restore_optimizer, save_checkpoint, save_safetensors
from ..priors.tokens import injected
from ..training.runner import Callbacks, TrainingCancelled
from .augment import AugmentConfig, augment

FORMAT = "a124-textual-inversion"

#: Object templates of the textual-inversion paper's training script ("{}" = the placeholder token).
OBJECT_TEMPLATES = (
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a photo of a dirty {}",
    "a dark photo of the {}",
    "a photo of my {}",
    "a photo of the cool {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a cropped photo of a {}",
    "a photo of the {}",
    "a good photo of the {}",
    "a photo of one {}",
    "a close-up photo of the {}",
    "a rendition of the {}",
    "a photo of the clean {}",
    "a rendition of a {}",
    "a photo of a nice {}",
    "a good photo of a {}",
    "a photo of the nice {}",
    "a photo of the small {}",
    "a photo of the weird {}",
    "a photo of the large {}",
    "a photo of a cool {}",
    "a photo of a small {}",
)


@dataclass(frozen=True)
class TextualInversionConfig:
    """Textual-inversion settings (defaults follow SPEC 9)."""

    token: str = "_panda_"
    """Placeholder token (lower case, letters/digits/_/-); also the embedding file's name and key."""
    initializer: str = "panda"
    """A word that is one token in the CLIP vocabulary; the new vectors start as its embedding."""
    n_vectors: int = 1
    """Vectors per token (diffusers adds token, token_1, ... for n > 1)."""
    steps: int = 3000
    """Optimizer steps (each of `batch_size` images)."""
    lr: float = 1e-4
    """AdamW learning rate (constant)."""
    weight_decay: float = 1e-2
    """AdamW weight decay on the learned vectors."""
    batch_size: int = 16
    """Images per optimizer step, reached by gradient accumulation."""
    micro_batch: int = 4
    """Images per forward/backward pass (lower it to save memory; results are the same up to rounding)."""
    resolution: int | None = None
    """Training image size; None = the prior's native size (512 for SD1.5)."""
    templates: tuple[str, ...] = OBJECT_TEMPLATES
    """Prompt templates with one "{}" for the token."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Colour the RGBA reference is composited on (white, as the reference view everywhere else)."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Augmentations (SPEC 9)."""
    latent_pool: int = 0
    """Augmented images encoded once at the start, from which every micro batch draws its latents (0: encode fresh
    augmentations every step, as SPEC 9 and the authors' script). The VAE encoder is ~40 % of a step at 512 px."""
    seed: int = 3407
    """Seed of the run's own generator (augmentations, prompts, noise, timesteps)."""
    checkpoint_every: int = 500
    """Write a resumable checkpoint every N steps (0 = only at the end or on cancel)."""
    preview_every: int = 100
    """Pass an augmented training image to the progress callback every N steps (0 = never)."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_][a-z0-9_\-]*", self.token or ""):
            raise ValueError(
                f"Token {self.token!r} must be lower case letters, digits, '_' or '-' (e.g. '_panda_'): "
                "CLIP lower-cases prompts and the token is also the embedding's file name."
            )
        if not self.initializer.strip() or " " in self.initializer.strip():
            raise ValueError(f"initializer {self.initializer!r} must be one word, e.g. 'panda'.")
        if self.n_vectors < 1 or self.steps < 1 or self.batch_size < 1 or self.micro_batch < 1:
            raise ValueError("n_vectors, steps, batch_size and micro_batch must all be >= 1.")
        if self.latent_pool < 0:
            raise ValueError(f"latent_pool must be >= 0 (0 = no pool), got {self.latent_pool}")
        if not self.templates or any(t.count("{}") != 1 for t in self.templates):
            raise ValueError("Every template needs exactly one '{}' where the token goes.")


@dataclass
class TextualInversionResult:
    """What a run produced."""

    token: str
    embedding: Tensor  # [n_vectors, hidden] float32
    token_ids: list[int]
    path: Path | None  # <output_dir>/<token>.safetensors
    step: int
    losses: list[float]  # one per optimizer step (those run since the first checkpointed step included)


def save_embedding(path: str | Path, name: str, embedding: Tensor) -> Path:
    """Write `{name: float32 [n, hidden]}`: the file both diffusers `load_textual_inversion` and ComfyUI read.

    Atomic: `--resume` skips textual inversion when this file exists, so it must never exist half-written.
    """
    return save_safetensors(path, {name: embedding.detach().float().reshape(-1, embedding.shape[-1])})


def _training_rgba(image: Any, size: int) -> Tensor:
    """Straight RGBA [4, size, size] from a Reference (its 512 copy), or a tensor [4|3, H, W] in [0, 1]."""
    rgba = getattr(image, "rgba_512", image)
    if not isinstance(rgba, Tensor) or rgba.dim() != 3 or rgba.shape[0] not in (3, 4):
        raise ValueError(
            "Textual inversion needs a Reference or an image tensor [4, H, W] (RGBA) / [3, H, W] in [0, 1]."
        )
    rgba = rgba.detach().float().cpu()
    if rgba.shape[0] == 3:
        rgba = torch.cat([rgba, torch.ones_like(rgba[:1])])
    if float(rgba[3].max()) <= 0.5:
        raise ValueError("The reference image has no visible foreground (alpha is empty).")
    if rgba.shape[-1] != size or rgba.shape[-2] != size:
        premult = torch.cat([rgba[:3] * rgba[3:], rgba[3:]])[None]
        premult = F.interpolate(premult, size=(size, size), mode="bilinear", antialias=True)[0]
        a = premult[3:].clamp(0, 1)
        rgba = torch.cat([(premult[:3] / a.clamp_min(1e-4)).clamp(0, 1) * (a > 1e-4), a])
    return rgba


def centre_square(image: Tensor) -> Tensor:
    """The centred square crop of an image [C, H, W] (photos of a subject: training resizes squares)."""
    h, w = image.shape[-2:]
    side = min(h, w)
    return image[..., (h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side].contiguous()


def training_images(images: Any, size: int) -> Tensor:
    """Straight RGBA [N, 4, size, size] from one image (a Reference or a tensor [4|3, H, W]) or several (a list of
    them, or a tensor [N, 4|3, H, W]: photos of one subject)."""
    if isinstance(images, Tensor) and images.dim() == 4:
        images = list(images)
    many = images if isinstance(images, (list, tuple)) else [images]
    if not many:
        raise ValueError("Textual inversion needs at least one image of the subject.")
    return torch.stack([_training_rgba(image, size) for image in many])


def _pick(images: Tensor, gen: torch.Generator) -> Tensor:
    """One training image [4, S, S], uniformly among several (one image draws nothing: its runs stay the same)."""
    if len(images) == 1:
        return images[0]
    return images[int(torch.randint(len(images), (1,), generator=gen))]


def _initial_vectors(prior: Any, cfg: TextualInversionConfig) -> Tensor:
    """The initializer word's embedding repeated n_vectors times [n, D] (checks both words first)."""
    tok = prior.tokenizer
    init_ids = tok.encode(cfg.initializer, add_special_tokens=False)
    if len(init_ids) != 1:
        raise ValueError(
            f"The initializer {cfg.initializer!r} is {len(init_ids)} tokens in this tokenizer; choose a common "
            "single-token word that names the object (e.g. 'panda', 'dog', 'car')."
        )
    if cfg.token in tok.get_vocab() or len(tok.encode(cfg.token, add_special_tokens=False)) == 1:
        raise ValueError(
            f"Token {cfg.token!r} is already an ordinary word of the vocabulary; pick a new one like '_panda_'."
        )
    table = prior.text_encoder.get_input_embeddings().weight
    return table[init_ids[0]].detach().float().cpu().expand(cfg.n_vectors, -1).clone()


def _augmented(rgba: Tensor, background: Tensor, n: int, gen: torch.Generator, cfg: TextualInversionConfig) -> Tensor:
    """n augmentations [n, 3, S, S] of training images `rgba` [N, 4, S, S], each of one image picked uniformly."""
    return torch.stack([augment(_pick(rgba, gen), background, cfg.augment, gen) for _ in range(n)])


#: Previews of pooled images are kept at this size (the pool keeps latents, not 512 px images).
POOL_PREVIEW_SIZE = 128


@dataclass(frozen=True)
class LatentPool:
    """Latents [P, 4, h, w] of P augmented training images and their previews [P, 3, 128, 128] (uint8)."""

    latents: Tensor
    previews: Tensor

    @classmethod
    def encode(cls, prior: Any, rgba: Tensor, background: Tensor, cfg: TextualInversionConfig) -> LatentPool:
        """Encode `cfg.latent_pool` augmentations of `rgba` [N, 4, S, S], `cfg.micro_batch` per encoder call. The
        pool has its own generator (seeded from cfg.seed), so a resumed run rebuilds the very same pool."""
        gen = torch.Generator().manual_seed((cfg.seed + 1) % 2**64)
        latents, previews = [], []
        for start in range(0, cfg.latent_pool, cfg.micro_batch):
            n = min(cfg.micro_batch, cfg.latent_pool - start)
            images = _augmented(rgba, background, n, gen, cfg)
            with torch.no_grad():
                latents.append(prior.encode_images(images))
            small = F.interpolate(images.float(), size=POOL_PREVIEW_SIZE, mode="bilinear", antialias=True)
            previews.append((small.clamp(0, 1) * 255).round().to(torch.uint8).cpu())
        return cls(torch.cat(latents), torch.cat(previews))

    def draw(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """n latents [n, 4, h, w] drawn uniformly with replacement, and the first one's preview [3, 128, 128]."""
        index = torch.randint(len(self.latents), (n,), generator=gen)
        return self.latents[index.to(self.latents.device)], self.previews[int(index[0])].float() / 255


@dataclass
class _Run:
    """What a textual-inversion run trains and keeps between steps (all of it goes into a checkpoint)."""

    learned: torch.nn.Parameter  # float32 master copy of the token's vectors [n, D]
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # augmentations, prompts, noise, timesteps
    losses: list[float] = field(default_factory=list)
    step: int = 0

    @classmethod
    def start(cls, prior: Any, cfg: TextualInversionConfig, state: tuple | None) -> _Run:
        """A fresh run from the initializer word, or the one a checkpoint `state` (tensors, meta) stored."""
        learned = torch.nn.Parameter(_initial_vectors(prior, cfg).to(prior.device))
        run = cls(
            learned,
            torch.optim.AdamW([learned], lr=cfg.lr, weight_decay=cfg.weight_decay),
            torch.amp.GradScaler(prior.device.type, enabled=prior.dtype == torch.float16),
            torch.Generator().manual_seed(cfg.seed),
        )
        if state is not None:
            tensors, meta = state
            with torch.no_grad():
                learned.copy_(tensors["embedding"].to(learned))
            restore_optimizer(run.optimizer, {k: v.to(prior.device) for k, v in tensors.items()}, meta["optimizer"])
            run.generator.set_state(tensors["rng/ti"])
            if meta.get("scaler"):
                run.scaler.load_state_dict(meta["scaler"])
            run.losses = tensors["losses"].tolist() if "losses" in tensors else []
            run.step = int(meta["step"])
        return run

    def save(self, path: Path | None, cfg: TextualInversionConfig, size: int) -> Path | None:
        """A resumable checkpoint at `path` (None: nothing written)."""
        if path is None:
            return None
        opt_t, opt_meta = optimizer_tensors(self.optimizer)
        tensors = {"embedding": self.learned.detach(), "rng/ti": self.generator.get_state(), **opt_t}
        if self.losses:
            tensors["losses"] = torch.tensor(self.losses, dtype=torch.float64)
        meta = {
            "format": FORMAT,
            "step": self.step,
            "token": cfg.token,
            "initializer": cfg.initializer,
            "n_vectors": cfg.n_vectors,
            "hidden": int(self.learned.shape[1]),
            "resolution": size,
            "config": asdict(cfg),
            "optimizer": opt_meta,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
        }
        return save_checkpoint(path, tensors, meta)


def train_textual_inversion(
    prior: Any,
    image: Any,
    config: TextualInversionConfig | None = None,
    *,
    output_dir: str | Path | None = None,
    checkpoint_path: str | Path | None = None,
    resume_from: str | Path | None = None,
    callbacks: Callbacks | None = None,
) -> TextualInversionResult:
    """Learn `config.token` for `image` with an SD1.5 prior (`StableDiffusionPrior` or anything with its parts).

    Args:
        prior: exposes tokenizer, text_encoder, unet, vae (via encode_images), schedule, device, dtype; not changed.
        image: a `Reference` (its RGBA 512 copy is used) or an image tensor [4|3, H, W] in [0, 1]; or several
            photos of one subject (a list, or [N, 4|3, H, W]; Dream-in-4D's personalisation uses 4-6): every
            augmented sample picks one uniformly.
        output_dir: where `<token>.safetensors` is written at the end (None: not written).
        checkpoint_path: resumable checkpoint written every `checkpoint_every` steps, on cancel and at the end.
        resume_from: a checkpoint of an earlier run with the same token/batch settings; continues from its step.
        callbacks: the stage runner's: `on_progress(step, total, {"total": loss}, preview [H, W, 3] or None)` after
            every step (an exception it raises, e.g. ComfyUI's interrupt, is re-raised after a checkpoint is
            written); `should_cancel` polled before every step (True -> checkpoint, then `TrainingCancelled`).

    Returns:
        The learned embedding [n_vectors, hidden] (the prior is left as it was).
    """
    callbacks = callbacks or Callbacks()
    cfg = config or TextualInversionConfig()
    size = int(cfg.resolution or (prior.image_size if isinstance(prior.image_size, int) else prior.image_size[0]))
    rgba = training_images(image, size)  # [N, 4, S, S]
    state = load_checkpoint(resume_from) if resume_from is not None else None
    if state is not None:
        _check_resumable(state[1], cfg, resume_from)
    if checkpoint_path is None and output_dir is not None:
        checkpoint_path = Path(output_dir) / f"{cfg.token}.ti-checkpoint.safetensors"
    run = _Run.start(prior, cfg, state)

    def checkpoint() -> Path | None:
        return run.save(checkpoint_path, cfg, size)

    rgba = rgba.to(prior.device)  # augment where the model runs: 16 warps of 512 px per step add up on CPU
    background = torch.tensor(cfg.background, dtype=torch.float32, device=prior.device)
    placeholder = " ".join([cfg.token] + [f"{cfg.token}_{i}" for i in range(1, cfg.n_vectors)])
    source = LatentPool.encode(prior, rgba, background, cfg) if cfg.latent_pool else rgba  # what batches come from
    with injected(prior.tokenizer, prior.text_encoder, {cfg.token: run.learned}) as tokenizer:
        ids = tokenizer.convert_tokens_to_ids(placeholder.split())
        while run.step < cfg.steps:
            if callbacks.cancelled():
                raise TrainingCancelled("textual inversion", run.step, checkpoint())
            total, preview = _optimizer_step(run, prior, tokenizer, source, background, placeholder, cfg)
            if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0 and run.step < cfg.steps:
                checkpoint()
            callbacks.progress(run.step, cfg.steps, {"total": total}, preview, checkpoint)

    embedding = run.learned.detach().float().cpu()
    checkpoint()
    path = save_embedding(Path(output_dir) / f"{cfg.token}.safetensors", cfg.token, embedding) if output_dir else None
    return TextualInversionResult(cfg.token, embedding, list(ids), path, run.step, run.losses)


def _optimizer_step(run: _Run, prior: Any, tokenizer: Any, images: Tensor | LatentPool, background: Tensor,
                    placeholder: str, cfg: TextualInversionConfig) -> tuple[float, Tensor | None]:  # fmt: skip
    """One optimizer step over `batch_size` augmented images (fresh augmentations of `images` [N, 4, S, S], or
    latents drawn from a pool) in micro batches (gradient accumulation); returns the step's loss and, every
    `preview_every` steps, one training image [H, W, 3]."""
    chunks = [cfg.micro_batch] * (cfg.batch_size // cfg.micro_batch)
    if cfg.batch_size % cfg.micro_batch:
        chunks.append(cfg.batch_size % cfg.micro_batch)
    run.optimizer.zero_grad(set_to_none=True)
    total, preview = torch.zeros((), device=prior.device), None
    for n in chunks:
        latents, first = _micro_batch_latents(prior, images, background, n, run.generator, cfg)
        picks = torch.randint(len(cfg.templates), (n,), generator=run.generator).tolist()
        prompts = [cfg.templates[i].format(placeholder) for i in picks]
        loss = _micro_step(prior, tokenizer, latents, prompts, run.generator) * (n / cfg.batch_size)
        run.scaler.scale(loss).backward()
        total = total + loss.detach().float()
        if preview is None and cfg.preview_every and (run.step + 1) % cfg.preview_every == 0:
            preview = first.permute(1, 2, 0).float().cpu().contiguous()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.step += 1
    run.losses.append(float(total))  # the step's one host read (not one per micro batch)
    return run.losses[-1], preview


def _micro_batch_latents(prior: Any, images: Tensor | LatentPool, background: Tensor, n: int,
                         gen: torch.Generator, cfg: TextualInversionConfig) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Latents [n, 4, h, w] of one micro batch and its first image [3, H, W]: drawn from the pool, or n fresh
    augmentations of `images` encoded now."""
    if isinstance(images, LatentPool):
        return images.draw(n, gen)
    augmented = _augmented(images, background, n, gen, cfg)
    with torch.no_grad():
        return prior.encode_images(augmented), augmented[0]  # [n, 4, h, w] float32


def _micro_step(prior: Any, tok: Any, latents: Tensor, prompts: list[str], gen: torch.Generator) -> Tensor:
    """Epsilon-MSE of the frozen UNet on noised `latents` [B, 4, h, w] (the VAE's, of the training images) under
    `prompts`."""
    noise = torch.randn(latents.shape, generator=gen).to(latents.device)
    t = torch.randint(prior.schedule.num_train_timesteps, (latents.shape[0],), generator=gen).to(latents.device)
    noisy = prior.schedule.add_noise(latents, noise, t)
    ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
    emb = prior.text_encoder(ids.input_ids.to(prior.device))[0]
    eps = prior.unet(noisy.to(prior.dtype), t, encoder_hidden_states=emb.to(prior.dtype)).sample
    return F.mse_loss(eps.float(), noise)


def _check_resumable(meta: dict, cfg: TextualInversionConfig, path: Any) -> None:
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a textual-inversion checkpoint (format {meta.get('format')!r}).")
    saved = {"latent_pool": 0, **meta.get("config", {})}  # checkpoints from before the pool had none
    for key in ("token", "initializer", "n_vectors", "batch_size", "micro_batch", "resolution", "seed", "latent_pool"):
        if saved.get(key) != getattr(cfg, key):
            raise ValueError(
                f"Cannot resume from {path}: it was trained with {key}={saved.get(key)!r}, this run has "
                f"{key}={getattr(cfg, key)!r}. Use the same settings (only `steps` may grow)."
            )
