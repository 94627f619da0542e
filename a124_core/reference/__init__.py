"""Reference preprocessing (SPEC 8): foreground, recentring, depth and preview of the input image or clip."""

from .clip import ClipConfig, ReferenceClip
from .clip_build import build_clip, load_clip_video
from .clip_inputs import FramePlan, VideoPlan, check_clip_inputs, check_clip_video, plan_frames
from .depth import DepthEstimator, normalise_depth
from .foreground import REMBG_MODELS, find_rembg_model, rembg_search_paths
from .inputs import load_image_file
from .reference import Reference, ReferenceConfig, build_reference, check_reference_inputs

__all__ = [
    "REMBG_MODELS",
    "ClipConfig",
    "DepthEstimator",
    "FramePlan",
    "Reference",
    "ReferenceClip",
    "ReferenceConfig",
    "VideoPlan",
    "build_clip",
    "build_reference",
    "check_clip_inputs",
    "check_clip_video",
    "check_reference_inputs",
    "find_rembg_model",
    "load_clip_video",
    "load_image_file",
    "normalise_depth",
    "plan_frames",
    "rembg_search_paths",
]
