"""Numbered output files never reuse a number: every node that writes a numbered file takes one above the highest
already there (as ComfyUI's savers do), so deleting an earlier file never makes the next export overwrite a later one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from node_env import node_classes

from tests.meshes.builder import build_test_mesh


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def numbers(folder: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in folder.glob(pattern))


def test_next_number_is_above_the_highest_left(pack, comfy_env, tmp_path):
    from comfyui_animate124.nodes.output_files import next_numbered_path

    assert next_numbered_path(tmp_path, "a", ".glb").name == "a_00001.glb"
    for name in ("a_00001.glb", "a_00002.glb", "a_00007.glb", "a_x_00009.glb", "a_00011.mp4", "b_00020.glb"):
        (tmp_path / name).write_bytes(b"x")
    assert next_numbered_path(tmp_path, "a", ".glb").name == "a_00008.glb"  # other stems and suffixes do not count
    (tmp_path / "a_00007.glb").unlink()
    assert next_numbered_path(tmp_path, "a", ".glb").name == "a_00003.glb"  # the highest left, plus one
    (tmp_path / "a_99999.glb").write_bytes(b"x")
    assert next_numbered_path(tmp_path, "a", ".glb").name == "a_100000.glb"


def static_scene():
    from a124_core.fields.static import StaticField
    from a124_core.presets import preset
    from a124_core.rendering.occupancy import OccupancyGrid
    from a124_core.training.scene import Scene

    cfg = preset("smoke").static
    return Scene(StaticField(cfg.field), OccupancyGrid(cfg.occupancy, 1, cfg.field.grid.bound), "static")


def dynamic_scene():
    from a124_core.rendering.occupancy import OccupancyGrid
    from a124_core.training.scene import Scene
    from tests.outputs.conftest import small_deformation_field

    field = small_deformation_field()
    return Scene(field, OccupancyGrid(time_slots=1, bound=1.0), "coarse", complete=True)


def writers():
    """(node, call writing one file, folder under output/animate124, glob of its numbered files)."""
    return {
        "A124_SaveScene": (lambda cls, scene: cls.execute(scene, "unit")[0], "scenes", "unit_static_*.safetensors"),
        "A124_OrbitRender": (
            lambda cls, scene: cls.execute(scene, "test orbit", "albedo", 1, 1, 16, 10.0, True, "unit")[1],
            "videos",
            "unit_test-orbit_albedo_*.mp4",
        ),
        "A124_ExportAnimatedMesh": (
            lambda cls, scene: cls.execute(scene, 2, 10.0, 16, 0, "unit")[0],
            "meshes",
            "unit_*.glb",
        ),
    }


@pytest.mark.parametrize("name", ["A124_SaveScene", "A124_OrbitRender", "A124_ExportAnimatedMesh"])
def test_deleting_the_first_of_three_exports_never_overwrites_the_others(pack, comfy_env, name):
    write, folder, pattern = writers()[name]
    cls = node_classes(pack)[name]
    scene = dynamic_scene() if name == "A124_ExportAnimatedMesh" else static_scene()
    out = Path(comfy_env["folder_paths"].get_output_directory()) / "animate124" / folder
    with torch.inference_mode():
        for _ in range(3):
            write(cls, scene)
    files = numbers(out, pattern)
    assert [f[-len("00001") - len(Path(f).suffix) :] for f in files] == [
        f"00001{Path(files[0]).suffix}",
        f"00002{Path(files[0]).suffix}",
        f"00003{Path(files[0]).suffix}",
    ]
    kept = {f: digest(out / f) for f in files[1:]}
    (out / files[0]).unlink()
    with torch.inference_mode():
        newest = write(cls, scene)
    assert Path(newest).name.endswith("_00004" + Path(files[0]).suffix), newest
    assert {f: digest(out / f) for f in files[1:]} == kept  # the second and third are untouched
    assert numbers(out, pattern) == [*files[1:], Path(newest).name]


def test_animate_mesh_numbers_its_glb_above_the_highest(pack, comfy_env):
    """Animate Mesh writes through the same helper: with _00002 and _00003 left, its GLB is _00004."""
    from types import SimpleNamespace

    mesh = build_test_mesh()
    out = Path(comfy_env["folder_paths"].get_output_directory()) / "animate124" / "meshes"
    out.mkdir(parents=True)
    for n in (2, 3):
        (out / f"robot_{n:05d}.glb").write_bytes(b"earlier export")
    made = SimpleNamespace(vertices=torch.tensor(mesh.vertices)[None].float(), faces=torch.tensor(mesh.faces)[None])
    cls = node_classes(pack)["A124_AnimateMesh"]
    with torch.inference_mode():
        model_file = cls.execute(
            "", "a robot is waving", "smoke", 1, 0, 2, 10.0, 1000.0, mesh=made, filename_prefix="robot"
        )[0]
    assert model_file == "animate124/meshes/robot_00004.glb"
    assert all((out / f"robot_{n:05d}.glb").read_bytes() == b"earlier export" for n in (2, 3))
