"""The library reads top-down: no import circle, no import from a lower layer to a higher one, short functions.

Layers of `a124_core` (a module may import its own layer and any lower one, never a higher one; circles inside a
layer are caught by the circle check):
 1. base: cameras (and MVDream's multiview_cameras), rays, checkpoint, config_io, compat, devices, interrupts,
    weight_files, prompts, console, run_record
 2. fields, geometry (mesh topology, ARAP energy), gltf (the GLB writer, accessors, morph targets)
 3. rendering, priors, reference
 4. guidance (prior scores), outputs (renders, meshes, videos, metrics)
 5. training (inside it: view/losses/time sampling < terms < representations < config < scene < stage < the static
    and coarse stages and the runner < the refine stage)
 6. meshes (a user's mesh: fit, animate), textual_inversion (trained by the training runner)
 7. presets
 8. pipeline (the whole CLI job)
 9. cli, animate_mesh_cli, textual_inversion_cli, __main__
Every import counts, also one inside a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "a124_core"

LAYERS = [
    {
        "cameras",
        "multiview_cameras",
        "rays",
        "checkpoint",
        "config_io",
        "compat",
        "devices",
        "interrupts",
        "weight_files",
        "prompts",
        "console",
        "run_record",
    },
    {"fields", "geometry", "gltf"},
    {"rendering", "priors", "reference"},
    {"guidance", "outputs"},
    {"training"},
    {"meshes", "textual_inversion"},
    {"presets"},
    {"pipeline"},
    {"cli", "animate_mesh_cli", "textual_inversion_cli", "__main__"},
]
TRAINING_LAYERS = [
    {"view", "losses", "time_sampling"},
    {"terms"},
    {"representations"},
    {"config"},
    {"scene"},
    {"stage"},
    {"video_clip", "static_stage", "coarse_stage", "runner"},
    {"refine_stage"},
]
MAX_FUNCTION_LINES = 100


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_imports() -> dict[str, set[str]]:
    """Module -> the library modules it imports (relative imports resolved; `from pkg import name` counts as an
    import of pkg.name when that is a module)."""
    modules = {module_name(p): p for p in LIBRARY.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            else:
                continue
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def layer_of(module: str, layers: list[set[str]], depth: int) -> int:
    unit = module.split(".")[depth]
    found = [i for i, layer in enumerate(layers) if unit in layer]
    assert found, f"{module}: unit {unit!r} is in no layer of tests/test_layers.py; add it where it belongs"
    return found[0]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in edges.items():
        if source == "a124_core":
            continue
        for target in targets - {"a124_core"}:  # `from . import x` also names the package, whose face is empty
            s, t = layer_of(source, LAYERS, 1), layer_of(target, LAYERS, 1)
            if s < t:
                bad.append(f"{source} (layer {s + 1}) -> {target} (layer {t + 1})")
            parts = [m.split(".") for m in (source, target)]
            if all(len(p) > 2 and p[1] == "training" for p in parts):
                s, t = layer_of(source, TRAINING_LAYERS, 2), layer_of(target, TRAINING_LAYERS, 2)
                if s < t:
                    bad.append(f"{source} (training layer {s + 1}) -> {target} (training layer {t + 1})")
    return sorted(bad)


def test_no_import_circle():
    assert cycles(library_imports()) == []


def test_no_import_from_a_lower_layer_to_a_higher_one():
    assert upward_imports(library_imports()) == []


def test_the_checks_catch_a_circle_and_an_upward_import():
    edges = library_imports()
    edges["a124_core.fields.static"] = edges["a124_core.fields.static"] | {"a124_core.training.scene"}
    assert "a124_core.fields.static (layer 2) -> a124_core.training.scene (layer 5)" in upward_imports(edges)
    assert any("a124_core.fields.static" in c for c in cycles(edges))
    edges = library_imports()
    edges["a124_core.training.terms.base"] = edges["a124_core.training.terms.base"] | {"a124_core.training.stage"}
    assert any("training layer" in line for line in upward_imports(edges))


def test_no_function_over_100_lines():
    long = []
    for path in sorted(LIBRARY.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}: {node.name} ({lines} lines)")
    assert long == []
