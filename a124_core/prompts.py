"""The three prompts of a run, derived from the user's motion prompt (SPEC 1).

"a panda is dancing" -> subject "panda", static prompt "a high-resolution DSLR image of a panda",
textual-inversion token "_panda_" initialised from "panda", refinement prompt "a _panda_ is dancing".
Every derived value can be overridden; the derivation only saves typing for the usual "a <noun> <verb>s" form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

_ARTICLES = {"a", "an", "the"}
_VERB_WORDS = {"is", "are", "was", "were", "does", "do", "has", "have", "with", "on", "in", "at", "while"}
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_<>\-]+$")
#: Words that cannot name the subject (they end up as the token when the prompt is not "a <noun> <verb>s").
_FUNCTION_WORDS = _ARTICLES | _VERB_WORDS | {"and", "or", "of", "to", "by", "for", "from", "its", "his", "her"}
#: A subject longer than this many words means the prompt did not have the usual form.
_MAX_SUBJECT_WORDS = 3
#: CLIP reads 77 tokens (75 after the start/end markers) and BPE gives at least one per word.
_CLIP_WORDS = 75
#: Command-line options that set each derived value (a node passes its own input names).
CLI_OPTIONS = {
    "prompt": "--prompt",
    "static": "--static-prompt",
    "token": "--token",
    "initializer": "--initializer",
    "refine": "--refine-prompt",
}


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
    warnings: tuple[str, ...] = ()
    """One line each: where a value was derived by a fallback and which option sets it (print them)."""


def _subject_span(words: list[str]) -> tuple[int, int]:
    start = 1 if words and words[0].lower() in _ARTICLES else 0
    end = start
    while end < len(words) and words[end].lower() not in _VERB_WORDS and not words[end].lower().endswith("ing"):
        end += 1
    if end == start:  # no verb-like word after the subject: take one word
        end = min(start + 1, len(words))
    return start, end


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fallback_warnings(
    words: list[str], subject: str, word: str, given: Mapping[str, bool], derived: RunPrompts, names: Mapping[str, str]
) -> list[str]:
    """Lines for the derived values that rest on a guess (no English subject word, or no "a <noun> <verb>s" form)."""
    out = []
    if len(words) > _CLIP_WORDS:
        out.append(
            f"The prompt has {len(words)} words; the text encoders read 77 tokens, so everything after the first "
            f"{_CLIP_WORDS} tokens (at most {_CLIP_WORDS} words) is ignored: shorten {names['prompt']}."
        )
    settable = [k for k in ("token", "initializer", "static") if not given[k]]
    if not settable:
        return out
    settable += [] if given["refine"] else ["refine"]
    example = f"{names['token']} _panda_ {names['initializer']} panda"
    flags = " / ".join(names[k] for k in settable)
    if not word:
        out.append(
            f"No English subject word in the prompt {_short(derived.motion)!r}: the token is {derived.token!r} "
            f"initialised from {derived.initializer!r} and the refine prompt is {_short(derived.refine)!r}; set "
            f"{flags} (e.g. {example}) for a meaningful token."
        )
    elif len(subject.split()) > _MAX_SUBJECT_WORDS or word.lower() in _FUNCTION_WORDS or len(word) < 2:
        out.append(
            f"The prompt does not read as 'a <noun> <verb>s ...', so its subject was guessed as {_short(subject)!r}: "
            f"token {derived.token!r} initialised from {derived.initializer!r}; set {flags} (e.g. {example})."
        )
    return out


_WORD = re.compile(r"\w")
_EMBEDDING = re.compile(r"embedding:([^\s,()]+)")


def wordless_prompt(text: str | None, option: str) -> str | None:
    """The line refusing a prompt with no word character of any script ("!!! ???"), or None when it has one (or is
    None). A text prior would encode such a prompt as noise and train the whole run on it."""
    if text is None or _WORD.search(text):
        return None
    return f"{option} {_short(text)!r} has no word in it; describe the subject and motion, e.g. 'a panda is dancing'."


def check_prompt_text(text: str | None, option: str) -> None:
    """A prompt must say something (`wordless_prompt`) and may not name ComfyUI embeddings: the command line loads
    none (the refine stage uses the run's learned token by itself)."""
    if text is None:
        return
    if (line := wordless_prompt(text, option)) is not None:
        raise ValueError(line)
    found = _EMBEDDING.search(text)
    if found:
        raise ValueError(
            f"{option} names the ComfyUI embedding {found.group(0)!r}; the command line does not load embeddings "
            f"(the refine stage uses this run's learned token, --token). Use the embedding in ComfyUI, or drop it."
        )


def derive_prompts(
    motion: str,
    static: str | None = None,
    token: str | None = None,
    initializer: str | None = None,
    refine: str | None = None,
    option_names: Mapping[str, str] = CLI_OPTIONS,
) -> RunPrompts:
    """Fill in what the user did not give from the motion prompt; validates everything first.

    Values derived by a fallback (a non-English prompt, one that is not "a <noun> <verb>s ...", or one longer
    than CLIP reads) come back in `RunPrompts.warnings`, each naming the option from `option_names` that sets it.
    """
    motion = (motion or "").strip()
    if not motion:
        raise ValueError(
            f"The motion prompt is empty; describe the motion, e.g. {option_names['prompt']} 'a panda is dancing'."
        )
    for name, text in (("prompt", motion), ("static", static), ("refine", refine)):
        check_prompt_text(text, option_names[name])
    given = {"static": bool(static), "token": bool(token), "initializer": bool(initializer), "refine": bool(refine)}
    words = motion.split()
    start, end = _subject_span(words)
    subject = " ".join(words[start:end]) or words[-1]
    word = re.sub(r"[^A-Za-z0-9]", "", subject.split()[-1])
    initializer = initializer or word or "object"
    token = token or f"_{initializer.lower()}_"
    if not _TOKEN_CHARS.match(token) or " " in token:
        raise ValueError(f"Token {token!r} must be one word of letters, digits, '_', '-', '<' or '>' (e.g. _panda_).")
    if " " in initializer.strip():
        raise ValueError(
            f"The initializer must be one word (the token starts from its embedding), got {initializer!r}"
        )
    static = static or f"a high-resolution DSLR image of a {subject}"
    if refine is None:
        # no English subject word to put the token in place of (e.g. a Chinese prompt): keep the whole motion
        refine = " ".join([*words[:start], token, *words[end:]]) if word else f"{token}, {motion}"
    if token not in refine.split() and token not in refine:
        raise ValueError(f"The refinement prompt {refine!r} must contain the token {token!r}.")
    prompts = RunPrompts(motion=motion, static=static, token=token, initializer=initializer, refine=refine)
    return replace(prompts, warnings=tuple(_fallback_warnings(words, subject, word, given, prompts, option_names)))
