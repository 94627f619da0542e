"""Step 3: semantic refinement with ControlNet-Tile (SPEC 1, 5): the coarse stage's terms plus the ControlNet term.

The refine stage continues the coarse scene it is given (trained in place) and adds `ControlNetTarget`, whose
frozen copy of that coarse scene renders the condition images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..priors.base import Prior
from .coarse_stage import ClipViews, DynamicPriors, as_scene, check_config, dynamic_terms
from .config import RefineStageConfig
from .representations import incompatible, representation_of
from .scene import Scene, frozen_copy
from .stage import Stage, slot_priors
from .terms.controlnet import ControlNetTarget, load_tokens


def require_coarse(scene: Scene) -> None:
    """The ControlNet condition must come from the step-2 (coarse) model, never from a refined one (SPEC 5)."""
    if scene.stage != "coarse":
        raise ValueError(
            f"The refine stage needs the coarse stage's result: its frozen copy renders the ControlNet condition "
            f"(SPEC 5), but got a scene written by the {scene.stage} stage. Pass the coarse scene (coarse."
            f"safetensors); to continue an interrupted refine run, resume from its refine_latest checkpoint."
        )


@dataclass
class RefinePriors(DynamicPriors):
    """The coarse stage's slots plus the image-control prior."""

    controlnet: Prior | None = None
    """ControlNet-Tile on an SD1.5 base."""


class RefineStage(Stage):
    """Continues the coarse dynamic field; the ControlNet term's frozen copy renders its condition images."""

    name = "refine"

    def __init__(
        self,
        config: RefineStageConfig,
        reference: Any,
        scene: Scene | str | Path,
        priors: RefinePriors | None = None,
        prompt: str = "",
        token_prompt: str = "",
        token_name: str | None = None,
        token_embedding: Tensor | str | Path | None = None,
        negative_prompt: str = "",
        device: str | torch.device | None = None,
        condition_scene: Scene | None = None,
    ):
        """
        Args:
            scene: the coarse stage's result (Scene, trained in place, or its checkpoint file).
            prompt: the motion prompt of the video prior ("a panda is dancing").
            token_prompt: the ControlNet UNet's prompt with the learned token ("a _panda_ is dancing").
            token_name, token_embedding: the textual-inversion token and its vectors [n, D] (or its
                `<name>.safetensors` file); None when the ControlNet's tokenizer already knows the token.
            condition_scene: the frozen coarse scene of the ControlNet condition (default: a copy of `scene`);
                nodes pass ComfyUI's unchanged input here and train a clone.
        """
        check_config(config, RefineStageConfig, self.name)
        coarse = as_scene(scene)
        if not coarse.is_dynamic:
            raise ValueError(
                "The refine stage continues the coarse (dynamic) stage's result, but got a static scene. Run the "
                "coarse stage on it first."
            )
        require_coarse(coarse)
        theirs, ours = representation_of(coarse.field).name, config.representation.name
        if theirs != ours:
            raise incompatible("representation", theirs, ours)
        slots = coarse.occupancy.time_slots
        if slots != config.occupancy_slots:
            raise incompatible("occupancy time slots (occupancy_slots)", slots, config.occupancy_slots)
        priors = priors or RefinePriors()
        extra, controlnet = (), getattr(priors, "controlnet", None)
        owned = condition_scene is None
        frozen = frozen_copy(coarse) if owned and controlnet is not None else condition_scene
        config.representation.continue_in_refine(coarse.field)  # after the copy: the condition is the coarse model
        if controlnet is not None:
            tokens = load_tokens(token_name, token_embedding, token_prompt)
            require_coarse(frozen)
            c, frames, suffix = config.controlnet, config.representation.frames_per_clip(config), config.prompt_suffix
            negative = negative_prompt
            extra = (ControlNetTarget(controlnet, c, token_prompt, negative, tokens, frozen, frames, suffix, owned),)
        terms = dynamic_terms(config, priors, prompt, negative_prompt, reference, extra)
        coarse.stage = "refine"
        schedule = config.first_frame_supervision == "schedule"
        views = config.representation.clip_sampler(config) or ClipViews()
        super().__init__(config, reference, coarse, terms, views, slot_priors(priors), device, schedule)

    @property
    def condition_scene(self) -> Scene | None:
        """The frozen coarse scene the ControlNet condition is rendered from (None without a ControlNet)."""
        term = next((t for t in self.terms if isinstance(t, ControlNetTarget)), None)
        return None if term is None else term.condition_scene


__all__ = ["RefinePriors", "RefineStage", "require_coarse"]
