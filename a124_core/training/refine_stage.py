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
from .representations import representation_of
from .scene import Scene
from .stage import Stage
from .terms.controlnet import ControlNetTarget, frozen_copy, load_tokens, require_coarse


@dataclass
class RefinePriors(DynamicPriors):
    """The coarse stage's slots plus the image-control prior."""

    controlnet: Prior | None = None
    """ControlNet-Tile on an SD1.5 base."""


class RefineStage(Stage):
    """Continues the coarse Grid4DField; the ControlNet term's frozen copy renders its condition images."""

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
        representation = representation_of(coarse.field)
        checks = [
            ("representation", representation, config.representation),
            ("occupancy time slots (occupancy_slots)", coarse.occupancy.time_slots, config.occupancy_slots),
        ]
        if representation == "grid4d":
            checks.append(("time knots (num_knots)", coarse.field.num_knots, config.num_knots))
        for what, theirs, ours in checks:
            if theirs != ours:
                raise ValueError(
                    f"Incompatible scene: it has {theirs} {what} but the refine config has {ours}; use the config the "
                    f"coarse stage was trained with."
                )
        priors = priors or RefinePriors()
        controlnet = getattr(priors, "controlnet", None)
        extra = ()
        if controlnet is not None:
            tokens = load_tokens(token_name, token_embedding, token_prompt)
            owned = condition_scene is None
            frozen = frozen_copy(coarse) if owned else condition_scene
            c = config.controlnet
            term = ControlNetTarget(
                controlnet, c, token_prompt, negative_prompt, tokens, frozen, config.prompt_suffix, owned
            )
            extra = (term,)
        terms = dynamic_terms(config, priors, prompt, negative_prompt, extra, reference is not None)
        coarse.stage = "refine"
        schedule = config.first_frame_supervision == "schedule"
        super().__init__(config, reference, coarse, terms, ClipViews(), device, schedule)

    @property
    def condition_scene(self) -> Scene | None:
        """The frozen coarse scene the ControlNet condition is rendered from (None without a ControlNet)."""
        term = next((t for t in self.terms if isinstance(t, ControlNetTarget)), None)
        return None if term is None else term.condition_scene


__all__ = ["RefinePriors", "RefineStage"]
