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
    """Tokenize + encode prompts with a CLIP text encoder, caching one embedding per prompt string."""

    def __init__(self, tokenizer: Any, text_encoder: Any):
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.cache: dict[str, Tensor] = {}
        #: Where embeddings are kept (the prior's device), wherever the text encoder itself runs.
        self.device: torch.device | None = None
        #: Multi-vector textual-inversion tokens: name -> "name name_1 ... name_{n-1}" (diffusers convention).
        self.expansions: dict[str, str] = {}

    def clear(self) -> None:
        """Forget cached embeddings (after the vocabulary or the encoder changed)."""
        self.cache.clear()

    def token_ids(self, prompt: str) -> Tensor:
        """[1, L] token ids, multi-vector tokens expanded, padded/truncated to the tokenizer's max length."""
        if not isinstance(prompt, str):
            raise TypeError(f"Prompts must be strings, got {type(prompt).__name__}.")
        for name, expanded in self.expansions.items():
            prompt = prompt.replace(name, expanded)
        return self.tokenizer(
            prompt,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids

    def encode_uncached(self, prompt: str) -> Tensor:
        """[1, L, D] last hidden state of the text encoder for `prompt`."""
        ids = self.token_ids(prompt)
        param = next(self.text_encoder.parameters())
        with torch.no_grad():
            emb = self.text_encoder(ids.to(param.device))[0]
        return emb if self.device is None else emb.to(self.device)

    def __call__(self, prompt: str) -> Tensor:
        if prompt not in self.cache:
            self.cache[prompt] = self.encode_uncached(prompt)
        return self.cache[prompt]

    def text_condition(self, prompt: str, negative: str = "") -> TextCondition:
        """Cached (prompt, negative) embeddings."""
        return TextCondition(cond=self(prompt), uncond=self(negative))

    def view_dependent(self, prompt: str, negative: str = "") -> ViewDependentTextCondition:
        """Embeddings of "<prompt>, front view" / "side view" / "back view" (SPEC 5)."""
        return ViewDependentTextCondition(
            front=self(f"{prompt}, front view"),
            side=self(f"{prompt}, side view"),
            back=self(f"{prompt}, back view"),
            uncond=self(negative),
        )

    def add_token(self, name: str, embedding: Tensor) -> list[int]:
        """Add (or overwrite) a textual-inversion token with n vectors; returns its token ids.

        embedding [n, D] (or [D]) must match the text encoder's hidden size. One vector keeps `name` as a
        single token; n > 1 adds name, name_1, ..., name_{n-1} and expands `name` in prompts.
        """
        if not name or any(ch.isspace() for ch in name):
            raise ValueError(f"Token name {name!r} must be a non-empty string without spaces (e.g. '<panda>').")
        emb = embedding.detach().reshape(-1, embedding.shape[-1]) if embedding.dim() in (1, 2) else None
        table = self.text_encoder.get_input_embeddings()
        if emb is None or emb.shape[-1] != table.weight.shape[1]:
            raise ValueError(
                f"Embedding for {name!r} has shape {tuple(embedding.shape)}; expected [n, {table.weight.shape[1]}] "
                f"(the text encoder's hidden size)."
            )
        tokens = [name] + [f"{name}_{i}" for i in range(1, emb.shape[0])]
        self.tokenizer.add_tokens([t for t in tokens if t not in self.tokenizer.get_vocab()])
        ids = self.tokenizer.convert_tokens_to_ids(tokens)
        if len(self.tokenizer) > table.weight.shape[0]:
            self.text_encoder.resize_token_embeddings(len(self.tokenizer), mean_resizing=False)
            table = self.text_encoder.get_input_embeddings()
        with torch.no_grad():
            table.weight[ids] = emb.to(table.weight)
        if emb.shape[0] > 1:
            self.expansions[name] = " ".join(tokens)
        else:
            self.expansions.pop(name, None)
        self.clear()
        return ids

    def move(self, device: torch.device) -> None:
        """Keep cached (and future) embeddings on `device`."""
        self.device = torch.device(device)
        self.cache = {k: v.to(device) for k, v in self.cache.items()}


def wrap_degrees(angle: Tensor) -> Tensor:
    """Wrap degrees to [-180, 180)."""
    return torch.remainder(angle + 180.0, 360.0) - 180.0


def radians(deg: Tensor) -> Tensor:
    return deg * (math.pi / 180.0)
