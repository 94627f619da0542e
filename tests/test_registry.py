"""Registry readiness: what `comfy node publish` would upload (git-tracked files minus .comfyignore, plus `includes`),
the pyproject fields the registry reads, and the registry's security standards on every published Python file
(docs.comfy.org/registry/standards: no eval/exec, no runtime package installation through subprocess)."""

from __future__ import annotations

import ast
import re
import subprocess
import warnings

import pathspec
import pytest
import tomllib

from tests.paths import REPO

#: Imports and calls that install packages or start processes at run time (the registry forbids runtime installs;
#: the pack needs no process of its own, so none is allowed).
FORBIDDEN_IMPORTS = {"subprocess", "pip", "ensurepip", "pty"}
FORBIDDEN_CALLS = {"eval", "exec", "__import__", "os.system", "os.popen", "os.startfile"}
FORBIDDEN_CALL_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn", "pip.", "subprocess.")


def published_files() -> list[str]:
    """The archive `comfy node publish` builds (comfy-cli's zip_files): git-tracked files (here also new files not
    yet committed and not git-ignored) minus .comfyignore, plus `includes`."""
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
    )
    assert tracked.returncode == 0 and tracked.stdout, f"needs a git checkout: {tracked.stderr}"
    patterns = [line.strip() for line in (REPO / ".comfyignore").read_text().splitlines()]
    with warnings.catch_warnings():  # comfy-cli's pattern style, deprecated in pathspec 1.x under this name
        warnings.simplefilter("ignore", DeprecationWarning)
        ignore = pathspec.PathSpec.from_lines("gitwildmatch", [p for p in patterns if p and not p.startswith("#")])
    includes = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["comfy"]["includes"]
    files = [f for f in tracked.stdout.splitlines() if not ignore.match_file(f) and (REPO / f).exists()]
    for folder in includes:
        files += [p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*") if p.is_file()]
    return sorted(set(files))


def registry_violations(source: str) -> list[str]:
    """Lines of `source` that break the registry's security standards."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{node.lineno}: import {n}" for n in names if n.split(".")[0] in FORBIDDEN_IMPORTS]
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name in FORBIDDEN_CALLS or name.startswith(FORBIDDEN_CALL_PREFIXES):
                found.append(f"{node.lineno}: {name}()")
    return found


def test_published_files_leave_out_tests_benchmarks_and_ci():
    files = published_files()
    assert not [f for f in files if f.startswith(("tests/", "benchmarks/", ".ci/"))]
    for needed in ("__init__.py", "pyproject.toml", "requirements.txt", "README.md", "docs/icon.svg"):
        assert needed in files
    assert any(f.startswith("a124_core/") for f in files) and any(f.startswith("nodes/") for f in files)
    assert sum(f.startswith("workflows/") for f in files) >= 8


def test_published_python_follows_the_registry_security_standards():
    files = [f for f in published_files() if f.endswith(".py")]
    assert len(files) > 40
    offenders = {f: v for f in files if (v := registry_violations((REPO / f).read_text()))}
    assert not offenders, offenders


@pytest.mark.parametrize(
    "source",
    [
        "import subprocess\nsubprocess.check_call(['pip', 'install', 'x'])",
        "import os\nos.system('pip install x')",
        "from pip._internal import main",
        "eval(user_input)",
        "exec(compile(src, 'f', 'exec'))",
        "import os\nos.execv('/usr/bin/python', ['-m', 'pip'])",
    ],
)
def test_the_security_scan_finds_each_forbidden_pattern(source):
    assert registry_violations(source)


def test_pyproject_is_what_the_registry_reads():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    project, comfy = meta["project"], meta["tool"]["comfy"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", project["name"]) and len(project["name"]) < 100
    assert "text" in project["license"] or "file" in project["license"]
    # comfy-cli keeps OS / accelerator classifiers only when all of them are of its known forms.
    classifiers = project["classifiers"]
    assert all(
        c[len("Operating System :: ") :].startswith(("Microsoft", "POSIX", "MacOS", "OS Independent"))
        for c in classifiers
        if c.startswith("Operating System :: ")
    )
    accelerators = {
        "GPU :: NVIDIA CUDA",
        "GPU :: AMD ROCm",
        "GPU :: Intel Arc",
        "NPU :: Huawei Ascend",
        "GPU :: Apple Metal",
    }
    assert all(c[len("Environment :: ") :] in accelerators for c in classifiers if c.startswith("Environment ::"))
    # No invented addresses: every URL the file names must be one the README tells the publisher to fill in.
    assert not re.findall(r"https?://", (REPO / "pyproject.toml").read_text())
    assert {"PublisherId", "DisplayName", "Icon", "includes"} <= set(comfy)
    # The ComfyUI versions the pack supports (comfy_config reads `requires-comfyui`): from 0.3.64, the oldest that
    # ships the pinned node API comfy_api.v0_0_2 and that CI loads the nodes on.
    assert comfy["requires-comfyui"] == ">=0.3.64"
    readme = (REPO / "README.md").read_text()
    assert all(field in readme for field in ("PublisherId", "Icon", "Repository", "docs/icon.svg"))
    assert (REPO / "docs" / "icon.svg").read_text().lstrip().startswith("<svg")
