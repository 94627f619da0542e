"""Textual-inversion tokens used without changing the prior that carries the text encoder.

A prior is shared: ComfyUI hands the same loaded SD1.5 to the textual-inversion node and the static stage, the
same ControlNet prior to every refine run. So a token is never added to the prior's tokenizer or embedding table.
Instead a private copy of the tokenizer learns the token names (new ids past the end of the table), and while a
prompt is encoded two hooks on the text encoder's embedding layer map those ids to a valid row and put the token's
vectors in their place. The vectors may require grad (textual inversion trains them through these hooks).
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

_NAME = re.compile(r"\S+")


def token_rows(name: str, vectors: Tensor) -> list[str]:
    """The vocabulary entries of a token with n vectors: name, name_1, ..., name_{n-1} (diffusers' convention)."""
    n = vectors.reshape(-1, vectors.shape[-1]).shape[0]
    return [name] + [f"{name}_{i}" for i in range(1, n)]


def expand_prompt(prompt: str, tokens: Mapping[str, Tensor]) -> str:
    """Write a multi-vector token as its n entries ('_panda_' -> '_panda_ _panda__1 _panda__2')."""
    for name, vectors in tokens.items():
        rows = token_rows(name, vectors)
        if len(rows) > 1:
            prompt = prompt.replace(name, " ".join(rows))
    return prompt


def check_tokens(tokens: Mapping[str, Tensor], hidden: int) -> None:
    for name, vectors in tokens.items():
        if not _NAME.fullmatch(name or ""):
            raise ValueError(f"Token name {name!r} must be a non-empty string without spaces (e.g. '_panda_').")
        if not isinstance(vectors, Tensor) or vectors.dim() not in (1, 2) or vectors.shape[-1] != hidden:
            shape = tuple(vectors.shape) if isinstance(vectors, Tensor) else type(vectors).__name__
            raise ValueError(
                f"Embedding of token {name!r} has shape {shape}; expected [n, {hidden}] (the text encoder's width)."
            )


@contextlib.contextmanager
def injected(tokenizer: Any, text_encoder: Any, tokens: Mapping[str, Tensor]) -> Iterator[Any]:
    """Within the block, the yielded tokenizer knows `tokens` and `text_encoder` embeds them as their vectors.

    The prior's own tokenizer and embedding table are left as they were (no row or vocabulary entry is added).
    """
    table = text_encoder.get_input_embeddings()
    check_tokens(tokens, table.weight.shape[1])
    if not tokens:
        yield tokenizer
        return
    private = copy.deepcopy(tokenizer)
    rows = [(name, k, entry) for name, vectors in tokens.items() for k, entry in enumerate(token_rows(name, vectors))]
    private.add_tokens([entry for _, _, entry in rows if entry not in private.get_vocab()])
    ids = private.convert_tokens_to_ids([entry for _, _, entry in rows])
    last_row = table.weight.shape[0] - 1
    found: list[Tensor] = []

    def clamp_ids(module: Any, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        token_ids = inputs[0]
        found.append(token_ids)
        return (token_ids.clamp(max=last_row), *inputs[1:])

    def put_vectors(module: Any, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
        token_ids = found.pop()
        for (name, k, _), token_id in zip(rows, ids):
            vector = tokens[name].reshape(-1, tokens[name].shape[-1])[k]  # read now: trained vectors change
            output = torch.where((token_ids == token_id)[..., None], vector.to(output.dtype), output)
        return output

    pre = table.register_forward_pre_hook(clamp_ids)
    post = table.register_forward_hook(put_vectors)
    try:
        yield private
    finally:
        pre.remove()
        post.remove()


__all__ = ["check_tokens", "expand_prompt", "injected", "token_rows"]
