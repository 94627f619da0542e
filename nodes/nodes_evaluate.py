"""Evaluate CLIP: CLIP-R/T/I/F of a scene's test orbit (paper Table 1) with a local CLIP model."""

from __future__ import annotations

import json

from comfy_api.v0_0_2 import io, ui

from .glue import (
    ANY_SCENE,
    CATEGORY,
    Reference,
    check_entries,
    list_model_dirs,
    resolve_entry,
    scene_input,
    torch_device,
)
from .scene_render import render_orbit


class A124_Evaluate(io.ComfyNode):
    """Scores the rendered test orbit with CLIP (R, T, I, F)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        clips = list_model_dirs(("animate124", "clip"), ("preprocessor_config.json",))
        return io.Schema(
            node_id="A124_Evaluate",
            display_name="Evaluate CLIP (Animate124)",
            category=f"{CATEGORY}/outputs",
            description="Renders the test orbit and scores it with CLIP (R, T, I, F as in the paper's Table 1).",
            is_output_node=True,
            inputs=[
                scene_input("scene", ANY_SCENE, "The scene to evaluate."),
                Reference.Input("reference", tooltip="The reference image (for CLIP-I)."),
                io.Combo.Input(
                    "clip_model", options=clips, tooltip="A transformers CLIPModel folder (paper: ViT-B/32)."
                ),
                io.String.Input("prompt", default="a panda is dancing", tooltip="The motion prompt (CLIP-T, CLIP-R)."),
                io.String.Input(
                    "candidates",
                    default="a dog is running\na cat is jumping",
                    multiline=True,
                    tooltip="Other prompts CLIP-R ranks against, one per line.",
                ),
                io.Int.Input("views", default=10, min=1, max=64, tooltip="Orbit views (SPEC 11: 10)."),
                io.Int.Input(
                    "frames",
                    default=64,
                    min=1,
                    max=512,
                    tooltip="Frames per view (static scenes: 1; CLIP-F then compares neighbouring views).",
                ),
                io.Int.Input("resolution", default=224, min=16, max=1024, step=8, tooltip="Render size."),
            ],
            outputs=[
                io.String.Output("scores_json", display_name="scores_json", tooltip="All scores as JSON."),
                io.Float.Output("clip_r", display_name="clip_r", tooltip="CLIP-R"),
                io.Float.Output("clip_t", display_name="clip_t", tooltip="CLIP-T"),
                io.Float.Output("clip_i", display_name="clip_i", tooltip="CLIP-I"),
                io.Float.Output("clip_f", display_name="clip_f", tooltip="CLIP-F"),
            ],
        )

    @classmethod
    def validate_inputs(cls, clip_model=None) -> bool | str:
        return check_entries(clip_model=(clip_model, "CLIP model"))

    @classmethod
    def execute(cls, scene, reference, clip_model, prompt, candidates, views, frames, resolution) -> io.NodeOutput:
        from a124_core.outputs.metrics import ClipEvaluator, ClipMetricsConfig

        orbit = render_orbit(scene, "test orbit", "albedo", int(views), int(frames), int(resolution))
        orbit = orbit.reshape(int(views), -1, *orbit.shape[1:])  # [V, F, H, W, 3]
        reference_video = orbit[0]
        if orbit.shape[1] == 1:  # a static scene: one frame per view; CLIP-F then compares neighbouring views
            orbit = orbit.transpose(0, 1)
        evaluator = ClipEvaluator(
            resolve_entry(clip_model, "CLIP model"), ClipMetricsConfig(device=str(torch_device()))
        )
        lines = [c.strip() for c in candidates.splitlines() if c.strip()]
        scores = evaluator.evaluate(orbit, reference.rgb.permute(1, 2, 0), prompt, lines, reference_video)
        text = json.dumps(scores.as_dict(), indent=1)
        return io.NodeOutput(text, scores.clip_r, scores.clip_t, scores.clip_i, scores.clip_f, ui=ui.PreviewText(text))
