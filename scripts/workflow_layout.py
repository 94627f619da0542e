"""Turns a compact workflow description (nodes in API form, grouped by step) into ComfyUI's two JSON formats.

The API prompt (`*_api.json`, POST /prompt) is the description with every widget the node declares filled in (a
missing one takes its INPUT_TYPES default). The UI workflow (`*.json`, the canvas) adds what the frontend needs: link
slots and widget order from INPUT_TYPES / RETURN_TYPES, one group per step laid out as a column, a Note, and the
`properties.models` list the frontend offers to download. Used by scripts/build_workflows.py; tests/nodes checks the
shipped files against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Types the frontend shows as widgets (everything else is a link slot).
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
#: Frontend geometry (LiteGraph): title bar above a node's pos, group title bar, slot row, widget row.
NODE_TITLE_HEIGHT = 30
GROUP_TITLE_HEIGHT = 40
SLOT_HEIGHT = 22
WIDGET_HEIGHT = 26
MULTILINE_HEIGHT = 90
#: Room for the image or video a node shows (LoadImage's picture, a render's preview), so it grows into no neighbour.
PREVIEW_HEIGHT = 260
NODE_WIDTH = 380
GAP = 30


@dataclass(frozen=True)
class Model:
    """One single-file model the frontend may download: `name` must equal the loader's widget value."""

    name: str
    url: str
    directory: str


@dataclass(frozen=True)
class Node:
    """A node in API form: `inputs` holds widget values and links `[node id, output slot]`."""

    id: int
    type: str
    inputs: dict[str, Any] = field(default_factory=dict)
    #: Shown instead of the display name (e.g. to tell two renders apart).
    title: str | None = None
    #: Single-file models this node loads (frontend download offer).
    models: tuple[Model, ...] = ()


@dataclass(frozen=True)
class Group:
    """One step of the pipeline: a titled box (a column on the canvas) around its nodes."""

    title: str
    nodes: tuple[Node, ...]
    color: str = "#3f789e"


@dataclass(frozen=True)
class Workflow:
    name: str
    #: Text of the Note node: what to download and where.
    note: str
    groups: tuple[Group, ...]


@dataclass(frozen=True)
class Slot:
    name: str
    type: str
    widget: bool = False
    default: Any = None
    multiline: bool = False
    #: The frontend adds a "control after generate" value after this widget.
    control: bool = False
    #: A widget only the frontend has (LoadImage's upload button): in widgets_values, never in the API prompt.
    ui_only: bool = False
    #: A widget the workflow feeds from a link (Preview 3D's model_file): an input socket that names its widget.
    linked: bool = False


@dataclass(frozen=True)
class NodeSpec:
    inputs: tuple[Slot, ...]
    outputs: tuple[tuple[str, str], ...]
    display_name: str
    #: The node shows an image or video on the canvas.
    preview: bool = False


def spec_from_class(cls: type, display_name: str) -> NodeSpec:
    """A node class (its V1 view: INPUT_TYPES, RETURN_TYPES) -> its slots, in the order the frontend creates them
    (required, then optional). Combos are V1 lists or V3 `("COMBO", {"options": [...]})`."""
    declared = cls.INPUT_TYPES()
    inputs = []
    for section in ("required", "optional"):
        for name, entry in declared.get(section, {}).items():
            kind, options = entry[0], (entry[1] if len(entry) > 1 else {})
            choices = kind if isinstance(kind, list) else options.get("options") if kind == "COMBO" else None
            # forceInput: a socket only (no widget value in the canvas)
            widget = (choices is not None or kind in WIDGET_TYPES) and not options.get("forceInput")
            default = options.get("default", choices[0] if choices else None)
            inputs.append(
                Slot(
                    name,
                    "COMBO" if choices is not None else kind,
                    widget,
                    default,
                    bool(options.get("multiline")),
                    bool(options.get("control_after_generate")),
                )
            )
    names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
    preview = bool(getattr(cls, "OUTPUT_NODE", False)) and "IMAGE" in cls.RETURN_TYPES
    return NodeSpec(tuple(inputs), tuple(zip(names, cls.RETURN_TYPES, strict=True)), display_name, preview)


def api_prompt(workflow: Workflow, specs: dict[str, NodeSpec]) -> dict[str, dict]:
    prompt = {}
    for node in sorted(_nodes(workflow), key=lambda n: n.id):
        spec = specs[node.type]
        unknown = set(node.inputs) - {s.name for s in spec.inputs}
        if unknown:
            raise ValueError(f"{workflow.name} #{node.id} {node.type}: no inputs named {sorted(unknown)}")
        inputs = {}
        for slot in spec.inputs:
            if slot.name in node.inputs:
                value = node.inputs[slot.name]
                inputs[slot.name] = [str(value[0]), value[1]] if isinstance(value, list | tuple) else value
            elif slot.widget and not slot.ui_only:
                inputs[slot.name] = slot.default
        prompt[str(node.id)] = {
            "class_type": node.type,
            "inputs": inputs,
            "_meta": {"title": node.title or spec.display_name},
        }
    return prompt


def ui_workflow(workflow: Workflow, specs: dict[str, NodeSpec], note_spec: NodeSpec) -> dict:
    """The canvas JSON: groups as columns left to right after the Note, nodes stacked in each."""
    nodes = {n.id: n for n in _nodes(workflow)}
    links, link_id = [], 0
    incoming: dict[int, dict[str, int]] = {nid: {} for nid in nodes}
    outgoing: dict[tuple[int, int], list[int]] = {}
    for nid in sorted(nodes):
        spec = specs[nodes[nid].type]
        link_slots = [s for s in spec.inputs if not s.widget or s.linked]
        for slot_index, slot in enumerate(link_slots):
            value = nodes[nid].inputs.get(slot.name)
            if isinstance(value, list | tuple):
                link_id += 1
                source, out_slot = int(value[0]), value[1]
                links.append(
                    [link_id, source, out_slot, nid, slot_index, specs[nodes[source].type].outputs[out_slot][1]]
                )
                incoming[nid][slot.name] = link_id
                outgoing.setdefault((source, out_slot), []).append(link_id)
    order = {nid: i for i, nid in enumerate(_topological(nodes))}

    out_nodes, groups = [], []
    note_id = max(nodes) + 1
    note_size = [NODE_WIDTH + 60, node_height(note_spec) + 20 * workflow.note.count("\n")]
    x = GAP
    out_nodes.append(
        {
            "id": note_id,
            "type": "Note",
            "pos": [x, GAP + GROUP_TITLE_HEIGHT + NODE_TITLE_HEIGHT],
            "size": note_size,
            "flags": {},
            "order": len(nodes),
            "mode": 0,
            "inputs": [],
            "outputs": [],
            "properties": {},
            "widgets_values": [workflow.note],
            "color": "#432",
            "bgcolor": "#653",
            "title": "Read me: models to download",
        }
    )
    x += note_size[0] + 2 * GAP
    for index, group in enumerate(workflow.groups, 1):
        width = NODE_WIDTH
        y = GAP + GROUP_TITLE_HEIGHT + GAP
        for node in group.nodes:
            spec = specs[node.type]
            height = node_height(spec)
            y += NODE_TITLE_HEIGHT
            out_nodes.append(_ui_node(node, spec, [x + GAP, y], [width, height], order[node.id], incoming, outgoing))
            y += height + GAP
        groups.append(
            {
                "id": index,
                "title": group.title,
                "bounding": [x, GAP, width + 2 * GAP, y - GAP],
                "color": group.color,
                "font_size": 24,
                "flags": {},
            }
        )
        x += width + 4 * GAP
    return {
        "last_node_id": note_id,
        "last_link_id": link_id,
        "nodes": out_nodes,
        "links": links,
        "groups": groups,
        "config": {},
        "extra": {"ds": {"scale": 0.55, "offset": [0, 0]}},
        "version": 0.4,
    }


def node_height(spec: NodeSpec) -> int:
    """At least the frontend's computeSize: one row per slot pair, one per widget, multiline text boxes."""
    rows = max(len([s for s in spec.inputs if not s.widget]), len(spec.outputs))
    widgets = [s for s in spec.inputs if s.widget]
    height = rows * SLOT_HEIGHT + sum(MULTILINE_HEIGHT if s.multiline else WIDGET_HEIGHT for s in widgets)
    height += WIDGET_HEIGHT * sum(s.control for s in widgets) + PREVIEW_HEIGHT * spec.preview
    return height + 2 * SLOT_HEIGHT


def _ui_node(node: Node, spec: NodeSpec, pos, size, order, incoming, outgoing) -> dict:
    values = []
    for slot in spec.inputs:
        if slot.widget:
            values.append(slot.default if slot.linked else node.inputs.get(slot.name, slot.default))
            if slot.control:
                values.append("fixed")
    properties: dict[str, Any] = {"Node name for S&R": node.type}
    if node.models:
        properties["models"] = [{"name": m.name, "url": m.url, "directory": m.directory} for m in node.models]
    ui = {
        "id": node.id,
        "type": node.type,
        "pos": pos,
        "size": size,
        "flags": {},
        "order": order,
        "mode": 0,
        "inputs": [
            {"name": s.name, "type": s.type, "link": incoming[node.id].get(s.name)}
            | ({"widget": {"name": s.name}} if s.linked else {})
            for s in spec.inputs
            if not s.widget or s.linked
        ],
        "outputs": [
            {"name": name, "type": kind, "links": outgoing.get((node.id, i), []), "slot_index": i}
            for i, (name, kind) in enumerate(spec.outputs)
        ],
        "properties": properties,
        "widgets_values": values,
    }
    if node.title:
        ui["title"] = node.title
    return ui


def _nodes(workflow: Workflow) -> list[Node]:
    nodes = [n for g in workflow.groups for n in g.nodes]
    ids = [n.id for n in nodes]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{workflow.name}: node ids repeat: {sorted(ids)}")
    return nodes


def _topological(nodes: dict[int, Node]) -> list[int]:
    done: list[int] = []

    def visit(nid: int) -> None:
        if nid in done:
            return
        for value in nodes[nid].inputs.values():
            if isinstance(value, list | tuple):
                visit(int(value[0]))
        done.append(nid)

    for nid in sorted(nodes):
        visit(nid)
    return done
