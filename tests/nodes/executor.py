"""A test-only executor for API-format workflows: ComfyUI's validation rules, then nodes in topological order.

Validation mirrors ComfyUI 0.8.0 (`execution.validate_inputs`): every input name must be declared in INPUT_TYPES and
every required one present; a link's upstream RETURN_TYPES entry must overlap the input's type (comma-separated
unions); widget values must have the declared type, lie within min/max and be in the combo list (V1 `[options]`, V3
`("COMBO", {"options": ...})`), except inputs that the node's validate function (V3 `validate_inputs`, V1
`VALIDATE_INPUTS`) takes itself, which is then called with the inputs present (linked ones as None, as in ComfyUI).
V3 nodes run through `EXECUTE_NORMALIZED` (a NodeOutput), V1 nodes through FUNCTION.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from build_workflows import CORE_NODES  # noqa: E402

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
#: Canvas-only nodes the frontend leaves out of the prompt it queues.
VIRTUAL_NODES = ("Note", "MarkdownNote")


class ValidationError(ValueError):
    """Raised with every problem found, each naming the node id, class and input."""


def load_image_stand_in(input_dir: Path) -> type:
    """ComfyUI's LoadImage: IMAGE [1, H, W, 3] and MASK = 1 - alpha (64 x 64 zeros without alpha)."""

    class LoadImage:
        RETURN_TYPES = ("IMAGE", "MASK")
        FUNCTION = "load_image"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"image": (sorted(p.name for p in input_dir.iterdir()), {"image_upload": True})}}

        def load_image(self, image):
            img = ImageOps.exif_transpose(Image.open(input_dir / image))
            rgb = torch.from_numpy(np.asarray(img.convert("RGB")).astype(np.float32) / 255.0)[None]
            if "A" in img.getbands():
                alpha = torch.from_numpy(np.asarray(img.getchannel("A")).astype(np.float32) / 255.0)
                mask = 1.0 - alpha
            else:
                mask = torch.zeros((64, 64), dtype=torch.float32)
            return (rgb, mask[None])

    return LoadImage


def save_video_stand_in(output_dir: Path) -> type:
    """ComfyUI's SaveVideo (V3, 0.3.64): takes a VIDEO, writes <output>/<prefix>_<n>_.mp4 from its components."""

    class SaveVideo:
        RETURN_TYPES = ()
        FUNCTION = "save"
        OUTPUT_NODE = True

        @classmethod
        def INPUT_TYPES(cls):
            return {
                "required": {
                    "video": ("VIDEO",),
                    "filename_prefix": ("STRING", {"default": "video/ComfyUI"}),
                    "format": (["auto", "mp4"],),
                    "codec": (["auto", "h264"],),
                }
            }

        def save(self, video, filename_prefix, format, codec):
            from a124_core.outputs.export import write_video

            components = video.get_components()
            path = output_dir / f"{filename_prefix}_00001_.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(components.images, path, fps=float(components.frame_rate))
            return {"ui": {"images": [{"filename": path.name}], "animated": (True,)}, "result": ()}

    return SaveVideo


def preview_3d_stand_in(output_dir: Path) -> type:
    """ComfyUI 0.8.0's Preview3D ("Preview 3D & Animation", V3): model_file relative to the output folder, shown."""
    from comfy_api.v0_0_2 import io, ui

    class Preview3D(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(
                node_id="Preview3D",
                display_name="Preview 3D & Animation",
                category="3d",
                is_output_node=True,
                inputs=[
                    io.String.Input("model_file", default="", multiline=False),
                    io.Load3DCamera.Input("camera_info", optional=True),
                    io.Image.Input("bg_image", optional=True),
                ],
            )

        @classmethod
        def execute(cls, model_file, **kwargs):
            assert (output_dir / model_file).is_file(), f"Preview 3D got {model_file!r}: no such file in the output"
            return io.NodeOutput(ui=ui.PreviewUI3D(model_file, kwargs.get("camera_info")))

    return Preview3D


def is_v3(cls: type) -> bool:
    return hasattr(cls, "define_schema")


def combo_options(kind: Any, options: dict) -> list | None:
    """The choices of a combo input (V1: the type is the list; V3: "COMBO" with `options`), None for other types."""
    if isinstance(kind, list):
        return kind
    return list(options.get("options", [])) if kind == "COMBO" else None


def validate_function(cls: type) -> Callable | None:
    if is_v3(cls):
        from comfy_api.v0_0_2.io import first_real_override

        return first_real_override(cls, "validate_inputs")
    return getattr(cls, "VALIDATE_INPUTS", None)


def types_overlap(received: str, expected: str) -> bool:
    return bool({t.strip() for t in received.split(",")} & {t.strip() for t in expected.split(",")})


def _declared(cls: type) -> tuple[dict[str, tuple], set[str]]:
    spec = cls.INPUT_TYPES()
    inputs = {**spec.get("required", {}), **spec.get("optional", {})}
    return inputs, set(spec.get("required", {}))


def validate(prompt: dict[str, dict], mappings: dict[str, type]) -> None:
    errors: list[str] = []
    for nid, entry in prompt.items():
        cls = mappings.get(entry["class_type"])
        if cls is None:
            errors.append(f"#{nid}: node {entry['class_type']} does not exist")
            continue
        declared, required = _declared(cls)
        validate_fn = validate_function(cls)
        own = set(inspect.signature(validate_fn).parameters) if validate_fn else set()
        where = f"#{nid} {entry['class_type']}"
        for name in required - set(entry["inputs"]):
            errors.append(f"{where}: required input {name} missing")
        widget_values = {}
        for name, value in entry["inputs"].items():
            if name not in declared:
                errors.append(f"{where}: unknown input {name}")
                continue
            kind, options = declared[name][0], (declared[name][1] if len(declared[name]) > 1 else {})
            if isinstance(value, list):
                upstream = prompt.get(value[0])
                if upstream is None or upstream["class_type"] not in mappings:
                    errors.append(f"{where}: {name} links to a missing node {value[0]}")
                    continue
                received = mappings[upstream["class_type"]].RETURN_TYPES[value[1]]
                if combo_options(kind, options) is not None or not types_overlap(received, kind):
                    errors.append(f"{where}: {name} received {received}, expected {kind}")
                continue
            widget_values[name] = value
            choices = combo_options(kind, options)
            if choices is not None:
                if name not in own and value not in choices:
                    errors.append(f"{where}: {name}={value!r} not in {choices}")
                continue
            if kind not in WIDGET_TYPES:
                errors.append(f"{where}: {name} of type {kind} must be linked, got the value {value!r}")
                continue
            python = {"INT": int, "FLOAT": (int, float), "STRING": str, "BOOLEAN": bool}[kind]
            if not isinstance(value, python) or (kind in ("INT", "FLOAT") and isinstance(value, bool)):
                errors.append(f"{where}: {name}={value!r} is not a {kind}")
                continue
            too_low = "min" in options and value < options["min"]
            if (
                name not in own
                and kind in ("INT", "FLOAT")
                and (too_low or "max" in options and value > options["max"])
            ):
                errors.append(f"{where}: {name}={value} outside [{options.get('min')}, {options.get('max')}]")
        if validate_fn is not None:
            args = {k: widget_values.get(k) for k in own if k in entry["inputs"]}  # linked: None
            result = validate_fn(**args)
            if result is not True:
                errors.append(f"{where}: {result}")
    if errors:
        raise ValidationError("; ".join(errors))


def topological_order(prompt: dict[str, dict]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(nid: str) -> None:
        if state.get(nid) == 2:
            return
        if state.get(nid) == 1:
            raise ValidationError(f"cycle through node {nid}")
        state[nid] = 1
        for value in prompt[nid]["inputs"].values():
            if isinstance(value, list):
                visit(value[0])
        state[nid] = 2
        order.append(nid)

    for nid in sorted(prompt, key=int):
        visit(nid)
    return order


def run(prompt: dict[str, dict], mappings: dict[str, type], on_node: Callable[[str, Any], None] | None = None) -> dict:
    """Validate, then execute every node (under inference mode, as ComfyUI does); returns {node id: outputs}."""
    validate(prompt, mappings)
    outputs: dict[str, tuple] = {}
    for nid in topological_order(prompt):
        entry = prompt[nid]
        cls = mappings[entry["class_type"]]
        kwargs = {k: (outputs[v[0]][v[1]] if isinstance(v, list) else v) for k, v in entry["inputs"].items()}
        with torch.inference_mode():
            if is_v3(cls):
                result = cls.EXECUTE_NORMALIZED(**kwargs)
            else:
                result = getattr(cls(), cls.FUNCTION)(**kwargs)
        if is_v3(cls):
            outputs[nid] = tuple(result.args)
        else:
            outputs[nid] = tuple(result["result"]) if isinstance(result, dict) else tuple(result)
        assert len(outputs[nid]) == len(cls.RETURN_TYPES), f"#{nid} returned {len(outputs[nid])} values"
        if on_node is not None:
            on_node(nid, outputs[nid])
    return outputs


def frontend_widgets_after(node_type: str, name: str) -> int:
    """How many widgets only the frontend has (`Slot.ui_only` in scripts/build_workflows.py: Load 3D's buttons and
    canvas, LoadImage's upload) follow widget `name` in widgets_values; the API twin leaves them out."""
    spec = CORE_NODES.get(node_type)
    names = [slot.name for slot in spec.inputs] if spec else []
    if name not in names:
        return 0
    following = spec.inputs[names.index(name) + 1 :]
    return next((i for i, slot in enumerate(following) if not slot.ui_only), len(following))


def ui_to_api(ui: dict, mappings: dict[str, type]) -> dict[str, dict]:
    """The API prompt a UI workflow describes: links from `links`, widget values by INPUT_TYPES widget order."""
    links = {link[0]: link for link in ui["links"]}
    prompt: dict[str, dict] = {}
    for node in ui["nodes"]:
        if node["type"] in VIRTUAL_NODES:
            continue
        cls = mappings[node["type"]]
        declared, _ = _declared(cls)
        inputs: dict[str, Any] = {}
        linked = {i["name"]: links[i["link"]] for i in node.get("inputs", []) if i.get("link") is not None}
        values = list(node.get("widgets_values", []))
        for name, spec in declared.items():
            kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
            is_widget = (combo_options(kind, options) is not None or kind in WIDGET_TYPES) and not options.get(
                "forceInput"
            )
            if is_widget and values:
                value = values.pop(0)
                if name not in linked:
                    inputs[name] = value
                if options.get("control_after_generate"):
                    values.pop(0)
                del values[: frontend_widgets_after(node["type"], name)]
            if name in linked:
                link = linked[name]
                inputs[name] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
