"""Throughput (forward + backward) of StaticField and Grid4DField on the current device: rays per second of
renders, samples per second of the field alone, and before / after issue 19 side by side.

    python benchmarks/fields_rays.py                 # reference grid sizes, 64x64 and 128x128
    python benchmarks/fields_rays.py --small         # a CI-sized grid
    python benchmarks/fields_rays.py --paths-only    # only the before / after tables

Before / after: the grid encoder as the composition of PyTorch ops (`grid_path("reference")`) against the fused
op (grid_kernels.py), and training renders (lambertian, normals): the composition with normals for every sample
against the fused op with normals only where a sample's weight shows (RenderConfig.normal_min_weight).
Prints Markdown tables; times are medians over repeats after one warm-up, CUDA-synchronised.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a124_core.cameras import reference_camera
from a124_core.fields.encoding import GridConfig
from a124_core.fields.grid4d import Grid4DField
from a124_core.fields.grid_kernels import grid_path
from a124_core.fields.static import FieldConfig, StaticField
from a124_core.rays import camera_rays
from a124_core.rendering.occupancy import OccupancyConfig, OccupancyGrid
from a124_core.rendering.renderer import RenderConfig, render_rays


def time_render(field, t, size: int, device: torch.device, repeats: int, occupancy, render: RenderConfig) -> float:
    rays = camera_rays(reference_camera().to(device), size, size)
    timings = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = render_rays(field, rays, t, render, occupancy, perturb=True)
        out["rgb"].mean().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            timings.append(time.perf_counter() - start)
    return len(rays) / statistics.median(timings)


def median_seconds(fn, device: torch.device, repeats: int) -> float:
    timings = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def field_step(field, x: torch.Tensor):
    """Field forward + backward on points x (what a render does per valid sample, without normals)."""

    def step() -> None:
        density, albedo = field(x)
        (density.sum() + albedo.sum()).backward()

    return step


def render_step(field, rays, render: RenderConfig, occupancy):
    """A training render: lambertian shading with normals, forward + backward."""
    light = torch.nn.functional.normalize(torch.tensor([0.3, 0.5, 1.0]), dim=0).to(rays.origins)

    def step() -> None:
        out = render_rays(field, rays, None, render, occupancy, "lambertian", light, 0.5, None, True, True)
        (out["rgb"].mean() + out["orientation"].mean()).backward()

    return step


#: The renderer's settings before issue 19: normals for every sample, 4096-ray chunks.
BEFORE = RenderConfig(normal_min_weight=0.0, chunk_rays=4096)


def compare_paths(fields, device: torch.device, repeats: int, samples: int) -> None:
    """Before / after issue 19, side by side."""
    x = ((torch.rand(samples, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.4).to(device)
    print(f"\nfield alone, {samples:,} points in a sphere of radius 0.4, forward + backward\n")
    print("| field | samples/s, composition (before) | samples/s, fused op (after) | speed-up |\n|---|---|---|---|")
    for name, field, _t in fields:
        rates = []
        for path in ("reference", "fused"):
            with grid_path(path):
                rates.append(samples / median_seconds(field_step(field, x), device, repeats))
        print(f"| {name} | {rates[0]:,.0f} | {rates[1]:,.0f} | {rates[1] / rates[0]:.2f}x |")
    print("\ntraining render 64x64 (lambertian + normals, occupancy on), forward + backward\n")
    print("| field | rays/s, composition, every normal (before) | rays/s, fused, weighted normals (after) "
          "| speed-up |\n|---|---|---|---|")  # fmt: skip
    rays = camera_rays(reference_camera().to(device), 64, 64)
    for name, field, _t in fields:
        occupancy = OccupancyGrid(OccupancyConfig(resolution=64), time_slots=1).to(device)
        occupancy.refresh(lambda p, _slot_time, field=field: field.density(p))
        rates = []
        for path, render in (("reference", BEFORE), ("fused", RenderConfig())):
            with grid_path(path):
                step = render_step(field, rays, render, occupancy)
                rates.append(len(rays) / median_seconds(step, device, repeats))
        print(f"| {name} | {rates[0]:,.0f} | {rates[1]:,.0f} | {rates[1] / rates[0]:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="small grid (8 levels, finest 256) for CPU runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--knots", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--samples", type=int, default=65_536, help="points of the field-alone comparison")
    parser.add_argument("--paths-only", action="store_true", help="only the before / after comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    grid = GridConfig(num_levels=8, finest_resolution=256, log2_entries_per_level=15) if args.small else GridConfig()
    static = StaticField(FieldConfig(grid=grid)).to(device)
    dynamic = Grid4DField.from_static(static, num_knots=args.knots)
    render = RenderConfig()
    print(
        f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}, "
        f"grid {'small' if args.small else 'reference'}, samples {render.num_samples}+{render.num_importance}, "
        f"{torch.get_num_threads()} threads"
    )
    # the frozen frame of a 4D field: what the renderer evaluates (one blended table per frame)
    frame = dynamic.at_times([0.5])[0]
    frame_field = _FrameModule(frame)
    compare_paths([("StaticField", static, None), ("Grid4DField frame", frame_field, 0.5)], device, args.repeats,
                  args.samples)  # fmt: skip
    if args.paths_only:
        return
    print("\nrenders (albedo, no normals)\n")
    print("| field | size | occupancy | rays/s (fwd+bwd) |\n|---|---|---|---|")
    for name, field, t in (("StaticField", static, None), ("Grid4DField", dynamic, 0.5)):
        occupancy = OccupancyGrid(OccupancyConfig(resolution=64), time_slots=1).to(device)
        occupancy.refresh(lambda x, _slot_time, field=field, t=t: field.density(x, t))
        for size in (64, 128):
            for occ in (None, occupancy):
                rate = time_render(field, t, size, device, args.repeats, occ, render)
                print(f"| {name} | {size}x{size} | {'on' if occ is not None else 'off'} | {rate:,.0f} |")


class _FrameModule:
    """A FieldAtTime whose blended table is a leaf, so repeated backward passes need no retained graph."""

    def __init__(self, frame):
        from a124_core.fields.grid4d import FieldAtTime

        self.frame = FieldAtTime(frame.field, frame.table.detach().requires_grad_(True))

    def __call__(self, x, t=None):
        return self.frame(x)

    def density(self, x, t=None):
        return self.frame(x)[0]


if __name__ == "__main__":
    main()
