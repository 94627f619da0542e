"""The dynamic representations, in one registry: name -> a representation with its default settings.

Add one by writing its file (a `Representation` subclass) and one line below. Everything else asks the registry:
the CLI and the nodes list its names, configs name their representation by a typed field (the object itself),
scenes find theirs by field type (`representation_of`) or by the name in their metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...config_io import config_from_dict, config_to_dict
from ...outputs.animated_mesh import AnimatedMeshConfig
from ...outputs.scene_export import ExportedMesh
from .base import Representation, incompatible
from .deformation import Deformation
from .grid4d import Grid4D

#: name -> the representation with its default (paper) settings; the CLI and nodes list these names.
REPRESENTATIONS: dict[str, Representation] = {r.name: r for r in (Grid4D(), Deformation())}
#: What a dynamic stage trains unless told otherwise (Animate124's own).
DEFAULT_REPRESENTATION = Grid4D.name


def representation_named(name: str) -> Representation:
    """The registered representation `name` (default settings); ValueError naming the choices otherwise."""
    if name not in REPRESENTATIONS:
        raise ValueError(f"Unknown representation {name!r}; choose one of {', '.join(REPRESENTATIONS)}.")
    return REPRESENTATIONS[name]


def representation_of(field: Any) -> Representation:
    """The registered representation a dynamic field belongs to."""
    for representation in REPRESENTATIONS.values():
        if representation.owns(field):
            return representation
    raise ValueError(f"{type(field).__name__} belongs to no registered representation ({', '.join(REPRESENTATIONS)})")


def representation_to_dict(representation: Representation) -> dict[str, Any]:
    """JSON form inside a stage config: its name and its settings."""
    return {"name": representation.name, **config_to_dict(representation)}


def representation_from_dict(data: dict[str, Any]) -> Representation:
    """Inverse of `representation_to_dict`."""
    values = dict(data)
    kind = type(representation_named(values.pop("name", DEFAULT_REPRESENTATION)))
    return config_from_dict(kind, values)


def export_animated_glb(
    field: Any, path: str | Path, config: AnimatedMeshConfig | None = None, device: str | torch.device = "cpu"
) -> ExportedMesh:
    """Write a dynamic scene's field as one animated GLB at `path` (atomic), the way its representation exports."""
    if not getattr(field, "is_dynamic", False):
        raise ValueError("An animated mesh needs a dynamic scene (coarse or refine stage); this one is static.")
    return representation_of(field).export(field, path, config or AnimatedMeshConfig(), device)


__all__ = [
    "DEFAULT_REPRESENTATION",
    "REPRESENTATIONS",
    "Deformation",
    "Grid4D",
    "Representation",
    "export_animated_glb",
    "incompatible",
    "representation_from_dict",
    "representation_named",
    "representation_of",
    "representation_to_dict",
]
