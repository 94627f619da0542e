"""The dynamic representations a coarse stage can build from the static result (one entry each).

'grid4d' is Animate124's 4D grid (T copies of the static grid, blended in time; paper Eq. 1). 'deformation' is
Dream-in-4D's: the static field frozen as the canonical scene plus a displacement network over (x, y, z, t); it
keeps correspondence over time (a vertex is the same point in every frame), so a scene exports as one mesh with
morph targets. Each entry builds the field; `dynamic_terms` adds the representation's own smoothness term.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..fields.deformation import DeformationField
from ..fields.grid4d import Grid4DField
from ..fields.static import StaticField


def _grid4d(static: StaticField, config: Any) -> Grid4DField:
    return Grid4DField.from_static(static, config.num_knots, config.temporal_tv.points)


def _deformation(static: StaticField, config: Any) -> DeformationField:
    return DeformationField.from_static(static, config.deformation)


#: representation name -> builder(static field, coarse config) -> dynamic field
REPRESENTATIONS: dict[str, Callable[[StaticField, Any], Any]] = {"grid4d": _grid4d, "deformation": _deformation}


def representation_of(field: Any) -> str:
    """The name of a dynamic field's representation."""
    return "deformation" if isinstance(field, DeformationField) else "grid4d"


__all__ = ["REPRESENTATIONS", "representation_of"]
