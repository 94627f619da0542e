"""The declared library ranges stay true: CI's floor venv pins exactly the lowest versions requirements.txt
allows, and pyproject.toml declares the same ranges (issue 16)."""

from __future__ import annotations

import re

import tomllib
from packaging.version import Version

from tests.paths import REPO

_REQUIREMENT = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(==|>=)\s*([0-9][0-9A-Za-z.]*)$")


def _pins(name: str) -> dict[str, tuple[str, Version]]:
    """{package: (operator, version)} of a requirements file (comments and unpinned tools skipped)."""
    out = {}
    for line in (REPO / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if match := _REQUIREMENT.match(line):
            out[match.group(1).lower()] = (match.group(2), Version(match.group(3)))
    return out


def test_floor_file_pins_every_runtime_floor():
    runtime = _pins("requirements.txt")
    floor = _pins("requirements-floor.txt")
    assert runtime and all(op == ">=" for op, _ in runtime.values())
    assert {name: version for name, (_, version) in runtime.items()} == {
        name: version for name, (op, version) in floor.items() if op == "=="
    }


def test_pyproject_declares_the_same_ranges():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    runtime = _pins("requirements.txt")
    pyproject = {}
    for dependency in declared:
        match = _REQUIREMENT.match(dependency.replace(" ", ""))
        assert match, f"{dependency!r} is not 'name>=version'"
        pyproject[match.group(1).lower()] = (match.group(2), Version(match.group(3)))
    assert pyproject == runtime


def test_ci_tests_both_sets():
    ci = (REPO / ".ci" / "run").read_text()
    assert "requirements-ci.txt" in ci and "requirements-floor.txt" in ci
