"""Stand-in of `comfy_api.v0_0_2.io`: the V3 node schema and how ComfyUI derives a node's V1 view from it.

`INPUT_TYPES()` is `{"required": {...}, "optional": {...}, "hidden": {...}}` with `(io_type, options)` per input, the
options being the input's non-None settings (a combo is `("COMBO", {"options": [...], ...})`); `RETURN_TYPES`,
`RETURN_NAMES` and `OUTPUT_TOOLTIPS` come from the outputs; an output node gets the hidden `prompt` and
`extra_pnginfo` inputs; `FUNCTION` is `EXECUTE_NORMALIZED`, which wraps `execute`'s result in a NodeOutput.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


def _pruned(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


class classproperty:  # noqa: N801  (ComfyUI's spelling)
    def __init__(self, fget):
        self.fget = fget

    def __get__(self, obj, owner):
        return self.fget(owner)


class FolderType(str, Enum):
    input = "input"
    output = "output"
    temp = "temp"


class UploadType(str, Enum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"
    model = "file_upload"


class Hidden(str, Enum):
    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"


class Input:
    """A link slot (or, for widget types, a widget) of a node."""

    Parent: Any = None

    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, extra_dict=None, **_):
        self.id, self.display_name, self.optional, self.tooltip, self.lazy = id, display_name, optional, tooltip, lazy
        self.extra_dict = extra_dict or {}

    @property
    def io_type(self) -> str:
        return self.Parent.io_type

    def get_io_type(self) -> str:
        return self.io_type

    def as_dict(self) -> dict:
        fields = {"display_name": self.display_name, "optional": self.optional, "tooltip": self.tooltip}
        return _pruned(fields | {"lazy": self.lazy}) | _pruned(self.extra_dict)


class WidgetInput(Input):
    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, default=None, socketless=None,
                 widget_type=None, force_input=None, extra_dict=None, **_):  # fmt: skip
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict)
        self.default, self.socketless, self.widget_type, self.force_input = (
            default,
            socketless,
            widget_type,
            force_input,
        )

    def as_dict(self) -> dict:
        own = {"default": self.default, "socketless": self.socketless, "widgetType": self.widget_type}
        return super().as_dict() | _pruned(own | {"forceInput": self.force_input})

    def get_io_type(self) -> str:
        return self.widget_type if self.widget_type is not None else self.io_type


class Output:
    Parent: Any = None

    def __init__(self, id=None, display_name=None, tooltip=None, is_output_list=False):
        self.id, self.display_name = id, display_name if display_name else id
        self.tooltip, self.is_output_list = tooltip, is_output_list

    @property
    def io_type(self) -> str:
        return self.Parent.io_type


def _type(io_type: str, input_class: type = Input, name: str | None = None) -> type:
    """A ComfyType: `io_type` plus its Input and Output classes."""
    ns = {"io_type": io_type, "Type": Any}
    kind = type(name or io_type.title(), (), ns)
    kind.Input = type("Input", (input_class,), {"Parent": kind})
    kind.Output = type("Output", (Output,), {"Parent": kind})
    return kind


def Custom(io_type: str) -> type:  # noqa: N802  (ComfyUI's spelling)
    """A ComfyType for a custom node pack's own wire type."""
    return _type(io_type)


class _Number(WidgetInput):
    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, default=None, min=None,
                 max=None, step=None, control_after_generate=None, display_mode=None, round=None, socketless=None,
                 force_input=None, extra_dict=None, **_):  # fmt: skip
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input, extra_dict)
        self.min, self.max, self.step, self.round = min, max, step, round
        self.control_after_generate, self.display_mode = control_after_generate, display_mode

    def as_dict(self) -> dict:
        display = self.display_mode.value if isinstance(self.display_mode, Enum) else self.display_mode
        own = {"min": self.min, "max": self.max, "step": self.step}
        extra = {"control_after_generate": self.control_after_generate, "display": display}
        if self.io_type == "FLOAT":
            extra = {"round": self.round, "display": display}
        return super().as_dict() | _pruned(own | extra)


class _String(WidgetInput):
    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, multiline=False,
                 placeholder=None, default=None, dynamic_prompts=None, socketless=None, force_input=None,
                 extra_dict=None, **_):  # fmt: skip
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input, extra_dict)
        self.multiline, self.placeholder, self.dynamic_prompts = multiline, placeholder, dynamic_prompts

    def as_dict(self) -> dict:
        own = {"multiline": self.multiline, "placeholder": self.placeholder, "dynamicPrompts": self.dynamic_prompts}
        return super().as_dict() | _pruned(own)


class _Boolean(WidgetInput):
    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, default=None, label_on=None,
                 label_off=None, socketless=None, force_input=None, extra_dict=None, **_):  # fmt: skip
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input, extra_dict)
        self.label_on, self.label_off = label_on, label_off

    def as_dict(self) -> dict:
        return super().as_dict() | _pruned({"label_on": self.label_on, "label_off": self.label_off})


class _Combo(WidgetInput):
    def __init__(self, id, options=None, display_name=None, optional=False, tooltip=None, lazy=None, default=None,
                 control_after_generate=None, upload=None, image_folder=None, remote=None, socketless=None,
                 extra_dict=None, **_):  # fmt: skip
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, None, extra_dict)
        self.options, self.control_after_generate, self.upload = options, control_after_generate, upload
        self.image_folder = image_folder

    def as_dict(self) -> dict:
        own = {"multiselect": False, "options": self.options, "control_after_generate": self.control_after_generate}
        upload = {self.upload.value: True} if self.upload is not None else {}
        folder = {"image_folder": self.image_folder.value if self.image_folder else None}
        return super().as_dict() | _pruned(own | upload | folder)


Int = _type("INT", _Number, "Int")
Float = _type("FLOAT", _Number, "Float")
String = _type("STRING", _String, "String")
Boolean = _type("BOOLEAN", _Boolean, "Boolean")
Combo = _type("COMBO", _Combo, "Combo")
Image = _type("IMAGE", name="Image")
Mask = _type("MASK", name="Mask")
Video = _type("VIDEO", name="Video")
Mesh = _type("MESH", name="Mesh")
Model = _type("MODEL", name="Model")
Clip = _type("CLIP", name="Clip")
Vae = _type("VAE", name="Vae")
ClipVision = _type("CLIP_VISION", name="ClipVision")
ControlNet = _type("CONTROL_NET", name="ControlNet")
Load3D = _type("LOAD_3D", name="Load3D")
Load3DCamera = _type("LOAD3D_CAMERA", name="Load3DCamera")


class MultiType:
    """An input accepting several types: its io_type is their comma-separated union."""

    io_type = "COMFY_MULTITYPED_V3"

    class Input(Input):
        def __init__(self, id, types, display_name=None, optional=False, tooltip=None, lazy=None, extra_dict=None):
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict)
            self.types = types

        def get_io_type(self) -> str:
            return ",".join(dict.fromkeys(t.io_type for t in self.types))


@dataclass
class Schema:
    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    hidden: list = field(default_factory=list)
    description: str = ""
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False

    def finalize(self) -> None:
        if self.is_output_node:
            self.hidden = list(self.hidden) + [
                h for h in (Hidden.prompt, Hidden.extra_pnginfo) if h not in self.hidden
            ]
        for i, output in enumerate(self.outputs):
            if output.id is None:
                output.id = f"_{i}_{output.io_type}_"

    def validate(self) -> None:
        for what, ids in (("Input", [i.id for i in self.inputs]), ("Output", [o.id for o in self.outputs])):
            if len(set(ids)) != len(ids):
                raise ValueError(f"{what} ids must be unique: {ids}")

    def v1_inputs(self) -> dict:
        inputs: dict[str, dict] = {"required": {}}
        for i in self.inputs:
            options = i.as_dict()
            options.pop("optional", None)
            inputs.setdefault("optional" if i.optional else "required", {})[i.id] = (i.get_io_type(), options)
        for h in self.hidden:
            inputs.setdefault("hidden", {})[h.name] = (h.value,)
        return inputs


class NodeOutput:
    def __init__(self, *args: Any, ui: Any = None, expand: dict | None = None, block_execution: str | None = None):
        self.args, self.ui, self.expand, self.block_execution = args, ui, expand, block_execution

    @property
    def result(self):
        return self.args if self.args else None

    def __getitem__(self, index):
        return self.args[index]


def first_real_override(cls: type, name: str):
    """`cls.name` when a subclass of ComfyNode defines it, else None (ComfyUI's first_real_override)."""
    base = getattr(ComfyNode, name).__func__
    for c in cls.mro():
        if c is ComfyNode:
            return None
        if name in c.__dict__ and getattr(c, name).__func__ is not base:
            return getattr(cls, name)
    return None


class ComfyNode:
    """Base of V3 nodes: classmethods `define_schema`, `execute` and optionally `validate_inputs`."""

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs) -> NodeOutput:
        raise NotImplementedError

    @classmethod
    def validate_inputs(cls, **kwargs) -> bool | str:
        raise NotImplementedError

    @classmethod
    def fingerprint_inputs(cls, **kwargs) -> Any:
        raise NotImplementedError

    @classmethod
    def GET_SCHEMA(cls) -> Schema:  # noqa: N802
        for name in ("define_schema", "execute"):
            if first_real_override(cls, name) is None:
                raise Exception(f"No {name} function was defined for node class {cls.__name__}.")
        schema = cls.define_schema()
        schema.finalize()
        schema.validate()
        return schema

    @classmethod
    def INPUT_TYPES(cls) -> dict:  # noqa: N802
        return cls.GET_SCHEMA().v1_inputs()

    FUNCTION = "EXECUTE_NORMALIZED"
    RETURN_TYPES = classproperty(lambda cls: [o.io_type for o in cls.GET_SCHEMA().outputs])
    RETURN_NAMES = classproperty(lambda cls: [o.display_name or o.io_type for o in cls.GET_SCHEMA().outputs])
    OUTPUT_TOOLTIPS = classproperty(lambda cls: [o.tooltip for o in cls.GET_SCHEMA().outputs])
    OUTPUT_IS_LIST = classproperty(lambda cls: [o.is_output_list for o in cls.GET_SCHEMA().outputs])
    OUTPUT_NODE = classproperty(lambda cls: cls.GET_SCHEMA().is_output_node)
    DESCRIPTION = classproperty(lambda cls: cls.GET_SCHEMA().description)
    CATEGORY = classproperty(lambda cls: cls.GET_SCHEMA().category)
    EXPERIMENTAL = classproperty(lambda cls: cls.GET_SCHEMA().is_experimental)

    @classmethod
    def EXECUTE_NORMALIZED(cls, *args, **kwargs) -> NodeOutput:  # noqa: N802
        out = cls.execute(*args, **kwargs)
        if out is None:
            return NodeOutput()
        if isinstance(out, tuple):
            return NodeOutput(*out)
        if not isinstance(out, NodeOutput):
            raise Exception(f"Invalid return type from node: {type(out)}")
        return out
