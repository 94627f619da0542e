"""Scene outputs: orbit renders (IMAGE batches, ComfyUI VIDEO, mp4 with a UI preview), save/load scene files, CLIP
evaluation."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from .glue import (
    CATEGORY,
    REFERENCE,
    SCENE_ANY,
    SCENE_DYNAMIC,
    SCENE_STATIC,
    clone_tree,
    folder_paths,
    list_model_dirs,
    output_dir,
    resolve_entry,
    torch_device,
    ui_files,
)

RENDER_MODES = ("test orbit", "fixed camera", "orbit while animating", "orbit grid")
CHANNELS = ("albedo", "lambertian", "depth", "normal", "mask")


def _render_config(scene: Any) -> Any:
    """The ray-marching settings the scene was trained with (a smoke scene renders with its cheap ones)."""
    from a124_core.rendering.renderer import RenderConfig
    from a124_core.training.config import config_from_dict

    data = (scene.stage_config or {}).get("render")
    return config_from_dict(RenderConfig, data) if isinstance(data, dict) else RenderConfig()


def _on_device(scene: Any) -> Any:
    """A copy of the scene on ComfyUI's device (the input stays untouched for ComfyUI's cache)."""
    return clone_tree(scene).to(torch_device())


def comfy_video(images: torch.Tensor, fps: float) -> Any:
    """ComfyUI's VIDEO (VideoFromComponents: the exact frames, encoded by whoever saves it) from IMAGE [N, H, W, 3].

    Imported lazily: `comfy_api` exists in ComfyUI 0.3.3x and later; on older versions no node can take a VIDEO,
    so the output is None there.
    """
    try:
        from comfy_api.latest import InputImpl, Types
    except ImportError:
        return None
    rate = Fraction(round(float(fps) * 1000), 1000)
    return InputImpl.VideoFromComponents(Types.VideoComponents(images=images.cpu(), frame_rate=rate))


def render_orbit(scene: Any, mode: str, channel: str, views: int, frames: int, resolution: int) -> torch.Tensor:
    """IMAGE [N, H, W, 3] of one render mode (views one after another for the test orbit)."""
    from a124_core.outputs.render import (
        OrbitConfig,
        orbit_grid_video,
        render_fixed_camera,
        render_orbit_animating,
        render_test_orbit,
    )

    config = OrbitConfig(num_views=views, num_frames=frames, resolution=resolution)
    local = _on_device(scene)
    args = dict(channels=(channel,), occupancy=local.occupancy, render_config=_render_config(scene))
    if mode == "fixed camera":
        return render_fixed_camera(local.field, config, **args)[channel]
    if mode == "orbit while animating":
        return render_orbit_animating(local.field, config, **args)[channel]
    orbit = render_test_orbit(local.field, config, **args)[channel]  # [V, F, H, W, 3]
    return orbit_grid_video(orbit) if mode == "orbit grid" else orbit.reshape(-1, *orbit.shape[2:])


class A124_OrbitRender:
    """Renders a scene to an IMAGE batch, a ComfyUI VIDEO and an mp4 in the output folder."""

    DESCRIPTION = (
        "Renders the scene: the SPEC test orbit (views x frames), the reference camera over time, one turn while "
        "animating, or all orbit views tiled into one video. Wire VIDEO into Save Video, IMAGE into any image node."
    )
    CATEGORY = f"{CATEGORY}/outputs"
    FUNCTION = "render"
    OUTPUT_NODE = True
    # VIDEO comes last so links of workflows saved before it existed keep their slots.
    RETURN_TYPES = ("IMAGE", "STRING", "VIDEO")
    RETURN_NAMES = ("images", "video_path", "video")
    OUTPUT_TOOLTIPS = (
        "Rendered frames [N, H, W, 3].",
        "The mp4 file written (empty when save_mp4 is off).",
        "The frames as ComfyUI's VIDEO at `fps` (Save Video, Get Video Components); None without comfy_api.",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "scene": (SCENE_ANY, {"tooltip": "A static or dynamic scene (stage output or Load Scene)."}),
                "mode": (
                    list(RENDER_MODES),
                    {"default": "test orbit", "tooltip": "Which cameras and times to render."},
                ),
                "channel": (
                    list(CHANNELS),
                    {"default": "albedo", "tooltip": "What to render: colour, shaded, depth, normals or mask."},
                ),
                "views": ("INT", {"default": 10, "min": 1, "max": 64, "tooltip": "Orbit views (SPEC 10: 10)."}),
                "frames": (
                    "INT",
                    {
                        "default": 64,
                        "min": 1,
                        "max": 512,
                        "tooltip": "Frames per view (SPEC 10: 64); 1 for static scenes.",
                    },
                ),
                "resolution": (
                    "INT",
                    {
                        "default": 400,
                        "min": 16,
                        "max": 2048,
                        "step": 8,
                        "tooltip": "Square render size (SPEC 10: 400).",
                    },
                ),
                "fps": (
                    "FLOAT",
                    {"default": 25.0, "min": 1.0, "max": 120.0, "tooltip": "Frame rate of the mp4 and the VIDEO."},
                ),
                "save_mp4": (
                    "BOOLEAN",
                    {"default": True, "tooltip": "Write an mp4 to output/animate124/videos and preview it."},
                ),
                "filename_prefix": ("STRING", {"default": "animate124", "tooltip": "File name prefix of the mp4."}),
            }
        }

    def render(self, scene, mode, channel, views, frames, resolution, fps, save_mp4, filename_prefix):
        from a124_core.outputs.export import write_video

        images = render_orbit(scene, mode, channel, int(views), int(frames), int(resolution))
        video = comfy_video(images, fps)
        if not save_mp4:
            return {"ui": {}, "result": (images, "", video)}
        folder = output_dir("videos")
        index = len(list(folder.glob(f"{filename_prefix}_*.mp4"))) + 1
        path = folder / f"{filename_prefix}_{mode.replace(' ', '-')}_{channel}_{index:05d}.mp4"
        write_video(images, path, fps=float(fps))
        return {"ui": ui_files([path], animated=True), "result": (images, str(path), video)}


class A124_SaveScene:
    """Writes a scene file (safetensors + JSON header) that Load Scene and the CLI read back."""

    DESCRIPTION = "Saves a trained scene to output/animate124/scenes/<prefix>_<stage>_<n>.safetensors."
    CATEGORY = f"{CATEGORY}/outputs"
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("The file written.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "scene": (SCENE_ANY, {"tooltip": "The scene to save."}),
                "filename_prefix": ("STRING", {"default": "animate124", "tooltip": "File name prefix."}),
            }
        }

    def save(self, scene, filename_prefix):
        folder = output_dir("scenes")
        index = len(list(folder.glob(f"{filename_prefix}_{scene.stage}_*.safetensors"))) + 1
        path = scene.save(folder / f"{filename_prefix}_{scene.stage}_{index:05d}.safetensors")
        return {"ui": {"text": [str(path)]}, "result": (str(path),)}


def scene_files() -> list[str]:
    """Scene files under output/animate124 ("output/...") and models/animate124 ("animate124/...")."""
    roots = [("output", Path(folder_paths().get_output_directory(), "animate124"))]
    roots += [("animate124", Path(p)) for p in folder_paths().get_folder_paths("animate124")]
    found = []
    for label, root in roots:
        if root.is_dir():
            found += [
                f"{label}/{p.relative_to(root).as_posix()}"
                for p in sorted(root.rglob("*.safetensors"))
                if _scene_header(p) is not None
            ]
    return sorted(dict.fromkeys(found))


def _scene_header(path: Path) -> dict | None:
    """The JSON metadata of a scene file (cheap: reads the header only), None for other files."""
    from a124_core.training.scene import read_header

    try:
        return read_header(path) or None
    except (OSError, ValueError):
        return None


def resolve_scene_file(entry: str) -> Path:
    label, _, rel = entry.partition("/")
    if label == "output":
        path = Path(folder_paths().get_output_directory(), "animate124", rel)
        if path.is_file():
            return path
        raise FileNotFoundError(f"Scene file {path} does not exist; save one with Save Scene or pick another.")
    return resolve_entry(entry, "scene file")


class _LoadScene:
    DYNAMIC = False
    CATEGORY = f"{CATEGORY}/outputs"
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "scene_file": (
                    scene_files(),
                    {
                        "tooltip": "A scene from Save Scene or a stage checkpoint (output/animate124), or one in "
                        "models/animate124."
                    },
                )
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, scene_file: str) -> bool | str:
        try:
            path = resolve_scene_file(scene_file)
        except (FileNotFoundError, ValueError) as err:
            return str(err)
        meta = _scene_header(path)
        if meta is None:
            return f"{path} is not an Animate124 scene file."
        if bool(meta.get("dynamic")) != cls.DYNAMIC:
            kind, other = ("dynamic", "Load Dynamic Scene") if meta.get("dynamic") else ("static", "Load Static Scene")
            return f"{scene_file} holds a {kind} scene (stage {meta.get('stage')}); load it with {other}."
        return True

    def load(self, scene_file: str):
        from a124_core.training.scene import Scene

        with torch.inference_mode(False):
            return (Scene.load(resolve_scene_file(scene_file)),)


class A124_LoadStaticScene(_LoadScene):
    """A static scene file (static stage) -> A124_SCENE_STATIC."""

    DESCRIPTION = "Loads a static scene (the static stage's result) to render it or to start the coarse stage."
    DYNAMIC = False
    RETURN_TYPES = (SCENE_STATIC,)
    RETURN_NAMES = ("scene",)
    OUTPUT_TOOLTIPS = ("The static scene.",)


class A124_LoadDynamicScene(_LoadScene):
    """A dynamic scene file (coarse or refine stage) -> A124_SCENE_DYNAMIC."""

    DESCRIPTION = "Loads a dynamic (4D) scene (coarse or refine result) to render it or to refine it."
    DYNAMIC = True
    RETURN_TYPES = (SCENE_DYNAMIC,)
    RETURN_NAMES = ("scene",)
    OUTPUT_TOOLTIPS = ("The dynamic scene.",)


class A124_Evaluate:
    """CLIP-R/T/I/F of a scene (paper Table 1) with a local CLIP model."""

    DESCRIPTION = "Renders the test orbit and scores it with CLIP (R, T, I, F as in the paper's Table 1)."
    CATEGORY = f"{CATEGORY}/outputs"
    FUNCTION = "evaluate"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "FLOAT", "FLOAT", "FLOAT", "FLOAT")
    RETURN_NAMES = ("scores_json", "clip_r", "clip_t", "clip_i", "clip_f")
    OUTPUT_TOOLTIPS = ("All scores as JSON.", "CLIP-R", "CLIP-T", "CLIP-I", "CLIP-F")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        clips = list_model_dirs(("animate124", "clip"), ("preprocessor_config.json",))
        return {
            "required": {
                "scene": (SCENE_ANY, {"tooltip": "The scene to evaluate."}),
                "reference": (REFERENCE, {"tooltip": "The reference image (for CLIP-I)."}),
                "clip_model": (clips, {"tooltip": "A transformers CLIPModel folder (paper: ViT-B/32)."}),
                "prompt": (
                    "STRING",
                    {"default": "a panda is dancing", "tooltip": "The motion prompt (CLIP-T, CLIP-R)."},
                ),
                "candidates": (
                    "STRING",
                    {
                        "default": "a dog is running\na cat is jumping",
                        "multiline": True,
                        "tooltip": "Other prompts CLIP-R ranks against, one per line.",
                    },
                ),
                "views": ("INT", {"default": 10, "min": 1, "max": 64, "tooltip": "Orbit views (SPEC 11: 10)."}),
                "frames": (
                    "INT",
                    {
                        "default": 64,
                        "min": 1,
                        "max": 512,
                        "tooltip": "Frames per view (static scenes: 1; CLIP-F then compares neighbouring views).",
                    },
                ),
                "resolution": ("INT", {"default": 224, "min": 16, "max": 1024, "step": 8, "tooltip": "Render size."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, clip_model: str) -> bool | str:
        try:
            resolve_entry(clip_model, "CLIP model")
        except (FileNotFoundError, ValueError) as err:
            return str(err)
        return True

    def evaluate(self, scene, reference, clip_model, prompt, candidates, views, frames, resolution):
        from a124_core.outputs.metrics import ClipEvaluator, ClipMetricsConfig

        orbit = render_orbit(scene, "test orbit", "albedo", int(views), int(frames), int(resolution))
        orbit = orbit.reshape(int(views), -1, *orbit.shape[1:])  # [V, F, H, W, 3]
        reference_video = orbit[0]
        if orbit.shape[1] == 1:  # a static scene: one frame per view; CLIP-F then compares neighbouring views
            orbit = orbit.transpose(0, 1)
        evaluator = ClipEvaluator(
            resolve_entry(clip_model, "CLIP model"), ClipMetricsConfig(device=str(torch_device()))
        )
        lines = [c.strip() for c in candidates.splitlines() if c.strip()]
        scores = evaluator.evaluate(orbit, reference.rgb.permute(1, 2, 0), prompt, lines, reference_video)
        text = json.dumps(scores.as_dict(), indent=1)
        return {"ui": {"text": [text]}, "result": (text, scores.clip_r, scores.clip_t, scores.clip_i, scores.clip_f)}


NODE_CLASS_MAPPINGS = {
    "A124_OrbitRender": A124_OrbitRender,
    "A124_SaveScene": A124_SaveScene,
    "A124_LoadStaticScene": A124_LoadStaticScene,
    "A124_LoadDynamicScene": A124_LoadDynamicScene,
    "A124_Evaluate": A124_Evaluate,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "A124_OrbitRender": "Orbit Render (Animate124)",
    "A124_SaveScene": "Save Scene (Animate124)",
    "A124_LoadStaticScene": "Load Static Scene (Animate124)",
    "A124_LoadDynamicScene": "Load Dynamic Scene (Animate124)",
    "A124_Evaluate": "Evaluate CLIP (Animate124)",
}
