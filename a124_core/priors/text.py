"""Text conditions: cached CLIP prompt embeddings and view-dependent prompts (SPEC 5).

Embeddings are computed once per prompt and cached on the prior, so a training step never runs the text
encoder. `clip_skip` is deliberately not supported: transformers >= 5.6 removed `CLIPTextModel.text_model`
and diffusers' clip-skip path breaks on it (diffusers issue 14124); we always use the last hidden state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .base import Tokens
from .tokens import expand_prompt, injected


@dataclass
class TextCondition:
    """Conditional and unconditional prompt embeddings for classifier-free guidance."""

    cond: Tensor  # [1 or B, L, D] prompt embedding
    uncond: Tensor  # [1 or B, L, D] negative-prompt embedding

    def batched(self, batch: int) -> tuple[Tensor, Tensor]:
        """(cond, uncond) expanded to [B, L, D]."""
        return _expand(self.cond, batch), _expand(self.uncond, batch)


def _expand(emb: Tensor, batch: int) -> Tensor:
    if emb.shape[0] == batch:
        return emb
    if emb.shape[0] != 1:
        raise ValueError(f"Condition holds {emb.shape[0]} embeddings but the batch has {batch} latents.")
    return emb.expand(batch, *emb.shape[1:])


@dataclass
class ViewDependentTextCondition:
    """Front / side / back prompt embeddings, interpolated by azimuth (stable-dreamfusion / threestudio).

    Azimuth 0 is the front (the reference view). |azimuth| in [0, 90] blends front -> side, [90, 180]
    side -> back, linearly; the negative prompt is shared.
    """

    front: Tensor  # [1, L, D]
    side: Tensor  # [1, L, D]
    back: Tensor  # [1, L, D]
    uncond: Tensor  # [1, L, D]

    def at_azimuth(self, azimuth_deg: float | Tensor) -> TextCondition:
        """Condition for cameras at `azimuth_deg` (scalar or [B]); returns cond [B, L, D]."""
        az = torch.as_tensor(azimuth_deg, dtype=torch.float32).reshape(-1)
        a = torch.remainder(az + 180.0, 360.0).sub(180.0).abs().to(self.front.device)  # [B] in [0, 180]
        r = (a / 90.0).clamp(max=1.0).view(-1, 1, 1)  # 0 front .. 1 side
        s = ((a - 90.0) / 90.0).clamp(min=0.0).view(-1, 1, 1)  # 0 side .. 1 back
        front, side, back = (e.float() for e in (self.front, self.side, self.back))
        emb = torch.where(r < 1.0, (1 - r) * front + r * side, (1 - s) * side + s * back)
        return TextCondition(cond=emb.to(self.front.dtype), uncond=self.uncond)


class PromptEncoder:
    """Tokenize + encode prompts with a CLIP text encoder, caching one embedding per plain prompt string.

    Prompts with textual-inversion tokens are encoded through `tokens.injected` (the tokenizer and embedding table
    stay untouched) and not cached: a stage builds such a condition once.
    """

    def __init__(self, tokenizer: Any, text_encoder: Any):
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.cache: dict[str, Tensor] = {}
        #: Where embeddings are kept (the prior's device), wherever the text encoder itself runs.
        self.device: torch.device | None = None

    def clear(self) -> None:
        """Forget cached embeddings (after the encoder changed)."""
        self.cache.clear()

    def token_ids(self, prompt: str, tokenizer: Any = None) -> Tensor:
        """[1, L] token ids, padded/truncated to the tokenizer's max length."""
        if not isinstance(prompt, str):
            raise TypeError(f"Prompts must be strings, got {type(prompt).__name__}.")
        tokenizer = tokenizer or self.tokenizer
        return tokenizer(
            prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids

    def encode_uncached(self, prompt: str, tokens: Tokens | None = None) -> Tensor:
        """[1, L, D] last hidden state of the text encoder for `prompt` (with `tokens` injected, if any)."""
        param = next(self.text_encoder.parameters())
        with injected(self.tokenizer, self.text_encoder, tokens or {}) as tokenizer, torch.no_grad():
            ids = self.token_ids(expand_prompt(prompt, tokens or {}), tokenizer)
            emb = self.text_encoder(ids.to(param.device))[0]
        return emb if self.device is None else emb.to(self.device)

    def __call__(self, prompt: str, tokens: Tokens | None = None) -> Tensor:
        if tokens:
            return self.encode_uncached(prompt, tokens)
        if prompt not in self.cache:
            self.cache[prompt] = self.encode_uncached(prompt)
        return self.cache[prompt]

    def text_condition(self, prompt: str, negative: str = "", tokens: Tokens | None = None) -> TextCondition:
        """Embeddings of (prompt, negative); `tokens` are used for the prompt only."""
        return TextCondition(cond=self(prompt, tokens), uncond=self(negative))

    def view_dependent(self, prompt: str, negative: str = "") -> ViewDependentTextCondition:
        """Embeddings of "<prompt>, front view" / "side view" / "back view" (SPEC 5)."""
        return ViewDependentTextCondition(
            front=self(f"{prompt}, front view"),
            side=self(f"{prompt}, side view"),
            back=self(f"{prompt}, back view"),
            uncond=self(negative),
        )

    def move(self, device: torch.device) -> None:
        """Keep cached (and future) embeddings on `device`."""
        self.device = torch.device(device)
        self.cache = {k: v.to(device) for k, v in self.cache.items()}


def wrap_degrees(angle: Tensor) -> Tensor:
    """Wrap degrees to [-180, 180)."""
    return torch.remainder(angle + 180.0, 360.0) - 180.0


def radians(deg: Tensor) -> Tensor:
    return deg * (math.pi / 180.0)
