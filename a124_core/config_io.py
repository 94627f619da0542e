"""Configs to and from JSON: every checkpoint records the (nested, frozen) dataclass config it was trained with."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-serialisable dict of a (nested) dataclass config."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Inverse of `config_to_dict`: nested dataclasses and tuples are rebuilt from JSON lists/dicts."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no fields {sorted(unknown)}: the checkpoint was written by another version"
        )
    kwargs = {name: _convert(hints[name], value) for name, value in data.items()}
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return config_from_dict(hint, value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is not None and len(args) >= 1:
            for arg in args:
                if typing.get_origin(arg) is tuple and isinstance(value, list):
                    return tuple(value)
    return value


__all__ = ["config_from_dict", "config_to_dict"]
