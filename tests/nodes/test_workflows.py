"""The bundled workflows: UI and API versions describe the same graph, and each API workflow runs end to end on
tiny models through the test executor (ComfyUI's validation rules, topological execution)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import executor
import pytest
from node_env import EXAMPLES, REPO, node_classes
from PIL import Image
from tiny_settings import tiny

WORKFLOWS = REPO / "workflows"
sys.path.insert(0, str(REPO / "scripts"))
from build_workflows import workflows  # noqa: E402

from tests.meshes.builder import build_test_mesh, write_glb  # noqa: E402

NAMES = tuple(w.name for w in workflows())


def load(name: str) -> dict:
    return json.loads((WORKFLOWS / name).read_text())


@pytest.fixture
def mappings(pack, comfy_env, models_dir, tmp_path):
    """Our nodes plus a LoadImage stand-in reading panda.png; the Zeroscope folder aliases the tiny video model."""
    inputs = tmp_path / "input"
    (inputs / "3d").mkdir(parents=True)
    write_glb(build_test_mesh(), inputs / "3d" / "model.glb")
    Image.open(EXAMPLES / "panda-dance" / "rgba.png").convert("RGBA").resize((96, 96)).save(inputs / "panda.png")
    for alias, target in (
        (models_dir / "diffusers" / "zeroscope_v2_576w", models_dir / "diffusers" / "text-to-video-ms-1.7b"),
        (
            models_dir / "checkpoints" / "v1-5-pruned-emaonly.safetensors",
            models_dir / "checkpoints" / "tiny-sd15.safetensors",
        ),
    ):
        if not alias.exists():
            alias.symlink_to(target)
    output = Path(comfy_env["folder_paths"].get_output_directory())
    return {
        **node_classes(pack),
        "LoadImage": executor.load_image_stand_in(inputs),
        "SaveVideo": executor.save_video_stand_in(output),
        "Preview3D": executor.preview_3d_stand_in(output),
        **core_loaders(models_dir),
    }


def core_loaders(models_dir: Path) -> dict[str, type]:
    """ComfyUI's CheckpointLoaderSimple / ControlNetLoader / ImageOnlyCheckpointLoader (names, types, outputs),
    returning ComfyUI-style model objects around the tiny priors (fake_comfy_models)."""
    import fake_comfy_models as fc

    from a124_core.priors.controlnet_tile import ControlNetTilePrior
    from a124_core.priors.sd import StableDiffusionPrior
    from a124_core.priors.zero123 import Zero123Prior

    def comfy_objects(prior, cc_projection=None):
        scale = prior.vae.config.scaling_factor
        return fc.ModelPatcher(fc.BaseModel(prior.unet, prior.schedule.alphas_cumprod, scale, cc_projection)), fc.VAE(
            prior.vae
        )

    class CheckpointLoaderSimple:
        RETURN_TYPES, FUNCTION = ("MODEL", "CLIP", "VAE"), "load"
        INPUT_TYPES = classmethod(lambda cls: {"required": {"ckpt_name": (["v1-5-pruned-emaonly.safetensors"],)}})

        def load(self, ckpt_name):
            sd = StableDiffusionPrior.from_pretrained(models_dir / "diffusers" / "stable-diffusion-v1-5", device="cpu")
            model, vae = comfy_objects(sd)
            return (model, fc.CLIP(sd.prompts), vae)

    class ControlNetLoader:
        RETURN_TYPES, FUNCTION = ("CONTROL_NET",), "load"
        INPUT_TYPES = classmethod(
            lambda cls: {"required": {"control_net_name": (["control_v11f1e_sd15_tile_fp16.safetensors"],)}}
        )

        def load(self, control_net_name):
            cn = ControlNetTilePrior.from_pretrained(
                models_dir / "controlnet" / "control_v11f1e_sd15_tile",
                models_dir / "diffusers" / "stable-diffusion-v1-5",
                device="cpu",
            )
            return (fc.ControlNet(cn.controlnet),)

    class ImageOnlyCheckpointLoader:
        RETURN_TYPES, FUNCTION = ("MODEL", "CLIP_VISION", "VAE"), "load"
        INPUT_TYPES = classmethod(lambda cls: {"required": {"ckpt_name": (["stable_zero123.ckpt"],)}})

        def load(self, ckpt_name):
            z123 = Zero123Prior.from_pretrained(models_dir / "diffusers" / "stable-zero123", device="cpu")
            model, vae = comfy_objects(z123, z123.projection)
            return (model, fc.ClipVision(z123), vae)

    return {c.__name__: c for c in (CheckpointLoaderSimple, ControlNetLoader, ImageOnlyCheckpointLoader)}


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_describe_the_same_graph(name, mappings):
    api = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in load(f"{name}_api.json").items()}
    assert set(api) == {str(n["id"]) for n in load(f"{name}.json")["nodes"] if n["type"] not in executor.VIRTUAL_NODES}
    assert executor.ui_to_api(load(f"{name}.json"), mappings) == api


def test_full_pipeline_then_render_only(mappings, comfy_env):
    out = Path(comfy_env["folder_paths"].get_output_directory())
    results = executor.run(tiny(load("animate124_full_api.json")), mappings)
    scene = results["10"][0]
    assert scene.stage == "refine" and scene.is_dynamic and scene.complete
    assert results["8"][0].stage == "static" and results["9"][0].stage == "coarse"
    assert results["12"][0].shape == (6, 24, 24, 3)  # 2 views x 3 frames
    assert results["13"][0].shape == (3, 24, 24, 3)
    # One turn while animating reaches Save Video as ComfyUI's VIDEO (no mp4 of its own).
    assert results["13"][1] == "" and results["13"][2].get_components().images.shape == (3, 24, 24, 3)
    from a124_core.outputs.export import read_video

    frames, fps = read_video(out / "animate124" / "videos" / "animate124_animating_00001_.mp4")
    assert frames.shape[0] == 3 and fps == pytest.approx(25.0)
    saved = Path(results["11"][0])
    assert saved == out / "animate124" / "scenes" / "animate124_refine_00001.safetensors"
    for stage in ("static", "coarse", "refine"):
        assert (out / "animate124" / "checkpoints" / "animate124" / f"{stage}.safetensors").is_file()
    # The render-only workflow names the scene the full pipeline saved.
    render = executor.run(tiny(load("animate124_render_only_api.json")), mappings)
    assert render["2"][0].shape == (6, 24, 24, 3) and render["5"][0].shape == (3, 24, 48, 3)  # 2 views side by side
    assert render["4"][0].shape == (3, 24, 24, 3) and Path(render["4"][1]).is_file()
    assert (render["2"][0] - results["12"][0]).abs().max() < 1e-5  # the saved scene renders like the trained one


def test_zeroscope_variant_runs(mappings):
    prompt = tiny(load("animate124_zeroscope_api.json"))
    video = prompt["5"]["inputs"]
    assert video["model"] == "diffusers/zeroscope_v2_576w" and (video["width"], video["height"]) == (144, 80)
    video.update(width=32, height=16)  # keeps a non-square frame; 144 x 80 makes the tiny UNet's attention slow
    results = executor.run(prompt, mappings)
    assert results["5"][0].image_size == (16, 32) and results["10"][0].complete


def test_animated_mesh_workflow_ends_in_preview_3d(mappings, comfy_env):
    """The deformation representation end to end: one GLB with a morph target per frame reaches Preview 3D."""
    import pygltflib

    from a124_core.fields.deformation import DeformationField

    prompt = tiny(load("animate124_animated_mesh_api.json"))
    assert prompt["9"]["inputs"]["representation"] == "deformation"
    results = executor.run(prompt, mappings)
    scene = results["10"][0]
    assert isinstance(scene.field, DeformationField) and scene.stage == "refine" and scene.complete
    model_file, mesh = results["11"]
    out = Path(comfy_env["folder_paths"].get_output_directory())
    glb = pygltflib.GLTF2.load(str(out / model_file))
    assert model_file.startswith("animate124/meshes/") and len(glb.meshes) == 1
    assert len(glb.meshes[0].primitives[0].targets) == 3 and len(glb.animations) == 1
    assert mesh.vertices.shape[0] == 3 and mesh.faces.shape[0] == 3 and mesh.vertices.shape[-1] == 3
    # Save Scene -> Load Dynamic Scene keeps the deformation field: it renders the same.
    saved = mappings["A124_SaveScene"].execute(scene, "deform")[0]
    entry = "output/" + Path(saved).relative_to(out / "animate124").as_posix()
    (loaded,) = mappings["A124_LoadDynamicScene"].execute(entry)
    assert isinstance(loaded.field, DeformationField)
    render = mappings["A124_OrbitRender"].execute
    a = render(scene, "fixed camera", "albedo", 1, 2, 24, 10.0, False, "a")[0]
    b = render(loaded, "fixed camera", "albedo", 1, 2, 24, 10.0, False, "b")[0]
    assert (a - b).abs().max() < 1e-5


def test_animate_mesh_workflow_writes_the_users_mesh_back_to_preview_3d(mappings, comfy_env):
    """Animate Mesh (a file from input/3d, no canvas) -> Preview 3D & Animation on tiny priors: the GLB is the input's
    mesh (vertices, faces, UVs) with a morph target per frame and one clip; the MESH input (a MESH the test makes)
    works the same way, and a file that is not in input/3d is refused before anything trains."""
    import pygltflib
    import torch

    from a124_core.gltf.accessors import read_accessor

    mesh = build_test_mesh()
    prompt = tiny(load("animate124_animate_mesh_api.json"))
    results = executor.run(prompt, mappings)
    model_file, out_mesh, orbit = results["3"]
    out = Path(comfy_env["folder_paths"].get_output_directory())
    glb = pygltflib.GLTF2.load(str(out / model_file))
    [prim] = glb.meshes[0].primitives
    assert model_file.startswith("animate124/meshes/") and len(glb.animations) == 1 and len(prim.targets) == 3
    assert read_accessor(glb, prim.attributes.POSITION).shape == mesh.vertices.shape
    assert read_accessor(glb, prim.indices).size == mesh.faces.size
    assert read_accessor(glb, prim.attributes.TEXCOORD_0).shape == (len(mesh.vertices), 2)
    assert out_mesh.vertices.shape == (3, len(mesh.vertices), 3) and out_mesh.faces.shape == (3, len(mesh.faces), 3)
    assert orbit.shape[0] == 3 and orbit.shape[-1] == 3
    node = mappings["A124_AnimateMesh"]
    made = SimpleNamespace(vertices=torch.tensor(mesh.vertices)[None].float(), faces=torch.tensor(mesh.faces)[None])
    with torch.inference_mode():  # as ComfyUI runs nodes
        result = node.execute("", "a robot is waving", "smoke", 2, 0, 2, 10.0, 1000.0, mesh=made)
    glb = pygltflib.GLTF2.load(str(out / result[0]))
    assert read_accessor(glb, glb.meshes[0].primitives[0].attributes.POSITION).shape == mesh.vertices.shape
    assert result[1].vertices.shape == (2, len(mesh.vertices), 3)
    prompt["3"]["inputs"]["model_file"] = "3d/robot.glb"
    with pytest.raises(executor.ValidationError, match=r"'3d/robot.glb' is not a mesh in ComfyUI/input/3d"):
        executor.run(prompt, mappings)


def test_comfy_loaders_variant_runs(mappings):
    """SD1.5, ControlNet-Tile and Stable Zero123 from ComfyUI's own loaders, through the adapter nodes."""
    prompt = tiny(load("animate124_comfy_loaders_api.json"))
    results = executor.run(prompt, mappings)
    assert results["14"][0].stage == "refine" and results["14"][0].complete
    assert type(results["6"][0]).__name__ == "ComfySDPrior" and type(results["8"][0]).__name__ == "ComfyZero123Prior"
    assert results["16"][0].shape == (6, 24, 24, 3)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda p: p["10"]["inputs"].update(dynamic_scene=["8", 0]),
            "received A124_SCENE_STATIC, expected A124_SCENE_DYNAMIC",
        ),
        (lambda p: p["8"]["inputs"].update(zero123_prior=["5", 0]), "expected A124_PRIOR_IMAGE_POSE"),
        (lambda p: p["10"]["inputs"].update(controlnet_prior=["3", 0]), "expected A124_PRIOR_IMAGE_CONTROL"),
        (lambda p: p["2"]["inputs"].update(border_ratio=0.9), r"border_ratio=0.9 is outside [0.0, 0.45]"),
        (lambda p: p["2"]["inputs"].update(border_ratio=float("nan")), "border_ratio=nan is not a finite number"),
        (lambda p: p["12"]["inputs"].update(fps=float("inf")), "fps=inf is not a finite number"),
        (lambda p: p["5"]["inputs"].update(width=2000, height=2000), r"width=2000 is outside [0, 1024]"),
        (lambda p: p["11"]["inputs"].update(filename_prefix="../x"), "must be a plain file name"),
        (lambda p: p["8"]["inputs"].update(preset="slow"), "preset='slow' not in"),
        (lambda p: p["10"]["inputs"].update(token_prompt="a panda is dancing"), "must contain {token}"),
        (lambda p: p["9"]["inputs"].update(resume_from="checkpoints/none.safetensors"), "not found"),
        (lambda p: p["5"]["inputs"].update(width=144), "Set both width and height"),
    ],
)
def test_wrong_wiring_fails_before_training(mappings, comfy_env, change, expected):
    prompt = tiny(load("animate124_full_api.json"))
    change(prompt)
    with pytest.raises(executor.ValidationError, match=re.escape(expected)):
        executor.run(prompt, mappings)
    out = Path(comfy_env["folder_paths"].get_output_directory())
    assert not (out / "animate124" / "checkpoints").exists()  # nothing trained
