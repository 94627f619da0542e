"""Wall time of the three training stages with the tiny random priors (an installation check and a CPU budget).

    python benchmarks/stages_smoke.py                       # smoke preset, CPU (or CUDA when present)
    python benchmarks/stages_smoke.py --steps 20            # more steps per stage
    python benchmarks/stages_smoke.py --models /tmp/tiny    # reuse tiny models built before

Prints a Markdown table: seconds per stage and milliseconds per step (reference and SDS steps mixed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PIL import Image  # noqa: E402

from a124_core.priors.controlnet_tile import ControlNetTilePrior  # noqa: E402
from a124_core.priors.sd import StableDiffusionPrior  # noqa: E402
from a124_core.priors.tiny import build_tiny_models  # noqa: E402
from a124_core.priors.video import TextToVideoPrior  # noqa: E402
from a124_core.priors.zero123 import Zero123Prior  # noqa: E402
from a124_core.reference import ReferenceConfig, build_reference  # noqa: E402
from a124_core.training.coarse_stage import CoarseStage, DynamicPriors  # noqa: E402
from a124_core.presets import preset  # noqa: E402
from a124_core.training.runner import train  # noqa: E402
from a124_core.training.refine_stage import RefineStage  # noqa: E402
from a124_core.training.static_stage import StaticPriors, StaticStage  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "examples" / "panda-dance" / "rgba.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=EXAMPLE, help="RGBA reference image")
    parser.add_argument("--models", type=Path, default=None, help="folder for the tiny models (default: a temp dir)")
    parser.add_argument("--steps", type=int, default=None, help="steps per stage (default: the smoke preset's)")
    args = parser.parse_args()
    if not args.image.is_file():
        raise FileNotFoundError(f"Reference image {args.image} not found; pass --image <rgba.png>")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    models = build_tiny_models(args.models or Path(tempfile.mkdtemp(prefix="a124-tiny-")))
    p = preset("smoke")
    configs = {"static": p.static, "coarse": p.coarse, "refine": p.refine}
    if args.steps is not None:
        configs = {k: replace(v, steps=args.steps) for k, v in configs.items()}
    frames = p.coarse.time.num_frames
    sd = StableDiffusionPrior.from_pretrained(models.sd15, device=device)
    zero123 = Zero123Prior.from_pretrained(models.zero123, device=device)
    video = TextToVideoPrior.from_pretrained(models.video, TextToVideoPrior.Config(num_frames=frames), device=device)
    controlnet = ControlNetTilePrior.from_pretrained(models.controlnet_tile, models.sd15, device=device)
    reference = build_reference(Image.open(args.image), config=ReferenceConfig(size=64, ti_size=64))
    token = torch.randn(1, controlnet.text_encoder.get_input_embeddings().weight.shape[1])
    out = Path(tempfile.mkdtemp(prefix="a124-stages-"))
    rows = []

    def run(name, stage):
        start = time.perf_counter()
        scene = train(stage, checkpoint_dir=out)
        seconds = time.perf_counter() - start
        rows.append((name, stage.config.steps, seconds))
        return scene

    static = run(
        "static", StaticStage(configs["static"], reference, StaticPriors(sd, zero123), "a panda", device=device)
    )
    coarse = run(
        "coarse",
        CoarseStage(
            configs["coarse"], reference, static, DynamicPriors(video, zero123), "a panda is dancing", device=device
        ),
    )
    run(
        "refine",
        RefineStage(
            configs["refine"],
            reference,
            coarse,
            DynamicPriors(video, zero123, controlnet),
            "a panda is dancing",
            token_prompt="a _panda_ is dancing",
            token_name="_panda_",
            token_embedding=token,
            device=device,
        ),
    )
    print(f"device: {device}, threads: {torch.get_num_threads()}, checkpoints in {out}\n")
    print("| stage | steps | seconds | ms / step |\n|---|---|---|---|")
    for name, steps, seconds in rows:
        print(f"| {name} | {steps} | {seconds:.1f} | {1000 * seconds / steps:.0f} |")


if __name__ == "__main__":
    main()
