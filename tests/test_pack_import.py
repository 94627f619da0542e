"""The pack imports the way ComfyUI imports it (a package named after its folder path, from ComfyUI's folder) without
touching sys.path, and with a runtime dependency missing it logs one line and still registers every node. ComfyUI's
node API (`comfy_api`) is the only part of ComfyUI it needs at import: here the stand-in in tests/comfy_stand_in."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import tomllib

from tests.paths import REPO

#: Runs in a fresh interpreter: blocks the given top-level modules, imports the pack as ComfyUI's
#: nodes.load_custom_node does, and prints what changed as JSON.
PROBE = """
import importlib.util, json, logging, os, sys
blocked = set(sys.argv[2].split(",")) - {""}

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)

sys.meta_path.insert(0, Block())
sys.path.insert(0, sys.argv[3])  # ComfyUI's folder, where comfy_api lives
records = []
handler = logging.Handler()
handler.emit = lambda record: records.append(record.getMessage())
logging.getLogger().addHandler(handler)
before = list(sys.path)
pack = sys.argv[1]
name = pack.replace(".", "_x_")
spec = importlib.util.spec_from_file_location(name, os.path.join(pack, "__init__.py"))
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
print(json.dumps({
    "path_unchanged": sys.path == before,
    "nodes": sorted(cls.__name__ for cls in module.NODES),  # each class is named by its node id
    "log": records,
    "top_level": sorted(m for m in ("nodes", "tests", "scripts", "benchmarks") if m in sys.modules),
    "library": sys.modules["a124_core"].__file__,
}))
"""


def probe(blocked: tuple[str, ...] = ()) -> dict:
    run = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(REPO), ",".join(blocked), str(REPO / "tests" / "comfy_stand_in")],
        cwd=REPO.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def test_import_leaves_sys_path_alone_and_hides_the_pack_folders():
    out = probe()
    assert out["path_unchanged"], "the pack changed sys.path"
    assert out["top_level"] == [], f"pack folders became top-level modules: {out['top_level']}"
    assert out["library"] == str(REPO / "a124_core" / "__init__.py")
    assert len(out["nodes"]) >= 20 and all(n.startswith("A124_") for n in out["nodes"])
    assert not [line for line in out["log"] if "Animate124" in line], out["log"]


def test_missing_dependency_logs_one_line_and_nodes_still_register():
    complete = probe()["nodes"]
    out = probe(blocked=("diffusers",))
    assert out["nodes"] == complete
    lines = [line for line in out["log"] if "Animate124" in line]
    assert len(lines) == 1, out["log"]
    assert "missing Python package diffusers;" in lines[0] and "-m pip install diffusers" in lines[0], lines[0]
    assert out["path_unchanged"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_dependency_list_matches_requirements():
    """The import-time check covers exactly the runtime requirements (names, not versions)."""
    tree = ast.parse((REPO / "__init__.py").read_text())
    (checked,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.AnnAssign | ast.Assign)
        and "RUNTIME_DEPENDENCIES" in ast.unparse(node.targets[0] if isinstance(node, ast.Assign) else node.target)
    ]
    listed = {_name(line.split("#")[0]) for line in (REPO / "requirements.txt").read_text().splitlines()} - {""}
    project = {_name(d) for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert set(checked.values()) == listed == project
