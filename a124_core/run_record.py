"""A run folder's record of what decides its results, so `--resume` never continues another run's files.

`--resume` trusts the checkpoints it finds. Without a record, resuming into a finished folder with another
image or seed reuses every old checkpoint and writes a summary naming the new inputs: two runs mixed. The
record (`run_record.json`, written atomically when a run starts) holds a fingerprint: hashes of the input
images, the prompts, seed, preset, representation and the identity of every prior. A resume compares the
recorded fingerprint with the new one and refuses with one line naming every field that differs.

Prior identity is content-based, so a moved or copied model folder stays the same prior: config, tokenizer
and other small files are hashed whole; a weight file by its size, its safetensors header and 16 blocks
sampled across it (a fine-tune of the same architecture differs in every block; a 4 GB UNet costs 1 MiB
of reads instead of 4 GB).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write_json

RECORD_NAME = "run_record.json"
FORMAT = "a124-run-record"
#: Files up to this size are hashed whole; larger ones are sampled.
_WHOLE_FILE_BYTES = 4 << 20
_SAMPLES, _SAMPLE_BYTES = 16, 64 << 10
#: Files of a model folder that identify it (weights, configs, tokenizer files).
_IDENTITY_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".json", ".txt", ".model")


def file_digest(path: str | Path) -> str:
    """`sha256:<hex>` of a small file, `sampled-sha256:<hex>` of a large one (size, header, 16 blocks)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as f:
        if size <= _WHOLE_FILE_BYTES:
            h.update(f.read())
            return "sha256:" + h.hexdigest()
        h.update(f"size={size};".encode())
        head = f.read(8)
        h.update(head)
        if path.suffix == ".safetensors" and len(head) == 8:
            h.update(f.read(min(int.from_bytes(head, "little"), 8 << 20)))  # tensor names, shapes, offsets
        step = (size - _SAMPLE_BYTES) // (_SAMPLES - 1)
        for i in range(_SAMPLES):
            f.seek(i * step)
            h.update(f.read(_SAMPLE_BYTES))
    return "sampled-sha256:" + h.hexdigest()


def prior_identity(path: str | Path) -> str:
    """Content identity of a model folder (its weight/config/tokenizer files, by relative path) or of one file."""
    path = Path(path)
    if path.is_file():
        return file_digest(path)
    if not path.is_dir():
        raise FileNotFoundError(f"Model path {path} does not exist; cannot fingerprint it.")
    h = hashlib.sha256()
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix in _IDENTITY_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise FileNotFoundError(f"Model folder {path} holds no weight or config files; cannot fingerprint it.")
    for p in files:
        h.update(f"{p.relative_to(path).as_posix()}={file_digest(p)};".encode())
    return "tree-sha256:" + h.hexdigest()


def _input_digest(source: str | Path | bytes | None) -> str | None:
    if source is None:
        return None
    if isinstance(source, bytes):
        return "sha256:" + hashlib.sha256(source).hexdigest()
    return file_digest(source)


@dataclass(frozen=True)
class RunFingerprint:
    """What decides a run's results (`fields`, compared on resume) and where it came from (`info`, not compared)."""

    fields: dict[str, Any]
    """Flat JSON values: "image", "mask", "depth" (digests), "prompt.<name>", "seed", "preset",
    "representation", "prior.<name>" (identities) and any extra settings the runner adds."""
    info: dict[str, str] = field(default_factory=dict)
    """Paths of the inputs and priors, for the message (a moved file keeps its identity)."""

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": 1, "fields": self.fields, "info": self.info}


def make_fingerprint(
    *,
    image: str | Path | bytes,
    prompts: Mapping[str, str],
    seed: int,
    preset: str,
    representation: str,
    priors: Mapping[str, str | Path],
    mask: str | Path | bytes | None = None,
    depth: str | Path | bytes | None = None,
    extra: Mapping[str, Any] | None = None,
) -> RunFingerprint:
    """Fingerprint a run before it starts.

    Args:
        image, mask, depth: the input files (or their bytes); hashed, so a renamed copy is the same input.
        prompts: every prompt of the run by name (motion, static, token, initializer, refine).
        seed, preset, representation: as the user chose them.
        priors: name -> model folder or file (content identity), or a plain string that already identifies it
            (e.g. "tiny-random:seed=0" for the smoke preset's generated priors).
        extra: any other setting that changes the trained result (JSON values), e.g. {"video_model": ...}.
    """
    fields: dict[str, Any] = {
        "image": _input_digest(image),
        "mask": _input_digest(mask),
        "depth": _input_digest(depth),
    }
    fields.update({f"prompt.{name}": value for name, value in sorted(prompts.items())})
    fields.update({"seed": int(seed), "preset": preset, "representation": representation})
    info = {
        name: str(src)
        for name, src in (("image", image), ("mask", mask), ("depth", depth))
        if isinstance(src, (str, Path))
    }
    for name, source in sorted(priors.items()):
        if isinstance(source, Path):
            fields[f"prior.{name}"] = prior_identity(source)
            info[f"prior.{name}"] = str(source)
        else:
            fields[f"prior.{name}"] = str(source)
    fields.update(dict(extra or {}))
    return RunFingerprint(fields=json.loads(json.dumps(fields)), info=info)


def write_record(folder: str | Path, fingerprint: RunFingerprint) -> Path:
    """Write `<folder>/run_record.json` atomically; returns its path."""
    return atomic_write_json(Path(folder) / RECORD_NAME, fingerprint.to_json())


def read_record(folder: str | Path) -> RunFingerprint | None:
    """The fingerprint recorded in `folder`, None when there is none."""
    path = Path(folder) / RECORD_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); the run folder is damaged: use a new --out.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("fields"), dict):
        raise ValueError(f"{path} is not an Animate124 run record; use a new --out.")
    return RunFingerprint(fields=data["fields"], info=dict(data.get("info") or {}))


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(("sha256:", "sampled-sha256:", "tree-sha256:")):
        text = value.split(":", 1)[1][:12]
    return text if len(text) <= 40 else text[:37] + "..."


def differences(recorded: RunFingerprint, current: RunFingerprint) -> list[str]:
    """'name: recorded -> current' for every field that differs (missing fields count), in a stable order."""
    names = list(dict.fromkeys([*recorded.fields, *current.fields]))
    missing = object()
    out = []
    for name in names:
        old, new = recorded.fields.get(name, missing), current.fields.get(name, missing)
        if old != new:
            shown = ["(absent)" if v is missing else _show(v) for v in (old, new)]
            out.append(f"{name}: {shown[0]} -> {shown[1]}")
    return out


def check_resume(folder: str | Path, current: RunFingerprint, hint: str = "use a new --out or drop --resume") -> None:
    """Raise a one-line ValueError unless resuming in `folder` continues the run `current` describes.

    A folder with no record is accepted only when it holds nothing yet (a fresh --resume); a folder with files
    but no record (an older version's run, or not a run folder) cannot be checked and is refused.
    """
    folder = Path(folder)
    recorded = read_record(folder)
    if recorded is None:
        if folder.is_dir() and any(not p.name.startswith(".") for p in folder.iterdir()):
            raise ValueError(
                f"--resume: {folder} has files but no {RECORD_NAME}, so it cannot be checked to hold this run; {hint}."
            )
        return
    diff = differences(recorded, current)
    if diff:
        raise ValueError(f"--resume: {folder} holds another run ({'; '.join(diff)}); {hint}.")
