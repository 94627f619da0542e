"""Reference preprocessing (SPEC 8): foreground, recentring, depth and preview of the input image."""

from .depth import DepthEstimator, normalise_depth
from .foreground import REMBG_MODELS, find_rembg_model, rembg_search_paths
from .inputs import load_image_file
from .reference import Reference, ReferenceConfig, build_reference, check_reference_inputs

__all__ = [
    "REMBG_MODELS",
    "DepthEstimator",
    "Reference",
    "ReferenceConfig",
    "build_reference",
    "check_reference_inputs",
    "find_rembg_model",
    "load_image_file",
    "normalise_depth",
    "rembg_search_paths",
]
