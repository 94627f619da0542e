"""Roofline projection of every stage's training step onto an H100 SXM and an H200, recorded on a CPU.

    python benchmarks/roofline.py                      # paper preset, full-size fp16 priors as FakeTensors
    python benchmarks/roofline.py --preset fast
    python benchmarks/roofline.py --path deformation   # another path users run (benchmarks/paths.py)
    python benchmarks/roofline.py --grid-path reference   # the grid encoder as it was before issue 19 (A/B)
    python benchmarks/roofline.py --tiny               # CI smoke run: tiny real priors, smoke preset
    python benchmarks/roofline.py --json out.json      # also write the projection (roofline_guard.py reads it)

Each stage is built as the pipeline builds it and runs real training steps (`run_step`: the loop's step) under
`roofline_model.OpRecorder`, which records every op's FLOPs and bytes and the code part that issued it, and
projects it: max(FLOPs / peak, bytes / bandwidth) + a launch overhead per kernel + a cost per host sync.
Recorded per stage: one SDS step, one reconstruction-only step (where the stage's schedule has them:
`Stage.is_reconstruction_step` over all its steps) and one occupancy refresh, combined by how often the schedule
runs them (a refresh every `occupancy.update_every` steps). The dynamic stages' first-frame terms (Zero123 and,
with the 'clip_start' rule, the reference-view render: parts 'Zero123: ...' and 'reference view ...') run on clips
that start at t = 0: recorded on such a clip and weighted by the time sampling's probability of one. Textual
inversion: one micro batch x micro batches per iteration.

Priors are full-size fp16 FakeTensors (no weights, no memory). The field is real where its values decide a shape:
cameras, rays, the occupancy test, the importance pass (whose densities place the fine samples) and the main pass
(whose weights pick the samples that get normals), on an occupancy grid of a sphere of radius `--object-radius`
(0.4: a recentred reference spans 60 % of the frame) with the field as the stage starts it. Its work whose values
decide no shape (normals, checkpoint recomputes, the backward, temporal TV, the occupancy refresh, Adam) runs on
FakeTensors: the same ops and shapes, none of the CPU time.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import replace
from pathlib import Path

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import roofline_model as rm  # noqa: E402
from paths import PATHS, UserPath, build_stage  # noqa: E402
from step_inputs import TIMicroStep, build_priors, sphere_occupancy, synthetic_reference  # noqa: E402

from a124_core.cli import _quiet_libraries  # noqa: E402
from a124_core.fields.encoding import GridConfig, GridEncoding  # noqa: E402
from a124_core.fields.grid_kernels import grid_path  # noqa: E402
from a124_core.priors.memory import set_vae_gradient_checkpointing  # noqa: E402
from a124_core.training.runner import training_step  # noqa: E402
from a124_core.training.static_stage import new_static_scene  # noqa: E402
from a124_core.training.time_sampling import exact_distribution, sample_clip_times  # noqa: E402

STAGES = ("static", "coarse", "refine")
#: Stack frames whose ops decide no shape: they run on FakeTensors (see the module docstring).
FAKE_CONTEXTS = (
    ("rendering/renderer.py", "density_normals", "normals"),
    ("fields/grid4d.py", "temporal_tv", "temporal TV"),
    ("rendering/occupancy.py", "refresh", "occupancy refresh"),
    ("training/terms/arap.py", None, "ARAP"),
    ("/torch/optim/", None, "optimizer"),
    ("training/runner.py", "_grads_finite", "NaN guard"),
)


# ----------------------------------------------------------------------------- the stage adapter
def run_step(stage, step: int) -> None:
    """One training step as `runner.train` runs it (its host read of the finite check is counted by the caller)."""
    stage.step = step
    training_step(stage, step, stage.trainable_parameters())
    stage.optimizer.step()


# ----------------------------------------------------------------------------- recording
def record(fn, fake_mode: FakeTensorMode) -> rm.OpRecorder:
    """Run `fn` under a recorder; anomaly mode keeps each autograd node's forward stack for the backward's parts."""
    recorder = rm.OpRecorder(fake_mode=fake_mode, fake_contexts=FAKE_CONTEXTS)
    with torch.autograd.set_detect_anomaly(True, check_nan=False), recorder:
        fn()
    return recorder


#: Parts of the terms that run only on clips that start at t = 0 (roofline_model.part_of names them).
FIRST_FRAME_PARTS = ("Zero123", "reference view")


def first_step(stage, sds: bool, start: int = 0) -> int:
    """The first step >= start that is an SDS step (sds) or a reconstruction-only step, and no occupancy-refresh
    step."""
    step = start
    while stage.is_reconstruction_step(step) == sds or step % stage.config.occupancy.update_every == 0:
        step += 1
    return step


def seed_starting_at_zero(time_config) -> int:
    """A generator seed whose first clip starts at t = 0 (so the recorded SDS step includes the Zero123 term)."""
    return next(s for s in range(10_000) if sample_clip_times(time_config, torch.Generator().manual_seed(s))[1])


def stage_record(name: str, stage, config, fake_mode: FakeTensorMode, radius: float) -> dict:
    """The recorded steps of a stage: an SDS step on a clip that starts at t = 0 and a reconstruction-only step
    (where its schedule has each), an occupancy refresh, and what weights them (`expected` combines them)."""
    kinds = {stage.is_reconstruction_step(s) for s in range(config.steps)}
    stage.attach()
    try:
        refresh = record(lambda: stage.before_step(0), fake_mode)  # runs on fakes: the occupancy is set below
        slots = config.occupancy_slots if name != "static" else 1
        sphere = sphere_occupancy(config, radius, slots, torch.Generator().manual_seed(0)).state_dict()
        stage.scene.occupancy.load_state_dict(sphere)
        if name == "refine":
            stage.condition_scene.occupancy.load_state_dict(sphere)
        first_frame = 1.0
        if name != "static":
            stage.generator.manual_seed(seed_starting_at_zero(config.time))
            first_frame = exact_distribution(config.time)["p_start_zero"]
        sds = reference = None
        if False in kinds:
            step = first_step(stage, sds=True, start=config.reference_warmup)
            sds = record(lambda: run_step(stage, step), fake_mode)
        if True in kinds:
            reference = record(lambda: run_step(stage, first_step(stage, sds=False)), fake_mode)
    finally:
        stage.release()
    for rec in (sds, reference):
        if rec is not None:  # the loop's bool() of the finite check
            rec.totals[("NaN guard", "fwd", "host read")].add(rm.OpCost(0, 0, 0, 0, 1, None), rm.GPUS)
    frames = 1 if name == "static" else config.time.num_frames
    rows = (sds or reference).rows
    return {
        "sds": sds, "reference": reference, "refresh": refresh, "first_frame": first_frame,
        "is_reconstruction_step": stage.is_reconstruction_step, "update_every": config.occupancy.update_every,
        "valid samples / frame": rows.get("samples: compositing", 0) / frames,
        "of which with normals": rows.get("normal selection: compositing", 0) / frames,
    }  # fmt: skip


def expected(raw: dict, steps: int) -> tuple[dict, dict]:
    """(expected totals of one step of a `steps`-step schedule, info) from a stage's records."""
    sds_share = 1.0 - sum(raw["is_reconstruction_step"](s) for s in range(steps)) / steps
    records = [(raw["refresh"].totals, 1.0 / raw["update_every"])]
    if raw["sds"] is not None:  # the first-frame terms ran on a clip that starts at t = 0
        totals = raw["sds"].totals
        first = {k: v for k, v in totals.items() if k[0].startswith(FIRST_FRAME_PARTS)}
        rest = {k: v for k, v in totals.items() if k not in first}
        records += [(first, sds_share * raw["first_frame"]), (rest, sds_share)]
    if raw["reference"] is not None:
        records.append((raw["reference"].totals, 1.0 - sds_share))
    info = {"steps": steps, "sds share": sds_share, "first-frame weight": raw["first_frame"]}
    info.update({k: raw[k] for k in ("valid samples / frame", "of which with normals")})
    return rm.combine(records), info


def ti_record(sd, tiny: bool, fake_mode: FakeTensorMode, cfg=None) -> tuple[dict, dict]:
    micro = TIMicroStep(sd, tiny, cfg)
    try:
        records = []
        if micro.pooled:  # the pool's encoding, spread over the run; the steps draw latents from it
            encode = record(micro.encode, fake_mode)
            records.append((encode.totals, micro.encodes_per_step))
            with fake_mode if not tiny else contextlib.nullcontext():  # the latents the steps draw (not recorded)
                micro.pool_latents = micro.encode()
        records.append((record(micro, fake_mode).totals, micro.micro_steps))
    finally:
        micro.release()
    info = {"micro batches": micro.micro_steps, "encoder calls / step": micro.encodes_per_step or micro.micro_steps}
    return rm.combine(records), info


def grid_bytes_per_sample(config: GridConfig, path: str, n: int = 65_536) -> tuple[float, float]:
    """Bytes moved per point of one grid lookup of n points (about one chunk's valid samples), forward and
    backward (table gradient), with grid path `path` ('reference' or 'fused')."""
    encoder = GridEncoding(config)
    x = (torch.rand(n, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.4
    with grid_path(path):
        forward = rm.OpRecorder()
        with forward:
            out = encoder(x)
        backward = rm.OpRecorder()
        with backward:
            out.backward(torch.ones_like(out))
    return rm.total_of(forward.totals).bytes / n, rm.total_of(backward.totals).bytes / n


# ----------------------------------------------------------------------------- report
def ms(totals: rm.Totals, gpu: rm.Gpu) -> float:
    return 1e3 * totals.seconds[gpu.name]


def print_stage(name: str, totals: dict, top: int) -> None:
    whole = rm.total_of(totals)
    h100 = rm.H100.name
    print(f"\n{name}: top {top} ops (H100 SXM)\n")
    print("| part | pass | op | calls / step | GB / step | GFLOP / step | ms / step | share |")
    print("|---|---|---|---|---|---|---|---|")
    for (part, phase, op), t in sorted(totals.items(), key=lambda kv: -kv[1].seconds[h100])[:top]:
        print(f"| {part} | {phase} | {op} | {t.count:,.1f} | {t.bytes / 1e9:.2f} | {t.flops / 1e9:,.1f} "
              f"| {ms(t, rm.H100):.2f} | {t.seconds[h100] / whole.seconds[h100]:.1%} |")  # fmt: skip
    print(f"\n{name}: parts (H100 SXM)\n")
    print("| part | kernels / step | GB / step | ms / step | share |\n|---|---|---|---|---|")
    for part, t in sorted(rm.by_part(totals).items(), key=lambda kv: -kv[1].seconds[h100])[:top]:
        print(f"| {part} | {t.kernels:,.0f} | {t.bytes / 1e9:.2f} | {ms(t, rm.H100):.2f} "
              f"| {t.seconds[h100] / whole.seconds[h100]:.1%} |")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="paper (default) or fast; smoke with --tiny")
    parser.add_argument("--path", choices=tuple(PATHS), default="image-to-4d", help="the path users run (paths.py)")
    parser.add_argument("--tiny", action="store_true", help="tiny real priors and the smoke preset (CI smoke test)")
    parser.add_argument("--stages", nargs="+", choices=("ti", *STAGES), default=None,
                        help="the path's stages to record (default all)")  # fmt: skip
    parser.add_argument("--vae-checkpointing", action="store_true", help="recompute VAE-encoder activations")
    parser.add_argument("--object-radius", type=float, default=0.4, help="radius of the stand-in object")
    parser.add_argument("--top", type=int, default=10, help="ops and parts listed per stage")
    parser.add_argument("--launch-us", type=float, default=rm.LAUNCH_SECONDS * 1e6, help="overhead per kernel")
    parser.add_argument("--sync-us", type=float, default=rm.SYNC_SECONDS * 1e6, help="cost of a host sync")
    parser.add_argument("--grid-path", choices=("fused", "reference"), default="fused",
                        help="grid encoder: the fused op (default) or the composition it replaced (A/B)")  # fmt: skip
    parser.add_argument("--forward-normals", action="store_true",
                        help="normals by forward differences (3 probes) instead of central (6): A/B")  # fmt: skip
    parser.add_argument("--chunk-rays", type=int, default=None, help="rays per render chunk (A/B; default the "
                        "preset's RenderConfig.chunk_rays)")  # fmt: skip
    parser.add_argument("--all-normals", action="store_true",
                        help="normals for every sample (normal_min_weight 0), as before issue 19: A/B")  # fmt: skip
    parser.add_argument("--first-frame-rule", choices=("clip_start", "schedule"), default=None,
                        help="the dynamic stages' first_frame_supervision (A/B; default the preset's 'clip_start', "
                        "paper Eq. 8: video SDS on every step); 'schedule' is the rule before the merge of issue 19 "
                        "(a reconstruction-only step in 4, no SDS on it)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write the projection here (JSON)")
    return parser


def stage_configs(path: UserPath, preset_name: str, args):
    """The path's preset with the A/B options of `args` applied to every stage."""
    configs = path.configs(preset_name)
    loop = replace(configs.static.loop, vae_checkpointing="on" if args.vae_checkpointing else "off")
    render = {"normal_differences": "forward"} if args.forward_normals else {}
    if args.all_normals:
        render["normal_min_weight"] = 0.0
    if args.chunk_rays is not None:
        render["chunk_rays"] = args.chunk_rays
    configs = replace(configs, **{
        s: replace(getattr(configs, s), loop=loop, render=replace(getattr(configs, s).render, **render))
        for s in STAGES
    })  # fmt: skip
    if args.first_frame_rule is None:
        return configs
    rule = {"first_frame_supervision": args.first_frame_rule}
    return replace(configs, coarse=replace(configs.coarse, **rule), refine=replace(configs.refine, **rule))


def load_priors(tiny: bool, vae_checkpointing: bool, fake_mode: FakeTensorMode, extra: tuple[str, ...] = ()) -> dict:
    with fake_mode if not tiny else torch.device("cpu"):
        priors = build_priors(tiny, extra=extra)
    for prior in priors.values():
        set_vae_gradient_checkpointing(prior, vae_checkpointing)
        if not tiny:  # fake weights stay where they are: Module.to cannot swap FakeTensor parameters
            prior.to = lambda device, prior=prior: prior
    return priors


def main() -> None:
    args = parser().parse_args()
    rm.LAUNCH_SECONDS, rm.SYNC_SECONDS = args.launch_us * 1e-6, args.sync_us * 1e-6
    _quiet_libraries()
    torch.manual_seed(0)
    name = args.preset or ("smoke" if args.tiny else "paper")
    path = PATHS[args.path]
    configs = stage_configs(path, name, args)
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    priors = load_priors(args.tiny, args.vae_checkpointing, fake_mode, path.priors)
    with grid_path(args.grid_path):
        results = project(path, configs, priors, fake_mode, args.object_radius, args.tiny, args.stages)
    print_report(args, name, configs, results)
    if args.json is not None:
        from a124_core.checkpoint import atomic_write_json

        atomic_write_json(args.json, projection_json(name, path.name, results))


def project(path: UserPath, configs, priors: dict, fake_mode: FakeTensorMode, radius: float = 0.4,
            tiny: bool = False, stages=None, cache: dict | None = None) -> list:  # fmt: skip
    """[(stage, expected totals of one step, steps, info)] of the path's stages (or `stages` of them). `cache` keeps
    records across presets: a stage whose config differs only in its step count is recorded once."""
    cache = {} if cache is None else cache
    wanted = [s for s in path.stages if stages is None or s in stages]
    reference = synthetic_reference()
    results = []
    if "ti" in wanted:
        key = ("ti", repr(replace(configs.textual_inversion, steps=1)))
        if key not in cache:
            print("recording textual inversion", file=sys.stderr)
            cache[key] = ti_record(priors["sd"], tiny, fake_mode, configs.textual_inversion)
        results.append(("textual inversion", *cache[key][:1], configs.textual_inversion.steps, cache[key][1]))
    previous = None
    for name in (s for s in path.stages if s != "ti"):  # every stage is built (each starts from the previous scene)
        config = getattr(configs, name)
        if previous is None and name != "static":  # a path that starts dynamic (animate-mesh): a fresh canonical
            previous = new_static_scene(configs.static)
        stage = build_stage(path, name, configs, priors, reference, previous)
        key = (path.name, name, repr(replace(config, steps=1)))
        if name in wanted and key not in cache:
            print(f"recording {name}", file=sys.stderr)
            cache[key] = stage_record(name, stage, config, fake_mode, radius)
        if name in wanted:
            totals, info = expected(cache[key], config.steps)
            results.append((name, totals, config.steps, info))
        previous = stage.scene
    return results


def projection_json(preset_name: str, path_name: str, results: list) -> dict:
    """Per stage: steps, ms / step and minutes per GPU, kernels, syncs, GB, and per part H100 ms / step."""
    h100 = rm.H100.name
    stages = {}
    for stage_name, totals, steps, _info in results:
        t = rm.total_of(totals)
        stages[stage_name] = {
            "steps": steps,
            "ms": {gpu.name: round(ms(t, gpu), 3) for gpu in rm.GPUS},
            "minutes": {gpu.name: round(t.seconds[gpu.name] * steps / 60, 3) for gpu in rm.GPUS},
            "kernels": round(t.kernels, 1),
            "syncs": round(t.syncs, 2),
            "gb": round(t.bytes / 1e9, 3),
            "parts_ms": {part: round(ms(p, rm.H100), 4) for part, p in sorted(rm.by_part(totals).items())},
        }
    total = {gpu.name: round(sum(s["minutes"][gpu.name] for s in stages.values()), 3) for gpu in rm.GPUS}
    return {"preset": preset_name, "path": path_name, "gpu": h100, "stages": stages, "total_minutes": total}


def print_report(args, name: str, configs, results: list) -> None:
    render = configs.static.render
    normals = render.normal_differences
    if configs.coarse.render.normal_differences != normals:
        normals += f" (coarse and refine: {configs.coarse.render.normal_differences})"
    print(
        f"roofline on CPU (torch {torch.__version__}); preset {name}; priors "
        f"{'tiny real' if args.tiny else 'full-size fp16 (FakeTensors)'}; VAE checkpointing "
        f"{'on' if args.vae_checkpointing else 'off'}; launch {args.launch_us:g} us/kernel, sync {args.sync_us:g} us; "
        f"object radius {args.object_radius}; grid path {args.grid_path}; normals {normals} differences, min weight "
        f"{render.normal_min_weight:g}; {render.chunk_rays} rays per chunk"
    )
    print("\n| step | iterations | GB / it | TFLOP / it | kernels / it | syncs / it "
          "| H100 ms / it | H100 min | H200 ms / it | H200 min |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    minutes = {gpu.name: 0.0 for gpu in rm.GPUS}
    for stage_name, totals, steps, _info in results:
        t = rm.total_of(totals)
        row = []
        for gpu in rm.GPUS:
            m = t.seconds[gpu.name] * steps / 60
            minutes[gpu.name] += m
            row.append(f"{ms(t, gpu):.1f} | {m:.1f}")
        print(f"| {stage_name} | {steps} | {t.bytes / 1e9:.2f} | {t.flops / 1e12:.2f} | {t.kernels:,.0f} "
              f"| {t.syncs:,.0f} | {' | '.join(row)} |")  # fmt: skip
    print(f"| total | | | | | | | {minutes[rm.H100.name]:.1f} | | {minutes[rm.H200.name]:.1f} |")
    grid = configs.static.field.grid
    print("\ngrid lookup, bytes per point (65,536 points, the field's grid):")
    for path in ("reference", "fused"):
        forward, backward = grid_bytes_per_sample(grid, path)
        print(f"  {path}: {forward:,.0f} forward + {backward:,.0f} backward = {forward + backward:,.0f}")
    for stage_name, totals, _steps, info in results:
        print(f"\n{stage_name}: " + "; ".join(f"{k} {v:,.3g}" for k, v in info.items()))
        print_stage(stage_name, totals, args.top)


if __name__ == "__main__":
    main()
