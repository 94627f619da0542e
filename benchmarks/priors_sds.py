"""Time and memory of one score-distillation step per prior (SPEC 5).

Full size (default, needs CUDA): every prior is built from the architecture configs shipped in
`a124_core/priors/configs/` with random weights (no downloads) in fp16. `--tiny` (CPU): the tiny
random-weight models of `a124_core.priors.tiny`, loaded from disk through the real loaders.

One step = resize renders, VAE-encode (with grad), noise, batched-CFG prediction, SDS loss, backward to
the renders. Reports the median ms per step after warm-up and the peak memory (CUDA: peak allocated
during the prior's steps; CPU: the process's peak RSS so far, which only grows).

    python benchmarks/priors_sds.py                 # CUDA, full size
    python benchmarks/priors_sds.py --tiny          # CPU, tiny models
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a124_core.checkpoint import atomic_write_json
from a124_core.guidance.sds import SDSConfig, resize_to_prior, score_distillation, x0_reconstruction
from a124_core.priors.base import Prior
from a124_core.priors.zero123 import pose_embedding

PRIORS = ("sd15", "zero123_xl", "text_to_video_ms_1.7b", "controlnet_tile_sd15")
#: SPEC 1/5 settings per prior: (guidance scale, t range, renders per step, loss).
SETTINGS = {
    "sd15": (100.0, (0.2, 0.6), 1, "sds"),
    "zero123_xl": (5.0, (0.2, 0.6), 1, "sds"),
    "text_to_video_ms_1.7b": (100.0, (0.02, 0.98), 16, "sds"),
    "controlnet_tile_sd15": (7.5, (0.2, 0.8), 2, "x0"),
}


def load_prior(name: str, tiny_dir: Path | None, device: torch.device, controlnet_size: int) -> Prior:
    if tiny_dir is None:
        from a124_core.priors.full_size import random_prior

        return random_prior(name, device, image_size=controlnet_size if name == "controlnet_tile_sd15" else None)
    from a124_core.priors.controlnet_tile import ControlNetTilePrior
    from a124_core.priors.sd import StableDiffusionPrior
    from a124_core.priors.tiny import build_tiny_models
    from a124_core.priors.video import TextToVideoPrior
    from a124_core.priors.zero123 import Zero123Prior

    m = build_tiny_models(tiny_dir)
    if name == "sd15":
        return StableDiffusionPrior.from_pretrained(m.sd15, device=device)
    if name == "zero123_xl":
        return Zero123Prior.from_pretrained(m.zero123, device=device)
    if name == "text_to_video_ms_1.7b":
        return TextToVideoPrior.from_pretrained(m.video, device=device)
    return ControlNetTilePrior.from_pretrained(m.controlnet_tile, m.sd15, device=device)


def make_condition(name: str, prior, renders: torch.Tensor):
    if name == "sd15":
        return prior.view_dependent_condition("a high-resolution dslr image of a panda").at_azimuth(30.0)
    if name == "zero123_xl":
        ref = prior.reference_condition(torch.rand(1, 3, 256, 256, device=prior.device))
        return prior.pose_condition(ref, pose_embedding(torch.tensor([80.0]), torch.tensor([30.0])))
    if name == "text_to_video_ms_1.7b":
        return prior.text_condition("a panda is dancing, high-resolution, 8k, good quality")
    tokens = {"<panda>": torch.randn(1, prior.text_encoder.get_input_embeddings().weight.shape[1])}
    control = resize_to_prior(renders.detach(), prior.image_size)  # the ControlNet term resizes its control images
    return prior.control_condition(prior.text_condition("a <panda> is dancing", tokens=tokens), control)


def bench(name: str, args: argparse.Namespace, device: torch.device, tiny_dir: Path | None) -> dict:
    scale, t_range, count, loss_kind = SETTINGS[name]
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    prior = load_prior(name, tiny_dir, device, args.controlnet_size)
    load_s = time.perf_counter() - t0
    renders = torch.rand(count, 3, args.render_size, args.render_size, device=device, requires_grad=True)
    condition = make_condition(name, prior, renders)
    cfg = SDSConfig(guidance_scale=scale, t_range=t_range, grad_clip=1.0 if "video" in name else None)
    step_fn = score_distillation if loss_kind == "sds" else x0_reconstruction
    gen = torch.Generator(device=device).manual_seed(0)
    times = []
    for i in range(args.warmup + args.steps):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = step_fn(prior, renders, condition, cfg, generator=gen)
        out[f"loss_{loss_kind}"].backward()
        renders.grad = None
        if cuda:
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append((time.perf_counter() - start) * 1000)
    peak = (
        torch.cuda.max_memory_allocated(device) / 2**30
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    row = {
        "prior": name,
        "image_size": prior.image_size,
        "renders": count,
        "ms_per_step_median": round(statistics.median(times), 2),
        "ms_per_step_min": round(min(times), 2),
        "peak_gib": round(peak, 3),
        "peak_kind": "cuda_max_allocated" if cuda else "process_max_rss",
        "load_s": round(load_s, 2),
    }
    del prior, condition, renders
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU run with the tiny random-weight models")
    parser.add_argument("--priors", default=",".join(PRIORS), help=f"comma-separated subset of {','.join(PRIORS)}")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per prior (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps per prior")
    parser.add_argument("--render-size", type=int, default=128, help="render resolution fed to SDS (SPEC 1: 128)")
    parser.add_argument("--controlnet-size", type=int, default=1024, help="ControlNet-Tile size: 1024 (SPEC) or 512")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: 1 with --tiny, else torch's choice)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    names = [n.strip() for n in args.priors.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PRIORS))
    if unknown:
        parser.error(f"unknown priors {unknown}; choose from {list(PRIORS)}")
    if args.threads or args.tiny:
        torch.set_num_threads(args.threads or 1)  # tiny models: one thread gives stable numbers on shared CPUs
    if args.tiny:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        parser.error("full-size priors need CUDA; use --tiny on CPU")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tiny_dir = Path(tmp) / "models" if args.tiny else None
        for name in names:
            row = bench(name, args, device, tiny_dir)
            rows.append(row)
            print(json.dumps(row), flush=True)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\n{label}, torch {torch.__version__}, {'tiny' if args.tiny else 'full-size random-weight'} priors")
    print(f"{'prior':<24}{'size':>12}{'renders':>9}{'ms/step':>10}{'peak GiB':>10}")
    for r in rows:
        print(
            f"{r['prior']:<24}{r['image_size']!s:>12}{r['renders']:>9}{r['ms_per_step_median']:>10.1f}{r['peak_gib']:>10.3f}"
        )
    if args.json:
        atomic_write_json(args.json, {"device": label, "rows": rows})


if __name__ == "__main__":
    main()
