"""Configs to and from JSON: every checkpoint records the (nested, frozen) dataclass config it was trained with.

A field whose value is not a plain nested config (an object chosen among several kinds, e.g. a stage's
representation) names its own converters in the field's metadata: `{"to_dict": f, "from_dict": g}`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-serialisable dict of a (nested) dataclass config."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        to_dict = f.metadata.get("to_dict")
        out[f.name] = to_dict(value) if to_dict is not None else _plain(value)
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Inverse of `config_to_dict`: nested dataclasses and tuples are rebuilt from JSON lists/dicts."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no fields {sorted(unknown)}: the checkpoint was written by another version"
        )
    kwargs = {}
    for name, value in data.items():
        from_dict = fields[name].metadata.get("from_dict")
        kwargs[name] = from_dict(value) if from_dict is not None else _convert(hints[name], value)
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
