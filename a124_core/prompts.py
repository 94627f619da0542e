"""The three prompts of a run, derived from the user's motion prompt (SPEC 1).

"a panda is dancing" -> subject "panda", static prompt "a high-resolution DSLR image of a panda",
textual-inversion token "_panda_" initialised from "panda", refinement prompt "a _panda_ is dancing".
Every derived value can be overridden; the derivation only saves typing for the usual "a <noun> <verb>s" form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ARTICLES = {"a", "an", "the"}
_VERB_WORDS = {"is", "are", "was", "were", "does", "do", "has", "have", "with", "on", "in", "at", "while"}
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_<>\-]+$")


@dataclass(frozen=True)
class RunPrompts:
    """Prompts and token of one run."""

    motion: str
    """Prompt of the video prior (steps 2-3): the user's prompt."""
    static: str
    """Appearance prompt of the SD prior (step 1)."""
    token: str
    """Textual-inversion placeholder token."""
    initializer: str
    """Word the token embedding starts from."""
    refine: str
    """Prompt of the ControlNet-Tile UNet (step 3): the motion prompt with the token for the subject."""


def _subject_span(words: list[str]) -> tuple[int, int]:
    start = 1 if words and words[0].lower() in _ARTICLES else 0
    end = start
    while end < len(words) and words[end].lower() not in _VERB_WORDS and not words[end].lower().endswith("ing"):
        end += 1
    if end == start:  # no verb-like word after the subject: take one word
        end = min(start + 1, len(words))
    return start, end


def derive_prompts(
    motion: str,
    static: str | None = None,
    token: str | None = None,
    initializer: str | None = None,
    refine: str | None = None,
) -> RunPrompts:
    """Fill in what the user did not give from the motion prompt; validates everything first."""
    motion = (motion or "").strip()
    if not motion:
        raise ValueError("The motion prompt is empty; describe the motion, e.g. 'a panda is dancing'.")
    words = motion.split()
    start, end = _subject_span(words)
    subject = " ".join(words[start:end]) or words[-1]
    initializer = initializer or re.sub(r"[^A-Za-z0-9]", "", subject.split()[-1]) or "object"
    token = token or f"_{initializer.lower()}_"
    if not _TOKEN_CHARS.match(token) or " " in token:
        raise ValueError(f"Token {token!r} must be one word of letters, digits, '_', '-', '<' or '>' (e.g. _panda_).")
    if " " in initializer.strip():
        raise ValueError(
            f"The initializer must be one word (the token starts from its embedding), got {initializer!r}"
        )
    static = static or f"a high-resolution DSLR image of a {subject}"
    if refine is None:
        article = words[:start]
        refine = " ".join([*article, token, *words[end:]])
    if token not in refine.split() and token not in refine:
        raise ValueError(f"The refinement prompt {refine!r} must contain the token {token!r}.")
    return RunPrompts(motion=motion, static=static, token=token, initializer=initializer, refine=refine)
