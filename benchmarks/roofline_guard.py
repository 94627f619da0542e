"""CI guard on the roofline projection: no stage's projected H100 minutes may grow unnoticed.

    python benchmarks/roofline_guard.py                          # check against benchmarks/roofline_baseline.json
    python benchmarks/roofline_guard.py --update --reason "..."  # rewrite the baseline (commit it with the change)

Not a timing: `roofline.py` counts ops and bytes, the same numbers on any CPU, so the check is exact up to the
projection's own determinism. The paper and fast presets of the image-to-4D path are projected (textual
inversion and a stage whose config differs only in its step count are recorded once for both) and compared stage by
stage with the committed baseline; a stage that grew by more than `--tolerance` (5 %) fails the check, and the
message names the parts that grew (benchmarks/roofline_model.py's code parts: 'normals: MLP', 'video prior: UNet',
...). An intended increase updates the baseline in the same commit, with the reason (`--reason`, kept in the file).
A stage that shrank by more than the tolerance passes with a note to update the baseline, so later growth is
measured from the new level. A preset's total above its target (`TARGET_MINUTES`: paper 35, fast 10 min on one H100,
issue 27) fails as well, also with `--update`: a baseline cannot be moved past the targets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import roofline  # noqa: E402
import roofline_model as rm  # noqa: E402
from paths import PATHS  # noqa: E402

from a124_core.checkpoint import atomic_write_json  # noqa: E402
from a124_core.cli import _quiet_libraries  # noqa: E402

BASELINE = Path(__file__).resolve().parent / "roofline_baseline.json"
PRESETS = ("paper", "fast")
TOLERANCE = 0.05
#: The projected H100 minutes each preset's total must stay within (issue 27's acceptance).
TARGET_MINUTES = {"paper": 35.0, "fast": 10.0}
#: Parts named per grown stage.
NAMED_PARTS = 3


def measure(presets: tuple[str, ...] = PRESETS, path_name: str = "image-to-4d") -> dict[str, dict]:
    """The projection (roofline.projection_json) of each preset of the path, at full size."""
    _quiet_libraries()
    torch.manual_seed(0)
    args = roofline.parser().parse_args([])
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    priors = roofline.load_priors(False, False, fake_mode)
    path, cache, out = PATHS[path_name], {}, {}
    for name in presets:
        configs = roofline.stage_configs(path, name, args)
        results = roofline.project(path, configs, priors, fake_mode, cache=cache)
        out[name] = roofline.projection_json(name, path.name, results)
    return out


def compare(baseline: dict[str, dict], current: dict[str, dict], tolerance: float = TOLERANCE) -> tuple[list, list]:
    """(failures, notes): one line per stage that grew by more than `tolerance` (naming the parts that grew most, in
    H100 ms per step) or that is new or gone; notes for stages that shrank by more than it."""
    failures, notes = [], []
    for preset_name, base in baseline.items():
        now = current.get(preset_name)
        if now is None:
            failures.append(f"{preset_name}: not projected (the baseline has it)")
            continue
        for stage, b in base["stages"].items():
            c = now["stages"].get(stage)
            if c is None:
                failures.append(f"{preset_name} {stage}: gone from the projection (update the baseline if intended)")
                continue
            before, after = b["minutes"][rm.H100.name], c["minutes"][rm.H100.name]
            change = after / before - 1.0 if before > 0 else float("inf") if after > 0 else 0.0
            where = f"{preset_name} {stage}: {before:.2f} -> {after:.2f} min on an H100 ({change:+.1%})"
            if change > tolerance:
                failures.append(f"{where}, more than {tolerance:.0%}; grew: {grown_parts(b, c)}")
            elif change < -tolerance:
                notes.append(f"{where}: faster; update the baseline so later growth is measured from here")
        for stage in now["stages"].keys() - base["stages"].keys():
            failures.append(f"{preset_name} {stage}: new in the projection (update the baseline with the reason)")
    return failures, notes


def over_target(current: dict[str, dict], targets: dict[str, float] = TARGET_MINUTES) -> list[str]:
    """One line per preset whose projected H100 total is above its target, naming its largest stage."""
    lines = []
    for name, limit in targets.items():
        proj = current.get(name)
        if proj is None:
            continue
        total = proj["total_minutes"][rm.H100.name]
        if total > limit:
            stages = proj["stages"]
            largest = max(stages, key=lambda s: stages[s]["minutes"][rm.H100.name])
            lines.append(f"{name}: total {total:.2f} min on an H100, over the target of {limit:g} (largest stage: "
                         f"{largest} {stages[largest]['minutes'][rm.H100.name]:.2f} min)")  # fmt: skip
    return lines


def grown_parts(before: dict, after: dict) -> str:
    """The parts whose H100 ms per step grew most, e.g. 'normals: MLP 36.28 -> 44.10 ms/step (+7.82)'."""
    old, new = before["parts_ms"], after["parts_ms"]
    growth = sorted(((new.get(p, 0.0) - old.get(p, 0.0), p) for p in old.keys() | new.keys()), reverse=True)
    named = [
        f"{part} {old.get(part, 0.0):.2f} -> {new.get(part, 0.0):.2f} ms/step ({delta:+.2f})"
        for delta, part in growth[:NAMED_PARTS]
        if delta > 0
    ]
    return "; ".join(named) or "no single part (many small ones)"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--update", action="store_true", help="write the current projection as the baseline")
    parser.add_argument("--reason", default="", help="why the baseline changes (required with --update)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="growth per stage that fails")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Check (exit 1 naming each grown stage and its parts) or, with --update, rewrite the baseline."""
    cli = parser()
    args = cli.parse_args(argv)
    if args.update and not args.reason.strip():
        cli.error("--update needs --reason: say why the projection changed (it is kept in the baseline)")
    if not args.update and not args.baseline.is_file():  # before the minutes of projecting
        sys.exit(f"No baseline at {args.baseline}: write one with --update --reason '...'")
    start = time.perf_counter()
    current = measure()
    print(f"projected paper and fast on CPU in {time.perf_counter() - start:.0f} s (torch {torch.__version__})")
    for name, proj in current.items():
        stages = ", ".join(f"{s} {v['minutes'][rm.H100.name]:.2f}" for s, v in proj["stages"].items())
        print(f"{name}: {stages}; total {proj['total_minutes'][rm.H100.name]:.2f} min on an H100")
    targets = over_target(current)
    failures, notes = list(targets), []
    if args.update and not failures:
        atomic_write_json(args.baseline, {"reason": args.reason.strip(), "tolerance": args.tolerance, **current})
        print(f"wrote {args.baseline}")
        return
    stored = {} if args.update else json.loads(args.baseline.read_text())
    if stored:
        grown, notes = compare({k: stored[k] for k in PRESETS if k in stored}, current, args.tolerance)
        failures += grown
    for line in notes:
        print(f"note: {line}")
    if failures:
        print("roofline guard FAILED:\n  " + "\n  ".join(failures))
        if targets:
            print("A total over its target cannot become the baseline: win the time back where the parts grew.")
        else:
            print("If the increase is intended, rerun with --update --reason '...' and commit the baseline with it.")
        sys.exit(1)
    print(f"roofline guard passed: every stage within {args.tolerance:.0%} of the baseline ({stored.get('reason')})")


if __name__ == "__main__":
    main()
