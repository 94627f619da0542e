"""Writes the bundled workflows (`workflows/<name>.json` for the canvas, `<name>_api.json` for POST /prompt) from the
descriptions below: one entry per workflow, its nodes in API form grouped by step (layout: workflow_layout.py).

    python scripts/build_workflows.py           # rewrite workflows/
    python scripts/build_workflows.py --check   # exit 1 when a shipped file differs from its description

A new workflow is one more entry in `workflows()`. Widget order and slots come from the nodes' INPUT_TYPES, so after a
node gains an input, rerunning this script updates every workflow (the new widget takes its default).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import types
from pathlib import Path

from workflow_layout import Group, Model, Node, NodeSpec, Slot, Workflow, api_prompt, spec_from_class, ui_workflow

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"

# ------------------------------------------------------------------------------------------------ model files
#: Single files ComfyUI users fetch by name; the URLs are the ones ComfyUI's own templates use.
SD15_CHECKPOINT = Model(
    "v1-5-pruned-emaonly.safetensors",
    "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/v1-5-pruned-emaonly.safetensors",
    "checkpoints",
)
CONTROLNET_TILE = Model(
    "control_v11f1e_sd15_tile_fp16.safetensors",
    "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/"
    "control_v11f1e_sd15_tile_fp16.safetensors",
    "controlnet",
)
STABLE_ZERO123 = Model(
    "stable_zero123.ckpt",
    "https://huggingface.co/stabilityai/stable-zero123/resolve/main/stable_zero123.ckpt",
    "checkpoints",
)

# ------------------------------------------------------------------------------------------------ ComfyUI's own nodes
#: The core nodes the workflows use, as ComfyUI 0.8.0 declares them (not importable without ComfyUI).
CORE_NODES = {
    "LoadImage": NodeSpec(
        (Slot("image", "COMBO", True, "panda.png"), Slot("upload", "IMAGEUPLOAD", True, "image", ui_only=True)),
        (("IMAGE", "IMAGE"), ("MASK", "MASK")),
        "Load Image",
        preview=True,
    ),
    "CheckpointLoaderSimple": NodeSpec(
        (Slot("ckpt_name", "COMBO", True),), (("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")), "Load Checkpoint"
    ),
    "ControlNetLoader": NodeSpec(
        (Slot("control_net_name", "COMBO", True),), (("CONTROL_NET", "CONTROL_NET"),), "Load ControlNet Model"
    ),
    "ImageOnlyCheckpointLoader": NodeSpec(
        (Slot("ckpt_name", "COMBO", True),),
        (("MODEL", "MODEL"), ("CLIP_VISION", "CLIP_VISION"), ("VAE", "VAE")),
        "Image Only Checkpoint Loader (img2vid model)",
    ),
    "SaveVideo": NodeSpec(
        (
            Slot("video", "VIDEO"),
            Slot("filename_prefix", "STRING", True, "video/ComfyUI"),
            Slot("format", "COMBO", True, "auto"),
            Slot("codec", "COMBO", True, "auto"),
        ),
        (),
        "Save Video",
        preview=True,
    ),
}
CORE_NODES["Preview3D"] = NodeSpec(
    (
        # ComfyUI 0.8's "Preview 3D & Animation" (V3): the frontend adds its 3D viewer as the widget `image` after
        # model_file; camera_info and bg_image are optional sockets.
        Slot("model_file", "STRING", True, "", linked=True),
        Slot("image", "PREVIEW_3D", True, "", ui_only=True),
        Slot("camera_info", "LOAD3D_CAMERA"),
        Slot("bg_image", "IMAGE"),
    ),
    (),
    "Preview 3D & Animation",
    preview=True,
)
NOTE = NodeSpec((Slot("text", "STRING", True, "", multiline=True),), (), "Note")

# ------------------------------------------------------------------------------------------------ descriptions
STEP_TITLES = ("Step 0: textual inversion", "Step 1: static NeRF", "Step 2: coarse dynamic", "Step 3: refine")
STAGE = {"preset": "paper", "steps": 0, "training_seed": 3407, "negative_prompt": "", "run_name": "animate124"}
PACK_FOLDERS = """\
Nothing is downloaded while it runs. Put these folders under ComfyUI/models/ first (whole Hugging Face
repositories, diffusers layout; repository in brackets):
- diffusers/stable-diffusion-v1-5/ [stable-diffusion-v1-5/stable-diffusion-v1-5]: steps 0, 1, ControlNet base
- diffusers/zero123-xl/ [bennyguo/zero123-xl-diffusers]: steps 1-3
- {video}
- controlnet/control_v11f1e_sd15_tile/ [lllyasviel/control_v11f1e_sd15_tile]: step 3
Then put your image in Load Image (RGBA with alpha, or wire a mask), write the prompts, queue.
Preset "paper" is the paper's schedule, "fast" halves it, "smoke" only checks the installation.
Single files you may already have (SD1.5 checkpoint, Stable Zero123): animate124_comfy_loaders.json."""
MODELSCOPE = "diffusers/text-to-video-ms-1.7b/ [ali-vilab/text-to-video-ms-1.7b]: steps 2, 3"
ZEROSCOPE = "diffusers/zeroscope_v2_576w/ [cerspense/zeroscope_v2_576w]: steps 2, 3 (144 x 80 frames)"


def reference_group() -> Group:
    return Group(
        "Reference image",
        (
            Node(1, "LoadImage", {"image": "panda.png"}),
            Node(2, "A124_Reference", {"image": [1, 0], "border_ratio": 0.2, "mask": [1, 1]}),
        ),
        "#8a8a3f",
    )


def outputs_group(scene: int, ids: tuple[int, int, int, int], prefix: str) -> Group:
    """Save Scene, the test orbit as mp4, and one turn while animating through ComfyUI's VIDEO into Save Video."""
    save, orbit, animating, video = ids
    render = {"channel": "albedo", "views": 10, "frames": 64, "resolution": 400, "fps": 25.0}
    return Group(
        "Outputs",
        (
            Node(save, "A124_SaveScene", {"scene": [scene, 0], "filename_prefix": prefix}),
            Node(
                orbit,
                "A124_OrbitRender",
                {"scene": [scene, 0], "mode": "test orbit", **render, "save_mp4": True, "filename_prefix": prefix},
                title="Orbit Render: test orbit (mp4)",
            ),
            Node(
                animating,
                "A124_OrbitRender",
                {
                    "scene": [scene, 0],
                    "mode": "orbit while animating",
                    **render,
                    "save_mp4": False,
                    "filename_prefix": prefix,
                },
                title="Orbit Render: one turn while animating",
            ),
            Node(
                video,
                "SaveVideo",
                {"video": [animating, 2], "filename_prefix": f"animate124/videos/{prefix}_animating"},
            ),
        ),
        "#3f8a5a",
    )


def training_nodes(sd: int, zero123: int, video: int, controlnet: int, ids: tuple[int, int, int, int]) -> tuple:
    """Textual inversion, static, coarse and refine nodes wired to the given prior nodes."""
    ti, static, coarse, refine = ids
    priors = {"video_prior": [video, 0], "zero123_prior": [zero123, 0]}
    return (
        Node(
            ti,
            "A124_TextualInversion",
            {"sd_prior": [sd, 0], "reference": [2, 0], "token": "_panda_", "initializer": "panda"}
            | {"preset": "paper", "steps": 0},
        ),
        Node(
            static,
            "A124_StaticStage",
            {"reference": [2, 0], "prompt": "a high-resolution DSLR image of a panda", **STAGE}
            | {"sd_prior": [sd, 0], "zero123_prior": [zero123, 0]},
        ),
        Node(
            coarse,
            "A124_CoarseStage",
            {"static_scene": [static, 0], "reference": [2, 0], "prompt": "a panda is dancing", **STAGE, **priors},
        ),
        Node(
            refine,
            "A124_RefineStage",
            {"dynamic_scene": [coarse, 0], "reference": [2, 0], "prompt": "a panda is dancing", **STAGE}
            | {"controlnet_prior": [controlnet, 0], "embedding": [ti, 0], "token_prompt": "a {token} is dancing"}
            | priors,
        ),
    )


def pack_loaders(name: str, video_model: str, size: tuple[int, int], video_line: str) -> Workflow:
    """The whole pipeline with the pack's prior loaders (diffusers folders)."""
    sd = Node(3, "A124_LoadSD15Prior", {"model": "diffusers/stable-diffusion-v1-5", "config_dir": "none"})
    z123 = Node(4, "A124_LoadZero123Prior", {"model": "diffusers/zero123-xl"})
    video = Node(5, "A124_LoadVideoPrior", {"model": video_model, "width": size[0], "height": size[1]})
    cnet = Node(
        6,
        "A124_LoadControlNetTilePrior",
        {"controlnet": "controlnet/control_v11f1e_sd15_tile", "base": "diffusers/stable-diffusion-v1-5"},
    )
    ti, static, coarse, refine = training_nodes(3, 4, 5, 6, (7, 8, 9, 10))
    title = "Animate124: one image + a motion prompt -> a 4D scene, with the pack's prior loaders.\n\n"
    return Workflow(
        name,
        title + PACK_FOLDERS.format(video=video_line),
        (
            reference_group(),
            Group(STEP_TITLES[0], (sd, ti)),
            Group(STEP_TITLES[1], (z123, static)),
            Group(STEP_TITLES[2], (video, coarse)),
            Group(STEP_TITLES[3], (cnet, refine)),
            outputs_group(10, (11, 12, 13, 14), "animate124"),
        ),
    )


def comfy_loaders() -> Workflow:
    """SD1.5, ControlNet-Tile and Stable Zero123 as single files through ComfyUI's own loaders."""
    ckpt = Node(3, "CheckpointLoaderSimple", {"ckpt_name": SD15_CHECKPOINT.name}, models=(SD15_CHECKPOINT,))
    cnet = Node(4, "ControlNetLoader", {"control_net_name": CONTROLNET_TILE.name}, models=(CONTROLNET_TILE,))
    z123 = Node(5, "ImageOnlyCheckpointLoader", {"ckpt_name": STABLE_ZERO123.name}, models=(STABLE_ZERO123,))
    comfy = {"model": [3, 0], "clip": [3, 1], "vae": [3, 2]}
    sd_prior = Node(6, "A124_SD15PriorFromComfy", comfy | {"image_size": 512})
    cnet_prior = Node(7, "A124_ControlNetTilePriorFromComfy", {"control_net": [4, 0], **comfy, "strength": 1.0})
    z123_prior = Node(8, "A124_Zero123PriorFromComfy", {"model": [5, 0], "clip_vision": [5, 1], "vae": [5, 2]})
    video = Node(9, "A124_LoadVideoPrior", {"model": "diffusers/text-to-video-ms-1.7b", "width": 0, "height": 0})
    ti_prior = Node(
        10,
        "A124_LoadSD15Prior",
        {"model": f"checkpoints/{SD15_CHECKPOINT.name}", "config_dir": "configs/stable-diffusion-v1-5"},
    )
    ti, static, coarse, refine = training_nodes(10, 8, 9, 7, (11, 12, 13, 14))
    static = Node(static.id, static.type, static.inputs | {"sd_prior": [6, 0]})
    note = f"""\
Animate124 with ComfyUI's own loaders: SD1.5, ControlNet tile and Stable Zero123 as single files.

The loaders offer to download these when they are missing:
- checkpoints/{SD15_CHECKPOINT.name} (SD1.5)
- controlnet/{CONTROLNET_TILE.name} (ControlNet v1.1 tile)
- checkpoints/{STABLE_ZERO123.name} (Stable Zero123)
Put these folders under ComfyUI/models/ by hand (Hugging Face repository in brackets):
- configs/stable-diffusion-v1-5/ [stable-diffusion-v1-5/stable-diffusion-v1-5]: only the configs and the
  tokenizer (model_index.json, */config.json, tokenizer/, scheduler/), no weights; step 0 reads the
  checkpoint through it
- {MODELSCOPE}
Then put your image in Load Image, write the prompts, queue."""
    return Workflow(
        "animate124_comfy_loaders",
        note,
        (
            reference_group(),
            Group(STEP_TITLES[0], (ti_prior, ti)),
            Group(STEP_TITLES[1], (ckpt, sd_prior, z123, z123_prior, static)),
            Group(STEP_TITLES[2], (video, coarse)),
            Group(STEP_TITLES[3], (cnet, cnet_prior, refine)),
            outputs_group(14, (15, 16, 17, 18), "animate124_comfy"),
        ),
    )


def render_only() -> Workflow:
    scene = {"scene": [1, 0], "views": 10, "frames": 64, "resolution": 400, "fps": 25.0, "save_mp4": True}
    note = """\
Renders a dynamic scene saved by Save Scene (output/animate124/scenes/...) or a stage checkpoint, four ways.
No model files are needed: pick the scene in Load Dynamic Scene, queue."""
    return Workflow(
        "animate124_render_only",
        note,
        (
            Group(
                "Scene",
                (
                    Node(
                        1, "A124_LoadDynamicScene", {"scene_file": "output/scenes/animate124_refine_00001.safetensors"}
                    ),
                ),
            ),
            Group(
                "Outputs",
                (
                    Node(2, "A124_OrbitRender", {**scene, "mode": "test orbit", "channel": "albedo"}),
                    Node(
                        3,
                        "A124_OrbitRender",
                        {**scene, "mode": "orbit while animating", "channel": "albedo", "save_mp4": False},
                        title="Orbit Render: one turn while animating",
                    ),
                    Node(4, "A124_OrbitRender", {**scene, "mode": "fixed camera", "channel": "depth"}),
                    Node(5, "A124_OrbitRender", {**scene, "mode": "orbit grid", "channel": "albedo"}),
                    Node(
                        6, "SaveVideo", {"video": [3, 2], "filename_prefix": "animate124/videos/animate124_animating"}
                    ),
                ),
                "#3f8a5a",
            ),
        ),
    )


def animated_mesh() -> Workflow:
    """The pipeline with Dream-in-4D's deformation field, ending in an animated mesh in ComfyUI's 3D viewer."""
    full = pack_loaders("animate124_animated_mesh", "diffusers/text-to-video-ms-1.7b", (0, 0), MODELSCOPE)
    groups = [
        Group(
            g.title,
            tuple(
                Node(n.id, n.type, n.inputs | {"representation": "deformation"}) if n.type == "A124_CoarseStage" else n
                for n in g.nodes
            ),
            g.color,
        )
        for g in full.groups[:-1]
    ]
    export = {"scene": [10, 0], "frames": 64, "fps": 25.0, "resolution": 256, "target_faces": 50000}
    outputs = Group(
        "Outputs",
        (
            Node(11, "A124_ExportAnimatedMesh", export | {"filename_prefix": "animate124"}),
            Node(12, "Preview3D", {"model_file": [11, 0]}),
            Node(
                13,
                "A124_OrbitRender",
                {"scene": [10, 0], "mode": "test orbit", "channel": "albedo", "views": 10, "frames": 64}
                | {"resolution": 400, "fps": 25.0, "save_mp4": True, "filename_prefix": "animate124_mesh"},
                title="Orbit Render: test orbit (mp4)",
            ),
        ),
        "#3f8a5a",
    )
    note = full.note.replace(
        "Animate124: one image + a motion prompt -> a 4D scene, with the pack's prior loaders.",
        "Animate124 -> an animated mesh: the coarse stage uses Dream-in-4D's deformation field (the static scene, "
        "frozen, warped over time), so the result exports as ONE mesh with a morph target per frame (GLB), played "
        "by Preview 3D & Animation and usable in Blender, three.js or game engines.",
    )
    return Workflow(full.name, note, (*groups, outputs))


def animate_mesh() -> Workflow:
    """A user's own 3D model animated by a motion prompt: Animate Mesh (a file from input/3d) -> Preview 3D."""
    note = f"""\
Animate124 on your own 3D model: the SAME mesh (vertices, faces, UVs, textures, materials) comes back with one
morph target per frame, played by Preview 3D & Animation and usable in Blender, three.js or game engines.

Put the model (.glb, .gltf, .obj, .ply, .stl) in ComfyUI/input/3d/ (Load 3D's upload puts it there too) and pick
it in Animate Mesh's model_file (or wire a MESH from a 3D node into Animate Mesh instead). Write what it does in
the motion prompt ("a robot is waving its arms"), queue. No 3D canvas is needed: the workflow runs from the API.
The front of the model (+z, glTF's front) is what Zero123 sees as the reference view.
Nothing is downloaded while it runs. Put these folders under ComfyUI/models/ first:
- {MODELSCOPE}
- diffusers/zero123-xl/ [bennyguo/zero123-xl-diffusers]: frame 0 from the mesh's front render (optional)
Preset "paper" is the paper's coarse schedule, "fast" halves it, "smoke" only checks the installation."""
    animate = {"model_file": "3d/model.glb", "prompt": "a robot is waving its arms", "preset": "paper", "steps": 0}
    animate |= {"training_seed": 3407, "frames": 64, "fps": 25.0, "arap_weight": 1000.0}
    animate |= {"video_prior": [2, 0], "zero123_prior": [1, 0], "negative_prompt": "", "run_name": "animate124_mesh"}
    return Workflow(
        "animate124_animate_mesh",
        note,
        (
            Group(
                "Priors",
                (
                    Node(1, "A124_LoadZero123Prior", {"model": "diffusers/zero123-xl"}),
                    Node(
                        2, "A124_LoadVideoPrior", {"model": "diffusers/text-to-video-ms-1.7b", "width": 0, "height": 0}
                    ),
                ),
            ),
            Group("Animate your 3D model", (Node(3, "A124_AnimateMesh", animate),), "#8a5a3f"),
            Group("Outputs", (Node(4, "Preview3D", {"model_file": [3, 0]}),), "#3f8a5a"),
        ),
    )


def workflows() -> list[Workflow]:
    return [
        pack_loaders("animate124_full", "diffusers/text-to-video-ms-1.7b", (0, 0), MODELSCOPE),
        animated_mesh(),
        animate_mesh(),
        pack_loaders("animate124_zeroscope", "diffusers/zeroscope_v2_576w", (144, 80), ZEROSCOPE),
        comfy_loaders(),
        render_only(),
    ]


# ------------------------------------------------------------------------------------------------ files
def node_specs(nodes: list[type]) -> dict[str, NodeSpec]:
    """The pack's nodes (from their V3 schemas) and ComfyUI's core nodes the workflows use."""
    schemas = [(cls, cls.GET_SCHEMA()) for cls in nodes]
    return {schema.node_id: spec_from_class(cls, schema.display_name) for cls, schema in schemas} | CORE_NODES


def build(nodes: list[type]) -> dict[str, dict]:
    """{file name: JSON} for every workflow."""
    specs = node_specs(nodes)
    files = {}
    for workflow in workflows():
        files[f"{workflow.name}.json"] = ui_workflow(workflow, specs, NOTE)
        files[f"{workflow.name}_api.json"] = api_prompt(workflow, specs)
    return files


def dump(data: dict) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def _stand_in_folder_paths() -> types.ModuleType:
    """INPUT_TYPES lists model files through ComfyUI's folder_paths; an empty models folder is enough here."""
    fp = types.ModuleType("folder_paths")
    fp.models_dir = tempfile.mkdtemp(prefix="a124-workflows-")
    fp.folder_names_and_paths = {}
    fp.get_folder_paths = lambda name: list(fp.folder_names_and_paths.get(name, ([], set()))[0])
    fp.get_filename_list = lambda name: []
    fp.get_output_directory = lambda: fp.models_dir
    fp.get_input_directory = lambda: fp.models_dir
    return fp


def _import_pack() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "comfyui_animate124", REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Only compare; exit 1 when a file differs.")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("folder_paths") is None:
        sys.modules["folder_paths"] = _stand_in_folder_paths()
    if importlib.util.find_spec("comfy_api") is None:  # no ComfyUI here: the node API stand-in the tests use
        sys.path.insert(0, str(REPO / "tests" / "comfy_stand_in"))
    pack = _import_pack()
    stale = []
    for name, data in build(pack.NODES).items():
        path = WORKFLOWS / name
        text = dump(data)
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(text)
            tmp.replace(path)
    print(("differ: " if args.check else "written: ") + (", ".join(stale) or "(none)"))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
