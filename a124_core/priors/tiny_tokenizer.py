"""A tiny CLIP BPE tokenizer written from scratch, in the on-disk layout CLIPTokenizer loads offline.

The vocabulary is the 256 byte-level characters, the same with `</w>`, merges learned from a small word list,
then `<|startoftext|>` and `<|endoftext|>` last (FACTS.md: what transformers 5 needs to load it).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

TINY_WORDS = (
    "a",
    "an",
    "the",
    "of",
    "is",
    "in",
    "on",
    "and",
    "photo",
    "image",
    "view",
    "front",
    "side",
    "back",
    "overhead",
    "bottom",
    "panda",
    "dog",
    "cat",
    "dancing",
    "running",
    "jumping",
    "walking",
    "high",
    "resolution",
    "quality",
    "best",
    "good",
    "dslr",
    "blurry",
    "low",
    "bad",
    "render",
    "object",
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode map (byte-level BPE alphabet)."""
    bs = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _learn_merges(words: tuple[str, ...]) -> list[tuple[str, str]]:
    """Plain BPE training until every word is one symbol, so applying the merges by rank rebuilds each word."""
    seqs = [list(w[:-1]) + [w[-1] + "</w>"] for w in dict.fromkeys(words) if len(w) > 1]
    merges: list[tuple[str, str]] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for seq in seqs:
            for pair in itertools.pairwise(seq):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            return merges
        best = max(counts, key=lambda p: counts[p])  # ties: first seen (dicts keep insertion order)
        merges.append(best)
        for k, seq in enumerate(seqs):
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    out.append(seq[i] + seq[i + 1])
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[k] = out


def write_clip_tokenizer(folder: Path, words: tuple[str, ...] = TINY_WORDS, pad_token: str = "<|endoftext|>") -> Path:
    """Write an offline-loadable CLIP tokenizer (vocab.json, merges.txt, configs) into `folder`.

    The vocabulary is the real CLIP byte-level alphabet (256 characters, the same with `</w>`), the BPE
    merges learned from `words` (so each becomes a single token), then `<|startoftext|>` and `<|endoftext|>`
    last, as in the real file. Any text tokenizes (unknown words fall back to characters).
    `CLIPTokenizer.from_pretrained(folder)` loads it without the hub. pad_token: "!" (id 0) for SD2's OpenCLIP
    tokenizer. Idempotent; returns `folder`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = list(_bytes_to_unicode().values())
    vocab: list[str] = alphabet + [c + "</w>" for c in alphabet]
    merges = _learn_merges(words)
    vocab += [a + b for a, b in merges]  # merged symbols span >= 2 characters: never in the alphabet
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "pad_token": pad_token,
        "unk_token": "<|endoftext|>",
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **special}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return folder


# Sizes from FACTS.md: a few hundred K parameters each, forward passes in milliseconds on CPU.
