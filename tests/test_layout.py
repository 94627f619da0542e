"""House rules that keep the pack installable and the library usable without ComfyUI."""

import ast
import importlib.util
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
COMFY_MODULES = {"comfy", "comfy_extras", "folder_paths", "server", "execution", "nodes"}


def python_files(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


def test_library_never_imports_comfyui():
    offenders = []
    for path in python_files("a124_core"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in COMFY_MODULES]
    assert not offenders, offenders


def test_no_unsafe_loading_or_eval():
    pattern = re.compile(r"pickle\.loads?\(|(?<![.\w])eval\(|(?<![.\w])exec\(|torch\.load\(")
    offenders = []
    for folder in ("a124_core", "nodes", "benchmarks", "scripts"):
        for path in python_files(folder):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and "weights_only=True" not in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, offenders


def test_pack_imports_without_comfyui_and_exports_its_v3_nodes():
    """Only ComfyUI's node API (`comfy_api`, here tests/comfy_stand_in's stand-in) is needed to import the pack."""
    assert "comfy" not in sys.modules
    spec = importlib.util.spec_from_file_location(
        "comfyui_animate124_layout", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert module.NODES and all(hasattr(cls, "define_schema") for cls in module.NODES)
        assert callable(module.comfy_entrypoint)
    finally:
        sys.modules.pop(spec.name, None)
    assert "comfy" not in sys.modules


def test_pyproject_has_registry_metadata_and_ci_runs_the_readme_command():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "comfyui-animate124"
    assert {"PublisherId", "DisplayName"} <= set(meta["tool"]["comfy"])
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash .ci/run" in readme and "python -m pytest" in ci
    assert "torch" not in (ROOT / "requirements.txt").read_text().split("#")[0].split()
