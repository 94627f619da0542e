"""Time and memory of every step of the pipeline at paper (or fast) settings.

    python benchmarks/gpu_pipeline.py                      # CUDA, full-size random-weight priors, paper preset
    python benchmarks/gpu_pipeline.py --preset fast
    python benchmarks/gpu_pipeline.py --tiny --iters 3     # CPU smoke run: tiny priors, smoke preset

Full-size priors are built from the architecture configs shipped in a124_core/priors/configs/ with random
weights (no downloads; the values of the weights do not change the timing). Each stage runs `--warmup` + `--iters`
iterations through the real training loop; the time of an iteration is synchronised wall time, the reported
figure the median after warm-up. Projected time = median x the preset's iterations. Peak memory is
torch.cuda.max_memory_allocated per stage (CPU: the process's peak RSS).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from step_inputs import synthetic_reference  # noqa: E402

from a124_core.presets import preset  # noqa: E402
from a124_core.priors.memory import set_channels_last  # noqa: E402
from a124_core.textual_inversion.trainer import train_textual_inversion  # noqa: E402
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors  # noqa: E402
from a124_core.training.config import with_steps  # noqa: E402
from a124_core.training.refine_stage import RefinePriors, RefineStage  # noqa: E402
from a124_core.training.runner import Callbacks, train  # noqa: E402
from a124_core.training.static_stage import StaticPriors, StaticStage  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class StepTimer:
    """Progress callback that records synchronised per-iteration wall times."""

    def __init__(self, device: torch.device):
        self.device, self.times, self.last = device, [], None

    def __call__(self, step, total, losses, preview) -> None:
        sync(self.device)
        now = time.perf_counter()
        if self.last is not None:
            self.times.append(now - self.last)
        self.last = now


def load_priors(args, device: torch.device):
    if args.tiny:
        from a124_core.priors.controlnet_tile import ControlNetTilePrior
        from a124_core.priors.sd import StableDiffusionPrior
        from a124_core.priors.tiny import build_tiny_models
        from a124_core.priors.video import TextToVideoPrior
        from a124_core.priors.zero123 import Zero123Prior

        tiny = build_tiny_models(Path(tempfile.mkdtemp(prefix="a124-bench-")))
        return {
            "sd": StableDiffusionPrior.from_pretrained(tiny.sd15, device=device),
            "zero123": Zero123Prior.from_pretrained(tiny.zero123, device=device),
            "video": TextToVideoPrior.from_pretrained(tiny.video, device=device),
            "controlnet": ControlNetTilePrior.from_pretrained(tiny.controlnet_tile, tiny.sd15, device=device),
        }
    from a124_core.priors.full_size import random_prior

    return {
        "sd": random_prior("sd15", device),
        "zero123": random_prior("zero123_xl", device),
        "video": random_prior("text_to_video_ms_1.7b", device),
        "controlnet": random_prior("controlnet_tile_sd15", device),
    }


def bench_stage(name, make_stage, config, args, device):
    steps = args.warmup + args.iters
    loop = replace(
        config.loop, checkpoint_every=0, progress_every=1, preview_every=0, vae_checkpointing=args.vae_checkpointing
    )
    render = replace(config.render, checkpoint_field=not args.no_field_checkpointing)
    stage = make_stage(replace(with_steps(config, steps), loop=loop, render=render))
    timer = StepTimer(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    timer.last = time.perf_counter()
    scene = train(stage, Callbacks(on_progress=timer))
    per_iter = statistics.median(timer.times[args.warmup :] or timer.times)
    return scene, per_iter, peak_gb(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="paper or fast (default paper; smoke with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="tiny priors on any device (CI smoke test)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--vae-checkpointing",
        choices=("auto", "on", "off"),
        default="auto",
        help="recompute VAE-encoder activations in the backward pass (auto: on for GPUs under 40 GiB)",
    )
    parser.add_argument("--channels-last", action="store_true", help="NHWC weights for the 2D priors (A/B)")
    parser.add_argument(
        "--no-field-checkpointing", action="store_true", help="store the field's activations (memory / time A/B)"
    )
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = args.preset or ("smoke" if args.tiny else "paper")
    if not args.tiny and device.type != "cuda":
        parser.error("full-size priors need a CUDA device; use --tiny on CPU")
    configs = preset(name)
    reference = synthetic_reference()
    priors = load_priors(args, device)
    for prior in priors.values():
        set_channels_last(prior, args.channels_last)
    rows = []

    ti_steps = args.warmup + args.iters
    ti_config = replace(configs.textual_inversion, steps=ti_steps, checkpoint_every=0, preview_every=0)
    timer = StepTimer(device)
    timer.last = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_textual_inversion(priors["sd"], reference, ti_config, callbacks=Callbacks(on_progress=timer))
    ti_ms = statistics.median(timer.times[args.warmup :] or timer.times)
    rows.append(("textual inversion", ti_ms, configs.textual_inversion.steps, peak_gb(device)))

    static, ms, mem = bench_stage(
        "static",
        lambda c: StaticStage(
            c,
            reference,
            StaticPriors(priors["sd"], priors["zero123"]),
            "a high-resolution DSLR image of a toy",
            device=device,
        ),
        configs.static,
        args,
        device,
    )
    rows.append(("static", ms, configs.static.steps, mem))
    coarse, ms, mem = bench_stage(
        "coarse",
        lambda c: CoarseStage(
            c, reference, static, DynamicPriors(priors["video"], priors["zero123"]), "a toy is dancing", device=device
        ),
        configs.coarse,
        args,
        device,
    )
    rows.append(("coarse", ms, configs.coarse.steps, mem))
    token = torch.randn(1, priors["controlnet"].text_encoder.get_input_embeddings().weight.shape[1])
    _, ms, mem = bench_stage(
        "refine",
        lambda c: RefineStage(
            c,
            reference,
            coarse,
            RefinePriors(priors["video"], priors["zero123"], priors["controlnet"]),
            "a toy is dancing",
            token_prompt="a _toy_ is dancing",
            token_name="_toy_",
            token_embedding=token,
            device=device,
        ),
        configs.refine,
        args,
        device,
    )
    rows.append(("refine", ms, configs.refine.steps, mem))

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    kind = "tiny" if args.tiny else "full-size random"
    print(
        f"device: {device_name}; torch {torch.__version__}; preset {name}; priors {kind}; "
        f"VAE checkpointing {args.vae_checkpointing}; "
        f"field checkpointing {'off' if args.no_field_checkpointing else 'on'}; "
        f"channels-last {'on' if args.channels_last else 'off'}"
    )
    print("| step | ms / iteration | iterations | projected min | peak memory (GB) |")
    print("|---|---|---|---|---|")
    total = 0.0
    for step, seconds, iterations, memory in rows:
        minutes = seconds * iterations / 60
        total += minutes
        print(f"| {step} | {seconds * 1000:.1f} | {iterations} | {minutes:.1f} | {memory:.2f} |")
    print(f"| total | | | {total:.1f} | |")


if __name__ == "__main__":
    main()
