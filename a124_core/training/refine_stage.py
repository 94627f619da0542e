"""Step 3: semantic refinement with ControlNet-Tile (SPEC 1, 5).

The coarse stage's losses keep running. On SDS steps, frames 0 and F/2 of the clip also get an x0-target loss
from ControlNet-Tile: its UNet sees the refinement prompt with the learned textual-inversion token, its control
image is the same view (camera, time, shading, light, background) rendered by a frozen copy of the coarse
model. The frozen copy (field and occupancy grid) is saved in the stage's checkpoints so a resume sees it too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..guidance.sds import center_square, x0_reconstruction
from ..priors.base import PriorKind
from .coarse_stage import CoarseStage, DynamicPriors
from .config import CoarseStageConfig, RefineStageConfig
from .scene import Scene
from .stage_base import View


class RefineStage(CoarseStage):
    """Continues the coarse Grid4DField; a frozen copy renders the ControlNet condition images."""

    name = "refine"
    config_class = RefineStageConfig
    slots = {"video": PriorKind.VIDEO_TEXT, "zero123": PriorKind.IMAGE_POSE, "controlnet": PriorKind.IMAGE_CONTROL}

    def __init__(
        self,
        config: RefineStageConfig,
        reference: Any,
        scene: Scene | str | Path,
        priors: DynamicPriors | None = None,
        prompt: str = "",
        token_prompt: str = "",
        token_name: str | None = None,
        token_embedding: Tensor | str | Path | None = None,
        negative_prompt: str = "",
        device: str | torch.device | None = None,
    ):
        """
        Args:
            scene: the coarse stage's result (Scene or its checkpoint file).
            prompt: the motion prompt of the video prior ("a panda is dancing").
            token_prompt: the ControlNet UNet's prompt with the learned token ("a _panda_ is dancing").
            token_name, token_embedding: the textual-inversion token and its embedding [n, D] (or its
                `<name>.safetensors` file); None when the ControlNet's tokenizer already knows the token.
        """
        super().__init__(config, reference, scene, priors, prompt, negative_prompt, device)
        self.token_prompt = token_prompt + config.prompt_suffix
        self.controlnet_text: Any = None  # built on the device by build_conditions()
        controlnet = self.priors.get("controlnet")
        if controlnet is not None:
            self._check_controlnet(controlnet, token_prompt, token_name, token_embedding)
        self.condition_field = copy.deepcopy(self.scene.field).requires_grad_(False).train(False)
        self.condition_occupancy = copy.deepcopy(self.scene.occupancy)

    def _prepare_scene(self, coarse: Scene, config: CoarseStageConfig) -> Scene:
        """The coarse scene itself (trained further); refuses static and refined scenes and other T."""
        if not coarse.is_dynamic:
            raise ValueError(
                "The refine stage continues the coarse (dynamic) stage's result, but got a static scene. Run the "
                "coarse stage on it first."
            )
        if coarse.stage != "coarse":
            raise ValueError(
                f"The refine stage needs the coarse stage's result: its frozen copy renders the ControlNet condition "
                f"(SPEC 5), but got a scene written by the {coarse.stage} stage. Pass the coarse scene (coarse."
                f"safetensors); to continue an interrupted refine run, resume from its refine_latest checkpoint."
            )
        if coarse.field.num_knots != config.num_knots:
            raise ValueError(
                f"Incompatible scene: it has T = {coarse.field.num_knots} time knots but the refine config has "
                f"num_knots = {config.num_knots}; use the config the coarse stage was trained with."
            )
        if coarse.occupancy.time_slots != config.occupancy_slots:
            raise ValueError(
                f"Incompatible scene: its occupancy grid has {coarse.occupancy.time_slots} time slots but the refine "
                f"config has occupancy_slots = {config.occupancy_slots}."
            )
        field = copy.deepcopy(coarse.field)
        return Scene(field, copy.deepcopy(coarse.occupancy), "refine")

    def _slots(self, priors: DynamicPriors) -> dict[str, Any]:
        return {"video": priors.video, "zero123": priors.zero123, "controlnet": priors.controlnet}

    def _check_controlnet(self, prior: Any, token_prompt: str, name: str | None, embedding: Any) -> None:
        size = self.config.controlnet_size
        if size is not None and prior.image_size != size:
            raise ValueError(
                f"The ControlNet prior renders at {prior.image_size} px but the config asks for "
                f"controlnet_size = {size}; "
                f"load it with ControlNetTilePrior.Config(image_size={size}) or set controlnet_size=None"
            )
        if not token_prompt.strip():
            raise ValueError("The ControlNet branch needs token_prompt, the motion prompt with the learned token")
        if name is None:
            return
        if name not in token_prompt:
            raise ValueError(
                f"token_prompt {token_prompt!r} does not contain the token {name!r}; write e.g. 'a {name} is dancing'"
            )
        if isinstance(embedding, (str, Path)):
            names = prior.load_token_file(embedding)
            if name not in names:
                raise ValueError(f"Token file {embedding} holds {names}, not {name!r}")
        elif isinstance(embedding, Tensor):
            prior.add_token(name, embedding)
        else:
            raise ValueError(f"token_embedding for {name!r} must be a tensor [n, D] or a <name>.safetensors path")

    def build_conditions(self) -> None:
        super().build_conditions()
        if "controlnet" in self.priors:
            prior = self.priors["controlnet"]
            self.controlnet_text = prior.text_condition(self.token_prompt, self.negative_prompt)
            prior.text_condition(self.config.controlnet_prompt)  # cached now, before the encoders leave the GPU

    def attach(self) -> None:
        super().attach()
        self.condition_field.to(self.device)
        self.condition_occupancy.to(self.device)

    @torch.no_grad()
    def control_images(self, view: View) -> Tensor:  # [B, 3, H, W]
        """The frozen coarse model's render of exactly `view` (no ray jitter: a stable condition)."""
        out = self.render_view(
            self.condition_field, view, self.clip_size, perturb=False, occupancy=self.condition_occupancy
        )
        return center_square(out["rgb"].permute(0, 3, 1, 2).clamp(0, 1))

    def compute_losses(self, step: int) -> dict[str, Tensor]:
        c = self.config
        if self.is_reconstruction_step(step):
            return super().compute_losses(step)
        view, starts_at_zero = self.draw_clip()
        out = self.render_view(self.scene.field, view, self.clip_size)
        losses = self.clip_losses(view, starts_at_zero, out, step)
        if "controlnet" in self.priors:
            frames = list(c.control_frames)
            prior = self.priors["controlnet"]
            cond = prior.control_condition(
                self.controlnet_text, self.control_images(view.select(frames)), c.controlnet_prompt
            )
            images = center_square(out["rgb"][frames].permute(0, 3, 1, 2))
            x0 = x0_reconstruction(prior, images, cond, c.controlnet, 1.0, self.progress(step), self.generator)
            losses["controlnet"] = c.lambda_controlnet * x0["loss_x0"]
        return {**losses, **self.regularisers(out, step), **self.temporal_tv()}

    # ----------------------------------------------------------------- checkpoints: also the frozen copy
    def training_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        tensors, meta = super().training_state()
        tensors.update({f"condition/{k}": v for k, v in self.condition_field.state_dict().items()})
        tensors.update({f"condition_occupancy/{k}": v for k, v in self.condition_occupancy.state_dict().items()})
        return tensors, meta

    def load_training_state(self, tensors: dict[str, Tensor], meta: dict[str, Any], source: str) -> None:
        super().load_training_state(tensors, meta, source)
        for module, prefix in (
            (self.condition_field, "condition/"),
            (self.condition_occupancy, "condition_occupancy/"),
        ):
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            if set(state) != set(module.state_dict()):
                raise ValueError(f"{source} lacks the refine stage's frozen condition model ({prefix}*)")
            module.load_state_dict(state)


__all__ = ["RefineStage"]
