"""GPU memory and FLOPs of one step of every stage at paper (or fast) settings, counted on a CPU.

    python benchmarks/estimate_gpu.py                  # paper preset, full-size fp16 priors as FakeTensors
    python benchmarks/estimate_gpu.py --preset fast
    python benchmarks/estimate_gpu.py --tiny           # CI smoke run: tiny real priors, smoke preset

Why: which tensors are alive at once decides a step's GPU memory, and that can be counted without a GPU
(benchmarks/accounting.py). Parts of the peak of one SDS step, each counted separately and then added:
  - prior weights: every network of the stage's priors in fp16 (FakeTensors: full size, no memory), less the
    text / image encoders, which stages move to the CPU once their conditions are cached;
  - prior step: what the stage's SDS calls of one step keep alive (VAE-encoder graphs of every prior until the
    backward, the UNet forwards), counted on FakeTensors with the step's real shapes;
  - field state: parameters, gradients and Adam's two moments (fp32);
  - render graph: a + b * valid samples per render call, a and b fitted on the real full-size field on CPU at two
    ray counts, times the valid samples of one step, counted with the renderer's own sampling through an
    occupancy grid of a sphere of radius `--object-radius` (0.4 spans a recentred reference's 60 % of the frame);
  - temporal TV graph (steps 2-3), measured on the real field; the frozen condition field of step 3;
  - animate mesh (`--stages animate_mesh`): the coarse stage on the deformation field plus the ARAP term's graph
    over `--mesh-vertices` welded vertices x the clip's frames, fitted linear in vertices on two real icospheres.
The sum is an estimate of torch.cuda.max_memory_allocated (no allocator fragmentation or library workspaces).
Time floor: counted FLOPs (matmuls, convolutions, attention; grid gathers are memory-bound and not counted) at
`--utilisation` of the H100's dense fp16 peak; SDS steps weighted by how many steps of the stage are SDS steps.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accounting import LiveBytes, StepCost, measure, parameter_bytes, peak_bytes  # noqa: E402
from paths import PATHS, UserPath  # noqa: E402
from step_inputs import SphereDensity, TIMicroStep, build_priors, sphere_occupancy, synthetic_reference  # noqa: E402

from a124_core.cameras import reference_camera, sample_static_cameras  # noqa: E402
from a124_core.cli import _quiet_libraries  # noqa: E402
from a124_core.fields.deformation import DeformationField  # noqa: E402
from a124_core.fields.grid4d import FieldAtTime, Grid4DField  # noqa: E402
from a124_core.fields.static import StaticField  # noqa: E402
from a124_core.guidance.sds import scoring_size  # noqa: E402
from a124_core.presets import preset  # noqa: E402
from a124_core.priors.memory import set_vae_gradient_checkpointing  # noqa: E402
from a124_core.rays import camera_rays  # noqa: E402
from a124_core.rendering.renderer import _sample_depths, render_rays  # noqa: E402
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors  # noqa: E402
from a124_core.training.refine_stage import RefinePriors, RefineStage  # noqa: E402
from a124_core.training.representations import DEFAULT_REPRESENTATION, REPRESENTATIONS  # noqa: E402
from a124_core.training.stage import Stage  # noqa: E402
from a124_core.training.static_stage import StaticPriors, StaticStage, new_static_scene  # noqa: E402
from a124_core.training.terms.base import StepContext  # noqa: E402
from a124_core.training.view import View  # noqa: E402

H100_DENSE_FP16_FLOPS = 989.4e12  # H100 SXM, dense bf16/fp16 tensor-core peak
STAGES = ("static", "coarse", "refine")
GIB = 2**30


@dataclass
class StageEstimate:
    name: str
    weights: int  # prior weights on the GPU during the stage
    encoders: int  # of which text / image encoders (only used while conditions are built)
    field_state: int
    render: int  # render graph held until the backward
    extra: int  # temporal TV graph, frozen condition field
    prior_step: StepCost
    render_transient: int  # the render backward's own peak (after the priors' backward)
    render_flops: float
    steps: int
    sds_fraction: float

    @property
    def peak(self) -> int:
        # Stages move the encoders to the CPU once their conditions are cached (LoopConfig.offload_priors);
        # textual inversion trains through the text encoder and keeps it.
        on_gpu = self.weights if self.name == "textual inversion" else self.weights - self.encoders
        held = on_gpu + self.field_state + self.render + self.extra
        return held + max(self.prior_step.peak_bytes, self.render_transient)

    def minutes(self, utilisation: float) -> float:
        flops = self.sds_fraction * (self.prior_step.flops + self.render_flops)
        return flops * self.steps / (utilisation * H100_DENSE_FP16_FLOPS) / 60


# ----------------------------------------------------------------------------- priors
def prior_networks(prior) -> tuple[list[torch.nn.Module], list[torch.nn.Module]]:
    """(networks a training step runs, encoders used only to build conditions)."""

    def present(names):
        return [net for net in (getattr(prior, n, None) for n in names) if isinstance(net, torch.nn.Module)]

    return present(("unet", "vae", "controlnet", "projection")), present(("text_encoder", "image_encoder"))


def weights_of(priors: list) -> tuple[int, int]:
    step, enc = [], []
    for prior in priors:
        s, e = prior_networks(prior)
        step += s
        enc += e
    return parameter_bytes(*step, *enc), parameter_bytes(*enc)


def probe_stage(stage: str, priors: dict, configs, path: UserPath | None = None) -> Stage:
    """The real stage with these priors, on a small field: only its guidance terms' prior work is measured here. A
    path's own builder (paths.py: video-to-4D's clip stage, MVDream's static stage) builds the stages it names."""
    c = configs.stage(stage)
    small = preset("smoke").static.field
    if path is not None and stage in path.builders:
        small_configs = replace(configs, static=replace(configs.static, field=small))
        previous = new_static_scene(small_configs.static) if stage != "static" else None
        return path.builders[stage](path, small_configs, priors, synthetic_reference(), previous)
    reference = SimpleNamespace(rgb=torch.rand(3, 64, 64), mask=torch.ones(1, 64, 64), depth=None)
    if stage == "static":
        return StaticStage(
            replace(c, field=small), reference, StaticPriors(priors["sd"], priors["zero123"]), "a panda"
        )
    static = new_static_scene(replace(configs.static, field=small))
    dynamic = DynamicPriors(priors["video"], priors["zero123"])
    if stage == "coarse":
        return CoarseStage(c, reference, static, dynamic, "a panda is dancing")
    coarse = CoarseStage(configs.coarse, reference, static).scene
    priors = RefinePriors(priors["video"], priors["zero123"], priors["controlnet"])
    return RefineStage(c, reference, coarse, priors, "a panda is dancing", token_prompt="a panda is dancing")


def prior_step_cost(stage: Stage, view: View) -> StepCost:
    """One SDS step's prior work: the stage's own guidance terms on renders of its render shape, every term on (a
    clip that starts at t = 0), then one backward into the renders."""
    terms = [term for term in stage.terms if term.prior is not None]
    for term in terms:
        term.build()
        if hasattr(term, "control_images"):  # the frozen model's render is counted with the field, not here
            size = scoring_size(term.config.sds, term.prior)
            term.control_images = lambda ctx, view, size=size: torch.rand(len(view.cameras), 3, size, size)
    renders = torch.rand(len(view.cameras), *stage.render_shape, 3, requires_grad=True)

    def step():
        ctx = StepContext(
            1, 0.5, True, view, {"rgb": renders}, True, stage.scene.field, stage.generator, stage.render_view
        )
        total = sum(value for term in terms for value in term.losses(ctx).values())
        total.backward()

    return measure(step)


# ----------------------------------------------------------------------------- field
@dataclass
class RenderCall:
    held: int  # bytes a call's graph keeps until the step's backward
    peak: int  # bytes at the call's own peak (its backward included)
    flops: int
    slots: int  # sample slots (rays in bounds x samples per ray)
    valid: int  # of which the field evaluates (in occupied cells)


def render_call_cost(field, config, rays, t, occupancy=None) -> RenderCall:
    """One training render_rays call (lambertian + normals), forward and backward."""
    light = torch.nn.functional.normalize(torch.tensor([0.3, 0.5, 1.0]), dim=0)
    frame = field
    displacement = isinstance(field, DeformationField)  # its clip render also composites displacements (TV term)
    if t is not None and not displacement:  # the frame's blended table is a leaf: the blend is added once per frame
        frame = FieldAtTime(field, field.tables_at([t])[0].detach().requires_grad_())

    def forward():
        out = render_rays(frame, rays, t, config.render, occupancy, "lambertian", light, 0.5, None, True, True,
                          torch.Generator().manual_seed(0), need_displacement=displacement)  # fmt: skip
        return out["rgb"].sum() + out["opacity"].sum() + out["normal_image"].sum() + out["orientation"].sum()

    for p in field.parameters():  # gradients exist already in training: count only what the render adds
        p.grad = torch.zeros_like(p)
    tracker = LiveBytes()
    with tracker:
        loss = forward()
        held = tracker.current
        loss.backward()
        del loss
    with FlopCounterMode(display=False) as flops:
        forward().backward()
    # the same draws as the call: which of its samples were valid
    valid, slots = count_samples(frame, rays, t, config, occupancy, torch.Generator().manual_seed(0))
    return RenderCall(held, tracker.peak, flops.get_total_flops(), slots, valid)


@torch.no_grad()
def count_samples(field, rays, t, config, occupancy, generator: torch.Generator) -> tuple[int, int]:
    """(valid samples, sample slots) of rendering `rays`: the renderer's own sampling and occupancy test."""
    depths, valid = _sample_depths(field, rays, t, config.render, occupancy, True, generator)
    return int(valid.sum()), int((rays.far > rays.near).sum()) * depths.shape[1]


def render_model(field, config, t, rays_small: int, radius: float) -> dict[str, float]:
    """held / peak / flops of one call = a + b * valid samples + c * sample slots.

    Fitted on rays of a reference-camera frame: two ray counts with every sample valid give a and b + c; the larger
    count again through a sphere's occupancy grid (fewer valid samples, the same slots) separates b from c.
    """
    rays = camera_rays(reference_camera(config.camera), config.render_size, config.render_size,
                       config.render.bound, config.render.min_near)  # fmt: skip
    mid = len(rays) // 2
    small, large = (render_call_cost(field, config, rays[mid : mid + r], t) for r in (rays_small, 4 * rays_small))
    slots = 1 if t is None else config.occupancy_slots
    occupancy = sphere_occupancy(config, radius, slots, torch.Generator().manual_seed(0))
    sparse = render_call_cost(field, config, rays[mid : mid + 4 * rays_small], t, occupancy)
    model = {}
    for key in ("held", "peak", "flops"):
        both = (getattr(large, key) - getattr(small, key)) / (large.slots - small.slots)
        per_valid = (getattr(large, key) - getattr(sparse, key)) / (large.valid - sparse.valid)
        model[f"{key}_per_call"] = getattr(small, key) - both * small.slots
        model[f"{key}_per_sample"] = per_valid
        model[f"{key}_per_slot"] = both - per_valid
    return model


def temporal_tv_bytes(field: Grid4DField, points: int) -> int:
    """Peak bytes of the temporal TV loss at `points` points and its backward (measured whole: a fit from fewer
    points came out 11 % low at 100,000)."""
    x = (torch.rand(points, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1) * field.config.grid.bound
    return peak_bytes(lambda: field.temporal_tv(points=x).backward())


def valid_samples_per_frame(config, radius: float, time_slots: int, cameras: int, seed: int) -> tuple[float, float]:
    """Mean (valid samples, sample slots) per frame through a sphere's occupancy grid (the renderer's sampling)."""
    gen = torch.Generator().manual_seed(seed)
    sphere = SphereDensity(radius)
    occupancy = sphere_occupancy(config, radius, time_slots, gen)
    t = 0.0 if time_slots > 1 else None
    counts, slots = [], []
    cams = sample_static_cameras(cameras, config.camera, gen)
    for i in range(cameras):
        rays = camera_rays(cams[i : i + 1], config.render_size, config.render_size,
                           config.render.bound, config.render.min_near)  # fmt: skip
        valid, slot_count = count_samples(sphere, rays, t, config, occupancy, gen)
        counts.append(valid)
        slots.append(slot_count)
    return sum(counts) / len(counts), sum(slots) / len(slots)


def arap_cost(field, frames: int, vertices: int) -> StepCost:
    """Peak bytes and FLOPs of the ARAP term's forward + backward (training/terms/arap.py) for `vertices` welded
    vertices at `frames` times: measured on icospheres of 642 and 2562 vertices, extrapolated linearly."""
    import trimesh

    from a124_core.training.terms.arap import ARAP, ARAPTermConfig

    measured = []
    for subdivisions in (3, 4):
        sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.5)
        term = ARAP(ARAPTermConfig(), sphere.vertices, sphere.faces)
        view, generator = SimpleNamespace(times=torch.linspace(0, 1, frames)), torch.Generator().manual_seed(0)
        ctx = SimpleNamespace(view=view, field=field, generator=generator)
        measured.append((term.rest.shape[0], measure(lambda t=term, c=ctx: t.losses(c)["arap"].backward())))
        field.zero_grad(set_to_none=True)
    (n0, c0), (n1, c1) = measured
    scale = (vertices - n0) / (n1 - n0)
    return StepCost(
        int(c0.peak_bytes + scale * (c1.peak_bytes - c0.peak_bytes)), int(c0.flops + scale * (c1.flops - c0.flops))
    )


def adam_state_bytes(field) -> int:
    """Parameters + gradients + Adam's exp_avg and exp_avg_sq, all fp32."""
    return 4 * parameter_bytes(field)


# ----------------------------------------------------------------------------- stages
def estimate(args) -> tuple[list[StageEstimate], dict]:
    name = args.preset or ("smoke" if args.tiny else "paper")
    path = PATHS[args.path] if args.path is not None else None
    configs = preset(name, args.representation)
    if args.no_field_checkpointing:
        configs = replace(
            configs,
            **{s: replace(getattr(configs, s), render=replace(getattr(configs, s).render, checkpoint_field=False))
               for s in ("static", "coarse", "refine")},
        )  # fmt: skip
    static_field = StaticField(configs.static.field)
    dynamic_field = configs.coarse.representation.build(static_field)
    info = {"preset": name}

    rows = []
    fake = None if args.tiny else FakeTensorMode(allow_non_fake_inputs=True)
    context = fake if fake is not None else torch.device("cpu")
    with context:
        priors = build_priors(args.tiny, configs, path.priors if path is not None else ())
        for prior in priors.values():
            set_vae_gradient_checkpointing(prior, args.vae_checkpointing)
    probed = [s for s in STAGES if s in args.stages or (s == "coarse" and "animate_mesh" in args.stages)]
    stages = {stage: probe_stage(stage, priors, configs, path) for stage in probed}  # real tensors
    views = {name: stage.views.draw(stage)[0] for name, stage in stages.items()}  # data-dependent: not in fake mode
    with context:
        ti = ti_cost(priors["sd"], args, configs.textual_inversion) if "ti" in args.stages else None
        costs = {name: prior_step_cost(stage, views[name]) for name, stage in stages.items()}
        weights = {
            "ti": weights_of([priors["sd"]]),
            "static": weights_of([priors["sd21"], priors["mvdream"]] if "mvdream" in priors else
                                 [priors["sd"], priors["zero123"]]),  # fmt: skip
            "coarse": weights_of([priors["video"], priors["zero123"]]),
            "refine": weights_of([priors["video"], priors["zero123"], priors["controlnet"]]),
        }
    if ti is not None:
        ti_steps = configs.textual_inversion.steps
        rows.append(StageEstimate("textual inversion", *weights["ti"], 0, 0, 0, ti, 0, 0.0, ti_steps, 1.0))

    mesh_field = configs.representation("deformation").build(static_field)
    rows_to_count = (  # (row, stage config and priors, field)
        ("static", "static", static_field),
        ("coarse", "coarse", dynamic_field),
        ("refine", "refine", dynamic_field),
        ("animate_mesh", "coarse", mesh_field),
    )
    for row, stage, field in rows_to_count:
        if row not in args.stages:
            continue
        c = getattr(configs, stage)
        t = None if stage == "static" else 0.5
        m = render_model(field, c, t, args.rays, args.object_radius)
        time_slots = 1 if stage == "static" else c.occupancy_slots
        valid, slots = valid_samples_per_frame(c, args.object_radius, time_slots, args.cameras, c.seed)
        frames = 1 if stage == "static" else c.time.num_frames
        pixels = c.render_size**2
        frames_per_chunk = min(frames, max(1, c.render.chunk_rays // pixels))  # a chunk spans frames (render_cameras)
        chunks_per_frame = -(-pixels // c.render.chunk_rays)
        calls = chunks_per_frame / frames_per_chunk  # render_rays calls per frame

        def per_frame(key: str, valid: float = valid, slots: float = slots, m: dict = m, n: float = calls) -> float:
            return n * m[f"{key}_per_call"] + valid * m[f"{key}_per_sample"] + slots * m[f"{key}_per_slot"]

        held = frames * per_frame("held")
        # The render backward's own peak: one chunk at a time (a chunk of part of a frame: central chunks are denser,
        # twice the mean; of whole frames: their mean), frames_per_chunk frames of it.
        dense = 2 if chunks_per_frame > 1 else 1
        # (At least 0: the linear fit can come out a little below the held bytes when the fused ops keep ~nothing.)
        transient = max(0.0, frames_per_chunk * (
            per_frame("peak", dense * valid, dense * slots) - per_frame("held", dense * valid, dense * slots)
        ) / chunks_per_frame)  # fmt: skip
        extra = 0
        if isinstance(field, Grid4DField):  # a deformation field's TV is on the rendered maps (in the render)
            held += frames * field.embeddings[0].numel() * 4  # the frames' blended tables (Grid4DField.at_times)
            transient = max(transient, parameter_bytes(field))  # the one knot gradient of the blend
            extra += temporal_tv_bytes(field, c.representation.temporal_tv.points)
        if stage == "refine":
            extra += parameter_bytes(field)  # the frozen condition copy of the coarse field
        flops = frames * per_frame("flops")
        if row == "animate_mesh":  # ARAP runs after the render: its graph is held until the backward too
            arap = arap_cost(field, frames, args.mesh_vertices)
            extra += arap.peak_bytes
            flops += arap.flops
        steps = c.steps
        schedule = stage == "static" or c.first_frame_supervision == "schedule"  # else every step is an SDS step
        reference_steps = min(steps, c.reference_warmup + (steps - c.reference_warmup) / c.reference_every)
        sds_fraction = 1.0 - reference_steps / steps if schedule else 1.0
        rows.append(
            StageEstimate(
                row.replace("_", " "),
                *weights[stage],
                adam_state_bytes(field),
                int(held),
                extra,
                costs[stage],
                int(transient),
                flops,
                steps,
                sds_fraction,
            )  # fmt: skip
        )
        info[f"{row}_valid_samples_per_frame"] = valid
        info[f"{row}_sample_slots_per_frame"] = slots
        for key in ("held", "peak"):
            info[f"{row}_render_{key}_bytes_per_valid_sample"] = m[f"{key}_per_sample"]
            info[f"{row}_render_{key}_bytes_per_slot"] = m[f"{key}_per_slot"]
    return rows, info


def ti_cost(sd, args, cfg=None) -> StepCost:
    """One textual-inversion iteration: its micro batches, text encoder and UNet forward + backward to the token."""
    micro = TIMicroStep(sd, args.tiny, cfg)
    try:
        cost = measure(micro)
        return StepCost(cost.peak_bytes, int(cost.flops * micro.micro_steps))
    finally:
        micro.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="paper (default) or fast; smoke with --tiny")
    parser.add_argument("--tiny", action="store_true", help="tiny real priors and the smoke preset (CI smoke test)")
    parser.add_argument(
        "--representation",
        choices=tuple(REPRESENTATIONS),
        default=DEFAULT_REPRESENTATION,
        help="the dynamic stages' field",
    )
    parser.add_argument("--path", choices=tuple(PATHS), default=None,
                        help="the stages of a path users run (paths.py): sets --representation, --stages")  # fmt: skip
    parser.add_argument("--vae-checkpointing", action="store_true", help="recompute VAE-encoder activations")
    parser.add_argument(
        "--no-field-checkpointing",
        action="store_true",
        help="store the field's activations (RenderConfig.checkpoint_field off)",
    )
    parser.add_argument(
        "--object-radius", type=float, default=0.4, help="radius of the sphere that stands for the object"
    )
    parser.add_argument(
        "--cameras", type=int, default=4, help="random cameras the valid-sample count is averaged over"
    )
    parser.add_argument(
        "--rays", type=int, default=128, help="rays of the smaller render call the field cost is fitted on"
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=("ti", *STAGES, "animate_mesh"),
        default=["ti", *STAGES],
        help="which steps to count (default the image-to-4D ones; animate_mesh: the mesh animation stage)",
    )
    parser.add_argument(
        "--mesh-vertices",
        type=int,
        default=100_000,
        help="welded vertices of the animated mesh (animate_mesh; 100 k ~ a 200 k-face model)",
    )
    parser.add_argument("--utilisation", type=float, default=0.5, help="fraction of the H100 dense fp16 peak")
    args = parser.parse_args()
    if args.path is not None:  # its representation; its stages unless --stages picks some of them
        path = PATHS[args.path]
        args.representation = path.representation
        wanted = ["animate_mesh"] if path.mesh_vertices else list(path.stages)
        given = [s for s in sys.argv if s in ("ti", *STAGES, "animate_mesh")]
        args.stages = [s for s in wanted if not given or s in args.stages]
        if path.mesh_vertices:
            args.mesh_vertices = path.mesh_vertices
    _quiet_libraries()
    torch.manual_seed(0)
    rows, info = estimate(args)

    print(
        f"estimate on CPU (torch {torch.__version__}); preset {info['preset']}; {args.representation}; priors "
        f"{'tiny real' if args.tiny else 'full-size fp16 (FakeTensors)'}; VAE checkpointing "
        f"{'on' if args.vae_checkpointing else 'off'}; field checkpointing "
        f"{'off' if args.no_field_checkpointing else 'on'}; object radius {args.object_radius}"
    )
    print(
        "| step | prior weights GiB (encoders) | field + Adam GiB | render graph GiB | TV + frozen GiB "
        "| prior step GiB | render backward GiB | peak GiB | TFLOP / SDS step | floor min |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    total = 0.0
    for r in rows:
        minutes = r.minutes(args.utilisation)
        total += minutes
        print(
            f"| {r.name} | {r.weights / GIB:.2f} ({r.encoders / GIB:.2f}) | {r.field_state / GIB:.2f} "
            f"| {r.render / GIB:.2f} | {r.extra / GIB:.2f} | {r.prior_step.peak_gib:.2f} "
            f"| {r.render_transient / GIB:.2f} | {r.peak / GIB:.2f} "
            f"| {(r.prior_step.flops + r.render_flops) / 1e12:.2f} | {minutes:.1f} |"
        )
    print(f"| total | | | | | | | | | {total:.1f} |")
    for key, value in info.items():
        if key != "preset":
            print(f"{key}: {value:,.0f}")


if __name__ == "__main__":
    main()
