"""Training stage nodes: static (step 1), coarse dynamic (step 2) and refine (step 3).

Each runs the library's stage trainer under `training_mode()` on cloned inputs, reports ComfyUI progress with a
preview of the reference view, writes checkpoints to output/animate124/checkpoints/<run_name>/ (also when the
user interrupts), and resumes from a checkpoint given in `resume_from`. ComfyUI caches the result while the
inputs stay the same, so re-queueing a finished graph does not train again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from a124_core.presets import PRESETS
from a124_core.priors.base import PriorKind
from a124_core.training.representations import DEFAULT_REPRESENTATION, REPRESENTATIONS

from .glue import (
    CATEGORY,
    EMBEDDING,
    PRIOR_TYPES,
    REFERENCE,
    SCENE_DYNAMIC,
    SCENE_REFINED,
    SCENE_STATIC,
    Progress,
    clone_tree,
    output_dir,
    resolve_output_file,
    torch_device,
    training_mode,
)

REFERENCE_INPUT = {
    "reference": (REFERENCE, {"tooltip": "The reference image (Reference Image node); none for text-to-4D."})
}
REPRESENTATION_INPUT = {
    "representation": (
        list(REPRESENTATIONS),
        {
            "default": DEFAULT_REPRESENTATION,
            "tooltip": " ".join(f"{name}: {r.description}." for name, r in REPRESENTATIONS.items()),
        },
    )
}


def _common_inputs(prompt: str) -> dict[str, Any]:
    return {
        "prompt": ("STRING", {"default": prompt, "multiline": True, "tooltip": "Prompt of the text priors."}),
        "preset": (
            list(PRESETS),
            {
                "default": "paper",
                "tooltip": "paper: SPEC schedule; fast: about half the time; smoke: tiny install check.",
            },
        ),
        "steps": ("INT", {"default": 0, "min": 0, "max": 1_000_000, "tooltip": "Iterations; 0 = the preset's."}),
        "training_seed": (
            "INT",
            {"default": 3407, "min": 0, "max": 2**31 - 1, "tooltip": "Seed of cameras, times and noise."},
        ),
    }


def _run_inputs() -> dict[str, Any]:
    return {
        "negative_prompt": ("STRING", {"default": "", "tooltip": "Negative prompt (unconditional branch of CFG)."}),
        "run_name": (
            "STRING",
            {"default": "animate124", "tooltip": "Checkpoints go to output/animate124/checkpoints/<run_name>/."},
        ),
        "resume_from": (
            "STRING",
            {"default": "", "tooltip": "A checkpoint of this stage (path relative to output/animate124) to continue."},
        ),
    }


def check_resume(resume_from: str, stage: str) -> bool | str:
    """VALIDATE_INPUTS part shared by the stages: the checkpoint must exist and come from this stage."""
    from a124_core.training.scene import describe, read_header, resumable_error

    if not resume_from or not resume_from.strip():
        return True
    try:
        meta = read_header(resolve_output_file(resume_from, "Checkpoint"))
    except (FileNotFoundError, OSError, ValueError) as err:
        return str(err)
    error = resumable_error(meta, stage)
    if error:
        return f"{resume_from} ({describe(meta)}): {error}. Pick this stage's _latest file."
    return True


def stage_config(
    stage: str, preset_name: str, steps: int, seed: int, representation: str = DEFAULT_REPRESENTATION
) -> Any:
    from a124_core.presets import preset

    config = preset(preset_name, representation).stage(stage)
    return replace(config, seed=int(seed), **({"steps": int(steps)} if steps else {}))


def train_stage_node(make_stage: Any, run_name: str, resume_from: str) -> tuple[Any, Any, str]:
    """Build the stage under training mode, train it with ComfyUI progress (an interrupt leaves
    `<stage>_latest.safetensors` to resume from), return (scene, preview [1, H, W, 3], checkpoint path)."""
    from a124_core.training.runner import TrainingCancelled, checkpoint_path, train

    folder = output_dir("checkpoints", run_name.strip() or "animate124")
    resume = resolve_output_file(resume_from, "Checkpoint") if resume_from.strip() else None
    with training_mode():
        stage = make_stage()
        progress = Progress(stage.config.steps)
        try:
            scene = train(stage, progress.callbacks(), folder, resume)
        except TrainingCancelled:
            progress.raise_interrupt()
            raise
        preview = stage.preview()[None]
    return (scene, preview, str(checkpoint_path(folder, stage.name, final=True)))


class _StageNode:
    """What the three stage nodes share: where they sit, what they are called and what they return."""

    CATEGORY = f"{CATEGORY}/training"
    FUNCTION = "train"
    RETURN_NAMES = ("scene", "preview", "checkpoint")


class A124_StaticStage(_StageNode):
    """Step 1: a static NeRF from the reference view with SD1.5 + Zero123 score distillation."""

    DESCRIPTION = (
        "Step 1: fits a static NeRF to the reference view, with SD1.5 (view-dependent prompt) and Zero123 SDS for the "
        "unseen sides. Without priors it only reconstructs the reference view."
    )
    RETURN_TYPES = (SCENE_STATIC, "IMAGE", "STRING")
    OUTPUT_TOOLTIPS = (
        "The static scene for the coarse stage.",
        "The reference view rendered.",
        "The final checkpoint file.",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": _common_inputs("a high-resolution DSLR image of a panda"),
            "optional": {
                **REFERENCE_INPUT,
                "sd_prior": (PRIOR_TYPES[PriorKind.IMAGE_TEXT], {"tooltip": "2D image-text prior (SD1.5)."}),
                "zero123_prior": (PRIOR_TYPES[PriorKind.IMAGE_POSE], {"tooltip": "3D image-pose prior (Zero123-XL)."}),
                **_run_inputs(),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, resume_from: str = "") -> bool | str:
        return check_resume(resume_from, "static")

    def train(
        self,
        prompt,
        preset,
        steps,
        training_seed,
        reference=None,
        sd_prior=None,
        zero123_prior=None,
        negative_prompt="",
        run_name="animate124",
        resume_from="",
    ):
        from a124_core.training.static_stage import StaticPriors, StaticStage

        return train_stage_node(
            lambda: StaticStage(
                stage_config("static", preset, steps, training_seed),
                None if reference is None else clone_tree(reference),
                StaticPriors(sd=sd_prior, zero123=zero123_prior),
                prompt,
                negative_prompt,
                device=torch_device(),
            ),
            run_name,
            resume_from,
        )


class A124_CoarseStage(_StageNode):
    """Step 2: a dynamic field from the static scene with text-to-video SDS, Zero123 on frame 0 and smoothness."""

    DESCRIPTION = (
        "Step 2: turns the static scene into a dynamic one (a 4D grid, or a deformation field that exports as an "
        "animated mesh) and animates it with the video prior (motion prompt), keeping frame 0 on the reference "
        "with Zero123 and reconstruction losses. Without a reference: text-to-4D (video prior only)."
    )
    RETURN_TYPES = (SCENE_DYNAMIC, "IMAGE", "STRING")
    OUTPUT_TOOLTIPS = (
        "The dynamic scene for the refine stage.",
        "The reference view at t = 0.",
        "The final checkpoint file.",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "static_scene": (SCENE_STATIC, {"tooltip": "Result of the static stage (or Load Static Scene)."}),
                **_common_inputs("a panda is dancing"),
            },
            "optional": {
                **REFERENCE_INPUT,
                **REPRESENTATION_INPUT,
                "video_prior": (
                    PRIOR_TYPES[PriorKind.VIDEO_TEXT],
                    {"tooltip": "Video-text prior (ModelScope / Zeroscope)."},
                ),
                "zero123_prior": (PRIOR_TYPES[PriorKind.IMAGE_POSE], {"tooltip": "Image-pose prior for frame 0."}),
                **_run_inputs(),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, resume_from: str = "") -> bool | str:
        return check_resume(resume_from, "coarse")

    def train(
        self,
        static_scene,
        prompt,
        preset,
        steps,
        training_seed,
        reference=None,
        representation=DEFAULT_REPRESENTATION,
        video_prior=None,
        zero123_prior=None,
        negative_prompt="",
        run_name="animate124",
        resume_from="",
    ):
        from a124_core.training.coarse_stage import CoarseStage, DynamicPriors

        return train_stage_node(
            lambda: CoarseStage(
                stage_config("coarse", preset, steps, training_seed, representation),
                None if reference is None else clone_tree(reference),
                static_scene,  # only read: the coarse stage builds its own 4D grid from it
                DynamicPriors(video=video_prior, zero123=zero123_prior),
                prompt,
                negative_prompt,
                device=torch_device(),
            ),
            run_name,
            resume_from,
        )


class A124_RefineStage(_StageNode):
    """Step 3: ControlNet-Tile x0 targets with the learned token on top of the coarse stage's losses."""

    DESCRIPTION = (
        "Step 3: refines the dynamic scene's appearance with ControlNet-Tile and the learned token; the condition "
        "image comes from the coarse scene, left unchanged. Needs the coarse stage's scene (not a refined one)."
    )
    RETURN_TYPES = (SCENE_REFINED, "IMAGE", "STRING")
    OUTPUT_TOOLTIPS = ("The refined dynamic scene.", "The reference view at t = 0.", "The final checkpoint file.")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "dynamic_scene": (
                    SCENE_DYNAMIC,
                    {"tooltip": "Result of the coarse stage (or Load Dynamic Scene of a coarse checkpoint)."},
                ),
                **REFERENCE_INPUT,
                **_common_inputs("a panda is dancing"),
                "controlnet_prior": (PRIOR_TYPES[PriorKind.IMAGE_CONTROL], {"tooltip": "ControlNet-Tile prior."}),
                "embedding": (EMBEDDING, {"tooltip": "The learned token (Textual Inversion or Load Embedding)."}),
                "token_prompt": (
                    "STRING",
                    {
                        "default": "a {token} is dancing",
                        "tooltip": "ControlNet UNet prompt; {token} is replaced by the learned token.",
                    },
                ),
            },
            "optional": {
                "video_prior": (PRIOR_TYPES[PriorKind.VIDEO_TEXT], {"tooltip": "Video-text prior (keeps running)."}),
                "zero123_prior": (PRIOR_TYPES[PriorKind.IMAGE_POSE], {"tooltip": "Image-pose prior for frame 0."}),
                **_run_inputs(),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, token_prompt: str, resume_from: str = "") -> bool | str:
        if "{token}" not in token_prompt:
            return f"token_prompt {token_prompt!r} must contain {{token}} where the learned token goes."
        return check_resume(resume_from, "refine")

    def train(
        self,
        dynamic_scene,
        reference,
        prompt,
        preset,
        steps,
        training_seed,
        controlnet_prior,
        embedding,
        token_prompt,
        video_prior=None,
        zero123_prior=None,
        negative_prompt="",
        run_name="animate124",
        resume_from="",
    ):
        from a124_core.training.refine_stage import RefinePriors, RefineStage
        from a124_core.training.representations import representation_of

        representation = representation_of(dynamic_scene.field).name  # the refine stage continues what it is given
        return train_stage_node(
            lambda: RefineStage(
                stage_config("refine", preset, steps, training_seed, representation),
                clone_tree(reference),
                clone_tree(dynamic_scene),  # trained; the input itself is only read, as the frozen condition
                RefinePriors(video=video_prior, zero123=zero123_prior, controlnet=controlnet_prior),
                prompt,
                token_prompt.replace("{token}", embedding.token),
                embedding.token,
                embedding.vectors,
                negative_prompt,
                device=torch_device(),
                condition_scene=dynamic_scene,
            ),
            run_name,
            resume_from,
        )


NODE_CLASS_MAPPINGS = {
    "A124_StaticStage": A124_StaticStage,
    "A124_CoarseStage": A124_CoarseStage,
    "A124_RefineStage": A124_RefineStage,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "A124_StaticStage": "Static Stage (Animate124)",
    "A124_CoarseStage": "Coarse Dynamic Stage (Animate124)",
    "A124_RefineStage": "Refine Stage (Animate124)",
}
