"""Rays per second (forward + backward) of StaticField and Grid4DField renders on the current device.

    python benchmarks/fields_rays.py                 # reference grid sizes, 64x64 and 128x128
    python benchmarks/fields_rays.py --small         # a CI-sized grid

Prints a Markdown table; times are medians over repeats after one warm-up, CUDA-synchronised.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="small grid (8 levels, finest 256) for CPU runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--knots", type=int, default=64)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    grid = GridConfig(num_levels=8, finest_resolution=256, log2_entries_per_level=15) if args.small else GridConfig()
    static = StaticField(FieldConfig(grid=grid)).to(device)
    dynamic = Grid4DField.from_static(static, num_knots=args.knots)
    render = RenderConfig()
    print(
        f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}, "
        f"grid {'small' if args.small else 'reference'}, samples {render.num_samples}+{render.num_importance}"
    )
    print("| field | size | occupancy | rays/s (fwd+bwd) |\n|---|---|---|---|")
    for name, field, t in (("StaticField", static, None), ("Grid4DField", dynamic, 0.5)):
        occupancy = OccupancyGrid(OccupancyConfig(resolution=64), time_slots=1).to(device)
        occupancy.refresh(lambda x, _slot_time, field=field, t=t: field.density(x, t))
        for size in (64, 128):
            for occ in (None, occupancy):
                rate = time_render(field, t, size, device, args.repeats, occ, render)
                print(f"| {name} | {size}x{size} | {'on' if occ is not None else 'off'} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
