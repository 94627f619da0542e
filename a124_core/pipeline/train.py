"""Training a prepared run: textual inversion, then the static, coarse and refine stages through the stage runner."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..console import ConsoleProgress
from ..training.scene import STAGES
from .prepare import PreparedRun


def train_all(run: PreparedRun) -> Any:
    """Textual inversion, then the static, coarse and refine stages; returns the last stage's scene. Text-to-4D
    (no reference) stops after the coarse stage: textual inversion and refinement need an image. MVDream, when
    loaded, joins the static stage with the prompt minus the run's token (a personalised 2D prior's identifier)."""
    from ..training.coarse_stage import CoarseStage, DynamicPriors
    from ..training.refine_stage import RefinePriors, RefineStage
    from ..training.runner import Callbacks, run_stage
    from ..training.static_stage import StaticPriors, StaticStage

    p, priors, resume, summary = run.prompts, run.priors, run.settings.resume, run.summary
    text_only = run.reference is None
    if not text_only:
        token_file = run.timed("textual_inversion", lambda: textual_inversion(run))
        summary.outputs["embedding"] = str(token_file)

    def stage(name: str, make: Any) -> Any:
        callbacks = Callbacks(on_progress=ConsoleProgress(name, run.out / "previews"), should_cancel=run.should_cancel)
        return run.timed(name, lambda: run_stage(name, make, run.checkpoints, resume, callbacks))

    c, device = run.preset, run.device
    zero123 = None if text_only else priors["zero123"]
    static_priors = StaticPriors(priors["sd"], zero123, priors.get("mvdream"))
    static = stage(
        "static",
        lambda: StaticStage(c.static, run.reference, static_priors, p.static, device=device, subject_word=p.token),
    )
    coarse_priors = DynamicPriors(priors["video"], zero123)
    coarse = stage(
        "coarse", lambda: CoarseStage(c.coarse, run.reference, static, coarse_priors, p.motion, device=device)
    )
    trained, scene = (("static", "coarse") if text_only else STAGES), coarse
    if not text_only:  # the refine stage corrects drift away from a reference image: there is none without one
        refine_priors = RefinePriors(priors["video"], priors["zero123"], priors["controlnet"])
        scene = stage(
            "refine",
            lambda: RefineStage(
                c.refine, run.reference, coarse, refine_priors, p.motion, p.refine, p.token, token_file, device=device
            ),
        )
    for name in trained:
        summary.outputs[f"checkpoint_{name}"] = str(run.checkpoints / f"{name}.safetensors")
    return scene


def textual_inversion(run: PreparedRun) -> Path:
    """The learned token's file (`<out>/embeddings/<token>.safetensors`), trained unless a resume finds it."""
    from ..textual_inversion.trainer import train_textual_inversion
    from ..training.runner import Callbacks

    p = run.prompts
    embedding_file = run.out / "embeddings" / f"{p.token}.safetensors"
    checkpoint = run.checkpoints / "textual_inversion_latest.safetensors"
    if run.settings.resume and embedding_file.is_file():
        return embedding_file
    config = replace(run.preset.textual_inversion, token=p.token, initializer=p.initializer)
    sd = run.priors["sd"].to(run.device)
    result = train_textual_inversion(
        sd,
        run.reference,
        config,
        output_dir=embedding_file.parent,
        checkpoint_path=checkpoint,
        resume_from=checkpoint if run.settings.resume and checkpoint.is_file() else None,
        callbacks=Callbacks(on_progress=ConsoleProgress("textual_inversion"), should_cancel=run.should_cancel),
    )
    sd.to("cpu")
    return result.path


__all__ = ["textual_inversion", "train_all"]
