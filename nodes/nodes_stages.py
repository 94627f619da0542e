"""Training stage nodes: static (step 1), coarse dynamic (step 2) and refine (step 3).

Each runs the library's stage trainer under `training_mode()` on cloned inputs, reports ComfyUI progress with a
preview of the reference view, writes checkpoints to output/animate124/checkpoints/<run_name>/ (also when the
user interrupts), and resumes from a checkpoint given in `resume_from`. ComfyUI caches the result while the
inputs stay the same, so re-queueing a finished graph does not train again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from comfy_api.v0_0_2 import io

from a124_core.presets import PRESETS
from a124_core.priors.base import PriorKind

from .glue import (
    CATEGORY,
    NOT_WIRED,
    PRIOR_TYPES,
    REFERENCES,
    Embedding,
    Reference,
    SceneDynamic,
    SceneRefined,
    SceneStatic,
    check_prompts,
    clone_tree,
    default_representation,
    first_error,
    representation_description,
    representation_name,
    representation_names,
    scene_input,
    torch_device,
    train_stage_node,
    upstream_digests,
)
from .output_files import check_run_name, resolve_output_file


def _reference(optional: bool = True) -> Any:
    return Reference.Input(
        "reference", optional=optional, tooltip="The reference image (Reference Image node); none for text-to-4D."
    )


def _reference_or_clip(tooltip: str) -> Any:
    """The optional reference input of the static and coarse stages: one image or a clip (Reference Video)."""
    return scene_input("reference", REFERENCES, tooltip, optional=True)


def _static_reference(reference: Any) -> Any:
    """The static stage's reference: the image, or the clip's first frame (cloned: the input is never changed)."""
    from a124_core.reference import ReferenceClip

    if reference is None:
        return None
    return clone_tree(reference.first_reference() if isinstance(reference, ReferenceClip) else reference)


def _common_inputs(prompt: str) -> list:
    return [
        io.String.Input("prompt", default=prompt, multiline=True, tooltip="Prompt of the text priors."),
        io.Combo.Input(
            "preset",
            options=list(PRESETS),
            default="paper",
            tooltip="paper: SPEC schedule; fast: under a third of the time (docs/presets.md); smoke: tiny install "
            "check; dream-in-4d: "
            "Dream-in-4D's schedules (text mode with MVDream; the deformation representation).",
        ),
        io.Int.Input("steps", default=0, min=0, max=1_000_000, tooltip="Iterations; 0 = the preset's."),
        io.Int.Input("training_seed", default=3407, min=0, max=2**31 - 1, tooltip="Seed of cameras, times and noise."),
    ]


def _prior(kind: PriorKind, name: str, tooltip: str) -> Any:
    return PRIOR_TYPES[kind].Input(name, optional=True, tooltip=tooltip)


def _run_inputs() -> list:
    return [
        io.String.Input(
            "negative_prompt", default="", optional=True, tooltip="Negative prompt (unconditional branch of CFG)."
        ),
        io.String.Input(
            "run_name",
            default="animate124",
            optional=True,
            tooltip="Checkpoints go to output/animate124/checkpoints/<run_name>/.",
        ),
        io.String.Input(
            "resume_from",
            default="",
            optional=True,
            tooltip="A checkpoint of this stage (path relative to output/animate124) to continue.",
        ),
    ]


def _outputs(scene: Any, scene_tooltip: str, preview_tooltip: str) -> list:
    return [
        scene.Output("scene", display_name="scene", tooltip=scene_tooltip),
        io.Image.Output("preview", display_name="preview", tooltip=preview_tooltip),
        io.String.Output("checkpoint", display_name="checkpoint", tooltip="The final checkpoint file."),
    ]


def check_resume(resume_from: str | None, stage: str) -> bool | str:
    """validate_inputs part shared by the stages: the checkpoint must exist and come from this stage."""
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


def stage_config(stage: str, preset_name: str, steps: int, seed: int, representation: str | None = None) -> Any:
    from a124_core.presets import preset

    config = preset(preset_name, representation or default_representation()).stage(stage)
    return replace(config, seed=int(seed), **({"steps": int(steps)} if steps else {}))


def _result(trained: tuple) -> io.NodeOutput:
    return io.NodeOutput(*trained)


class A124_StaticStage(io.ComfyNode):
    """Step 1: a static NeRF from the reference view with SD1.5 + Zero123 score distillation."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_StaticStage",
            display_name="Static Stage (Animate124)",
            category=f"{CATEGORY}/training",
            description="Step 1: fits a static NeRF to the reference view, with SD1.5 (view-dependent prompt) and "
            "Zero123 SDS for the unseen sides. Without priors it only reconstructs the reference view. Without a "
            "reference (text-to-4D): MVDream + the 2D prior (Dream-in-4D's static stage).",
            inputs=[
                *_common_inputs("a high-resolution DSLR image of a panda"),
                _reference_or_clip(
                    "The reference image (Reference Image), or a clip (Reference Video: its first frame is used); "
                    "none for text-to-4D."
                ),
                _prior(PriorKind.IMAGE_TEXT, "sd_prior", "2D image-text prior (SD1.5)."),
                _prior(PriorKind.IMAGE_POSE, "zero123_prior", "3D image-pose prior (Zero123-XL)."),
                _prior(
                    PriorKind.IMAGE_TEXT_MULTIVIEW,
                    "mvdream_prior",
                    "3D multi-view prior (MVDream Loader) of text mode: no reference image, no Zero123.",
                ),
                *_run_inputs(),
                io.String.Input(
                    "subject_word",
                    default="",
                    optional=True,
                    tooltip="Personalised 2D prior (DreamBooth / LoRA): its identifier, e.g. sks; left out of "
                    "MVDream's prompt (MVDream never saw it). Empty: the prompt goes to both as it is.",
                ),
            ],
            outputs=_outputs(SceneStatic, "The static scene for the coarse stage.", "The reference view rendered."),
        )

    @classmethod
    def validate_inputs(
        cls, prompt=None, run_name=None, resume_from: str = "", reference=NOT_WIRED, mvdream_prior=NOT_WIRED
    ) -> bool | str:
        if reference != NOT_WIRED and mvdream_prior != NOT_WIRED:
            return (
                "MVDream is the 3D prior of text mode (no reference image); with a reference image the 3D prior is "
                "Zero123. Unwire the reference or the MVDream prior."
            )
        return first_error(check_prompts(prompt=prompt), check_run_name(run_name), check_resume(resume_from, "static"))

    @classmethod
    def execute(
        cls,
        prompt,
        preset,
        steps,
        training_seed,
        reference=None,
        sd_prior=None,
        zero123_prior=None,
        mvdream_prior=None,
        negative_prompt="",
        run_name="animate124",
        resume_from="",
        subject_word="",
    ) -> io.NodeOutput:
        from a124_core.training.static_stage import StaticPriors, StaticStage

        return _result(
            train_stage_node(
                lambda: StaticStage(
                    stage_config("static", preset, steps, training_seed),
                    _static_reference(reference),
                    StaticPriors(sd=sd_prior, zero123=zero123_prior, mvdream=mvdream_prior),
                    prompt,
                    negative_prompt,
                    device=torch_device(),
                    subject_word=subject_word.strip() or None,
                ),
                run_name,
                resume_from,
            )
        )


class A124_CoarseStage(io.ComfyNode):
    """Step 2: a dynamic field from the static scene with text-to-video SDS, Zero123 on frame 0 and smoothness."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_CoarseStage",
            display_name="Coarse Dynamic Stage (Animate124)",
            category=f"{CATEGORY}/training",
            description="Step 2: turns the static scene into a dynamic one (a 4D grid, or a deformation field that "
            "exports as an animated mesh) and animates it with the video prior (motion prompt), keeping frame 0 on "
            "the reference with Zero123 and reconstruction losses. Without a reference: text-to-4D (video prior "
            "only).",
            inputs=[
                SceneStatic.Input("static_scene", tooltip="Result of the static stage (or Load Static Scene)."),
                *_common_inputs("a panda is dancing"),
                _reference_or_clip(
                    "The reference image (Reference Image), or a clip (Reference Video): video to 4D, every frame "
                    "reconstructed at its time and Zero123 conditioned on the frame of each view's time (use the "
                    "deformation representation; the video prior is then optional); none for text-to-4D."
                ),
                io.Combo.Input(
                    "representation",
                    options=representation_names(),
                    default=default_representation(),
                    optional=True,
                    tooltip=representation_description(),
                ),
                _prior(PriorKind.VIDEO_TEXT, "video_prior", "Video-text prior (ModelScope / Zeroscope)."),
                _prior(PriorKind.IMAGE_POSE, "zero123_prior", "Image-pose prior for frame 0."),
                *_run_inputs(),
            ],
            outputs=_outputs(SceneDynamic, "The dynamic scene for the refine stage.", "The reference view at t = 0."),
        )

    @classmethod
    def validate_inputs(cls, prompt=None, run_name=None, resume_from: str = "") -> bool | str:
        return first_error(check_prompts(prompt=prompt), check_run_name(run_name), check_resume(resume_from, "coarse"))

    @classmethod
    def execute(
        cls,
        static_scene,
        prompt,
        preset,
        steps,
        training_seed,
        reference=None,
        representation=None,
        video_prior=None,
        zero123_prior=None,
        negative_prompt="",
        run_name="animate124",
        resume_from="",
    ) -> io.NodeOutput:
        from a124_core.training.coarse_stage import CoarseStage, DynamicPriors

        return _result(
            train_stage_node(
                lambda: CoarseStage(
                    stage_config("coarse", preset, steps, training_seed, representation),
                    None if reference is None else clone_tree(reference),
                    static_scene,  # only read: the coarse stage builds its own dynamic field from it
                    DynamicPriors(video=video_prior, zero123=zero123_prior),
                    prompt,
                    negative_prompt,
                    device=torch_device(),
                ),
                run_name,
                resume_from,
                upstream_digests(static=static_scene),
            )
        )


class A124_RefineStage(io.ComfyNode):
    """Step 3: ControlNet-Tile x0 targets with the learned token on top of the coarse stage's losses."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="A124_RefineStage",
            display_name="Refine Stage (Animate124)",
            category=f"{CATEGORY}/training",
            description="Step 3: refines the dynamic scene's appearance with ControlNet-Tile and the learned token; "
            "the condition image comes from the coarse scene, left unchanged. Needs the coarse stage's scene (not a "
            "refined one).",
            inputs=[
                SceneDynamic.Input(
                    "dynamic_scene",
                    tooltip="Result of the coarse stage (or Load Dynamic Scene of a coarse checkpoint).",
                ),
                _reference(optional=False),
                *_common_inputs("a panda is dancing"),
                PRIOR_TYPES[PriorKind.IMAGE_CONTROL].Input("controlnet_prior", tooltip="ControlNet-Tile prior."),
                Embedding.Input("embedding", tooltip="The learned token (Textual Inversion or Load Embedding)."),
                io.String.Input(
                    "token_prompt",
                    default="a {token} is dancing",
                    tooltip="ControlNet UNet prompt; {token} is replaced by the learned token.",
                ),
                _prior(PriorKind.VIDEO_TEXT, "video_prior", "Video-text prior (keeps running)."),
                _prior(PriorKind.IMAGE_POSE, "zero123_prior", "Image-pose prior for frame 0."),
                *_run_inputs(),
            ],
            outputs=_outputs(SceneRefined, "The refined dynamic scene.", "The reference view at t = 0."),
        )

    @classmethod
    def validate_inputs(cls, prompt=None, token_prompt=None, run_name=None, resume_from: str = "") -> bool | str:
        if token_prompt is not None and "{token}" not in token_prompt:
            return f"token_prompt {token_prompt!r} must contain {{token}} where the learned token goes."
        # token_prompt holds the learned token, a word: only the motion prompt can be wordless
        return first_error(check_prompts(prompt=prompt), check_run_name(run_name), check_resume(resume_from, "refine"))

    @classmethod
    def execute(
        cls,
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
    ) -> io.NodeOutput:
        from a124_core.training.refine_stage import RefinePriors, RefineStage

        representation = representation_name(dynamic_scene.field)  # the refine stage continues what it is given
        return _result(
            train_stage_node(
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
                upstream_digests(coarse=dynamic_scene),
            )
        )
