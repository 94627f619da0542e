"""The spellings that differ between the library versions requirements.txt allows (transformers 4.46 to 5.x).

Kept in one place so each call site reads the same on every version and the floor venv of CI exercises them:
- `from_pretrained(..., dtype=)`: transformers 4.56 renamed `torch_dtype` to `dtype`; before 4.56 `dtype`
  is not a loading option and reaches the model's constructor (TypeError), from 4.56 on `torch_dtype` warns.
- `CLIPModel.get_image_features` / `get_text_features`: a tensor in 4.x, an output object whose
  `pooler_output` holds the projected features in 5.x.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

#: First transformers release whose `from_pretrained` takes `dtype=` (4.56.0 deprecated `torch_dtype=`).
_DTYPE_KEYWORD_SINCE = (4, 56)


def version_tuple(version: str) -> tuple[int, ...]:
    """ "4.57.6" -> (4, 57, 6); pre-release and local tails ("5.0.0rc1", "2.13.0+cpu") end the numbers."""
    parts: list[int] = []
    for piece in version.split("+")[0].split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts)


def transformers_version() -> tuple[int, ...]:
    """The installed transformers version as a tuple."""
    import transformers

    return version_tuple(transformers.__version__)


def transformers_dtype_kwargs(dtype: torch.dtype, version: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The keyword a transformers `from_pretrained` takes for the weights' dtype on the installed version."""
    version = transformers_version() if version is None else version
    return {"dtype" if version >= _DTYPE_KEYWORD_SINCE else "torch_dtype": dtype}


def clip_features(output: Tensor | Any) -> Tensor:
    """Projected CLIP embeddings [N, D] from `get_image_features` / `get_text_features` on any version."""
    if torch.is_tensor(output):
        return output  # transformers 4.x
    features = getattr(output, "pooler_output", None)
    if not torch.is_tensor(features):
        raise TypeError(
            f"CLIP get_*_features returned {type(output).__name__} without a pooler_output tensor; "
            "this transformers version is not supported (see requirements.txt)."
        )
    return features
