"""Size of the morph-target GLB of a deformation scene, per encoding, and the inverse warp's round-trip error.

    python benchmarks/animated_mesh_bytes.py                    # ~50k faces, 64 frames (the issue's reference)
    python benchmarks/animated_mesh_bytes.py --tiny             # a CI-sized smoke run

The scene: the canonical blob sphere of a StaticField (radius ~0.34) moved by a paper-size deformation field
with a random smooth displacement (the 4 coarse grid levels a training run starts with, |d| up to ~0.1) in which
every vertex moves: the worst case for sparse morph targets. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a124_core.fields.deformation import DeformationConfig, DeformationField
from a124_core.fields.hash_encoding import HashGridConfig
from a124_core.fields.static import StaticField
from a124_core.gltf.container import write_glb
from a124_core.outputs.animated_mesh import (
    AnimatedMesh,
    AnimatedMeshConfig,
    build_morph_gltf,
    canonical_mesh,
    frame_positions,
)
from a124_core.outputs.mesh import MeshConfig


def scene(tiny: bool, seed: int = 0) -> DeformationField:
    torch.manual_seed(seed)
    grid = HashGridConfig(num_levels=4, finest_resolution=16, log2_hashmap_size=12) if tiny else HashGridConfig()
    field = DeformationField.from_static(StaticField(), DeformationConfig(grid=grid))
    with torch.no_grad():
        field.encoder.embeddings.uniform_(-1, 1)
        field.mlp[-1].weight.normal_(std=0.05)
    field.set_progress(0)
    return field


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="small mesh and few frames (CI smoke run)")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--faces", type=int, default=50_000)
    parser.add_argument("--resolution", type=int, default=320, help="marching cubes samples per axis")
    parser.add_argument("--out", type=Path, default=Path("out/animated_mesh_bytes"))
    args = parser.parse_args()
    if args.tiny:
        args.frames, args.faces, args.resolution = 4, 800, 40
    field = scene(args.tiny)
    config = AnimatedMeshConfig(
        mesh=MeshConfig(resolution=args.resolution), target_faces=args.faces, num_frames=args.frames
    )
    begin = time.time()
    mesh, note = canonical_mesh(field, config)
    positions, stats = frame_positions(field, mesh.vertices, config.times(), config)
    asset = AnimatedMesh(mesh, positions, config.times(), stats, note)
    mean = sum(stats.mean_residual) / len(stats.mean_residual)
    print(f"{note}; {mesh.vertices.shape[0]} vertices, {args.frames} frames in {time.time() - begin:.0f} s")
    print(
        f"inverse warp round trip |x_d + d(x_d, t) - x_c|: max {max(stats.max_residual):.2g}, mean {mean:.2g}, "
        f"iterations per frame max {max(stats.iterations)} "
        f"(mean {sum(stats.iterations) / len(stats.iterations):.1f}), "
        f"unconverged vertex-frames {stats.unconverged}"
    )
    print("| encoding | GLB bytes | morph + animation bytes | max quantisation error |")
    print("|---|---|---|---|")
    for encoding in ("float", "int16"):
        gltf, report = build_morph_gltf(asset, replace(config, encoding=encoding))
        size = write_glb(gltf, args.out / f"{encoding}.glb").stat().st_size
        print(f"| {encoding} | {size:,} | {report.bytes_added:,} | {report.max_error:.2g} |")


if __name__ == "__main__":
    main()
