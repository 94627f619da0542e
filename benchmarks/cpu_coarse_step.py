"""CPU wall time of a coarse step on the deformation field against one on the 4D grid (same stage, same priors).

    python benchmarks/cpu_coarse_step.py                      # smoke preset, tiny random priors, 1 thread
    python benchmarks/cpu_coarse_step.py --grid-path reference   # the grids as compositions (before the fused ops)

Both representations train the same coarse stage (tiny video and Zero123 priors, the smoke preset's 4-frame clips of
32 px) from the same static scene; a step is `runner.training_step` plus the optimizer update, timed after warm-up
(median). The deformation field evaluates a 4D hash grid, its MLP and the frozen canonical field at x + d(x, t)
(with the points' gradient); the 4D grid one 3D grid lookup in its frame's table. Timings on shared CPUs are noisy:
compare the ratio within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from step_inputs import synthetic_reference  # noqa: E402

from a124_core.cli import _quiet_libraries  # noqa: E402
from a124_core.fields.grid_kernels import grid_path  # noqa: E402
from a124_core.presets import preset  # noqa: E402
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors  # noqa: E402
from a124_core.training.config import with_steps  # noqa: E402
from a124_core.training.runner import training_step  # noqa: E402
from a124_core.training.static_stage import new_static_scene  # noqa: E402


def tiny_priors() -> DynamicPriors:
    from a124_core.priors.tiny import build_tiny_models
    from a124_core.priors.video import TextToVideoPrior
    from a124_core.priors.zero123 import Zero123Prior

    models = build_tiny_models(Path(tempfile.mkdtemp(prefix="a124-bench-")))
    return DynamicPriors(
        TextToVideoPrior.from_pretrained(models.video, device="cpu"),
        Zero123Prior.from_pretrained(models.zero123, device="cpu"),
    )


class Stepper:
    """One representation's coarse stage, stepped one step at a time (the stage's own schedule from step 1)."""

    def __init__(self, representation: str, preset_name: str, priors: DynamicPriors):
        configs = preset(preset_name, representation)
        self.stage = CoarseStage(with_steps(configs.coarse, 1000), synthetic_reference(),
                                 new_static_scene(configs.static), priors, "a panda is dancing")  # fmt: skip
        self.params = self.stage.trainable_parameters()
        self.step = 0

    def __call__(self) -> float:
        """Seconds of the next step: `runner.training_step` and the optimizer update."""
        self.step += 1
        start = time.perf_counter()
        self.stage.step = self.step
        training_step(self.stage, self.step, self.params)
        self.stage.optimizer.step()
        return time.perf_counter() - start


def step_times(preset_name: str, priors: DynamicPriors, steps: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per step of each representation; their steps alternate, so a change in the machine's load moves both
    alike (the ratio is what is compared)."""
    steppers = {name: Stepper(name, preset_name, priors) for name in ("grid4d", "deformation")}
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for stepper in steppers.values():
        stepper.stage.attach()
    try:
        for i in range(warmup + steps):
            for name, stepper in steppers.items():
                seconds = stepper()
                if i >= warmup:
                    times[name].append(seconds)
    finally:
        for stepper in steppers.values():
            stepper.stage.release()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="smoke", help="the stage's settings (smoke: what a CPU can run)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per representation")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on shared CPUs)")
    parser.add_argument("--grid-path", choices=("fused", "reference"), default="fused")
    args = parser.parse_args()
    _quiet_libraries()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    priors = tiny_priors()
    with grid_path(args.grid_path):
        times = step_times(args.preset, priors, args.steps, args.warmup)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"coarse step on CPU ({args.threads} thread(s), torch {torch.__version__}); preset {args.preset}; "
          f"grid path {args.grid_path}; median of {args.steps} alternating steps")  # fmt: skip
    print("| representation | ms / step |\n|---|---|")
    for representation, seconds in medians.items():
        print(f"| {representation} | {1e3 * seconds:.1f} |")
    print(f"deformation / grid4d: {medians['deformation'] / medians['grid4d']:.2f}x")


if __name__ == "__main__":
    main()
