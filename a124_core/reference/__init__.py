"""Reference preprocessing (SPEC 8): foreground, recentring, depth and preview of the input image."""

from .depth import DepthEstimator, normalise_depth
from .foreground import REMBG_MODELS, find_rembg_model, rembg_search_paths
from .reference import Reference, ReferenceConfig, build_reference

__all__ = [
    "REMBG_MODELS",
    "DepthEstimator",
    "Reference",
    "ReferenceConfig",
    "build_reference",
    "find_rembg_model",
    "normalise_depth",
    "rembg_search_paths",
]
