"""ControlNet-Tile x0 targets with the learned token (step 3, paper Eq. 9, SPEC 5).

Frames 0 and F/2 of each SDS clip get a one-step x0 target from ControlNet-Tile: its UNet reads the refinement
prompt with the textual-inversion token, its control image is the same view (camera, time, shading, light,
background) rendered by the frozen coarse model. The frozen model belongs to this term: it is saved with the
stage's checkpoints, so a resume conditions on the same model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field as dfield
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ...guidance.sds import SDSConfig, center_square, scoring_size, x0_reconstruction
from ...priors.base import PriorKind
from ...weight_files import check_safetensors
from .base import GuidanceTerm, StepContext


@dataclass(frozen=True)
class ControlNetConfig:
    """x0 targets of the image-control prior."""

    sds: SDSConfig = dfield(
        default_factory=lambda: SDSConfig(
            guidance_scale=7.5, t_range=(0.2, 0.8), shared_timestep=True, image_size=1024
        )
    )
    """CFG 7.5, one t in [0.2, 0.8] for both frames of a step, scored at 1024 px (512 in the fast preset)."""
    weight: float = 1.0
    """lambda_R of the ControlNet loss."""
    frames: tuple[int, ...] | None = None
    """Frames of each clip that get the loss; None = (0, F / 2)."""
    prompt: str = "best quality, high resolution"
    """Prompt of the ControlNet branch."""


def load_tokens(name: str | None, embedding: Tensor | str | Path | None, prompt: str) -> dict[str, Tensor]:
    """{name: vectors [n, D]} from a tensor or a `<name>.safetensors` file; checks the prompt uses the token."""
    if name is None:
        return {}
    if name not in prompt:
        raise ValueError(
            f"token_prompt {prompt!r} does not contain the token {name!r}; write e.g. 'a {name} is dancing'"
        )
    if isinstance(embedding, (str, Path)):
        from safetensors.torch import load_file

        path = Path(embedding)
        if path.suffix != ".safetensors" or not path.is_file():
            raise FileNotFoundError(f"Token file {path} not found (expected <name>.safetensors = {{name: [n, dim]}}).")
        check_safetensors(path, fix="delete it and train the token again (textual inversion)")
        state = load_file(str(path))
        if name not in state:
            raise ValueError(f"Token file {path} holds {sorted(state)}, not {name!r}")
        return {name: state[name].float()}
    if isinstance(embedding, Tensor):
        return {name: embedding.detach().float()}
    raise ValueError(f"token_embedding for {name!r} must be a tensor [n, D] or a <name>.safetensors path")


class ControlNetTarget(GuidanceTerm):
    """x0 targets for the control frames of every SDS clip; the condition renders come from a frozen scene."""

    name = "controlnet"
    kind = PriorKind.IMAGE_CONTROL

    def __init__(
        self,
        prior: Any,
        config: ControlNetConfig,
        token_prompt: str,
        negative: str,
        tokens: dict[str, Tensor],
        condition_scene: Any,
        num_frames: int,
        suffix: str = "",
        owned: bool = False,
    ):
        """
        Args:
            token_prompt: the UNet prompt with the learned token ("a _panda_ is dancing"); suffix is appended.
            tokens: the textual-inversion tokens of that prompt (never added to the shared prior).
            condition_scene: the coarse scene (`.field`, `.occupancy`) the condition is rendered from; only read
                (never trained, changed or moved: a copy is made when it is not on the training device or a resume
                loads it), so a node can pass its cached input.
            num_frames: frames of the stage's clips (the default control frames are 0 and F / 2).
            owned: the scene is this term's own copy (`scene.frozen_copy`), free to move and overwrite.
        """
        super().__init__(prior)
        if not token_prompt.strip():
            raise ValueError("The ControlNet branch needs token_prompt, the motion prompt with the learned token")
        self.config, self.token_prompt, self.negative = config, token_prompt + suffix, negative
        self.tokens = tokens
        self.condition_scene, self.owned = condition_scene, owned
        self.text: Any = None
        self.frames = list(config.frames if config.frames is not None else (0, num_frames // 2))
        if not self.frames or any(not 0 <= f < num_frames for f in self.frames):
            raise ValueError(f"controlnet.frames {self.frames} must be non-empty frame indices in [0, {num_frames})")

    def _own(self) -> Any:
        """The condition scene, copied first (frozen) unless it is the term's own."""
        if not self.owned:
            copied = copy.deepcopy(self.condition_scene)
            copied.field.requires_grad_(False).train(False)
            self.condition_scene, self.owned = copied, True
        return self.condition_scene

    def attach(self, device: torch.device) -> None:
        on = next(self.condition_scene.field.parameters()).device
        if on.type != device.type or (device.index is not None and on.index != device.index):
            self._own().to(device)

    def build(self) -> None:
        self.text = self.prior.text_condition(self.token_prompt, self.negative, self.tokens)
        self.prior.text_condition(self.config.prompt)  # cached now, before the encoders leave the GPU

    @torch.no_grad()
    def control_images(self, ctx: StepContext, view: Any) -> Tensor:  # [B, 3, S, S] at the scoring size
        """The frozen model's render of exactly `view` at the step's render size (no ray jitter: a stable
        condition), centred and resized as the frames are."""
        scene, size = self.condition_scene, tuple(ctx.render["rgb"].shape[1:3])
        out = ctx.render_view(view, size, field=scene.field, occupancy=scene.occupancy, perturb=False)
        images = center_square(out["rgb"].permute(0, 3, 1, 2).clamp(0, 1))
        size = scoring_size(self.config.sds, self.prior)
        size = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(images.shape[-2:]) != size:
            images = F.interpolate(images, size=size, mode="bilinear", antialias=True)
        return images

    def losses(self, ctx: StepContext) -> dict[str, Tensor]:
        if not ctx.sds:
            return {}
        cond = self.prior.control_condition(
            self.text, self.control_images(ctx, ctx.view.select(self.frames)), self.config.prompt
        )
        images = center_square(ctx.render["rgb"][self.frames].permute(0, 3, 1, 2))
        out = x0_reconstruction(self.prior, images, cond, self.config.sds, 1.0, ctx.progress, ctx.generator)
        return {self.name: self.config.weight * out["loss_x0"]}

    def state_tensors(self) -> dict[str, Tensor]:
        scene = self.condition_scene
        tensors = {f"condition/{k}": v for k, v in scene.field.state_dict().items()}
        tensors.update({f"condition_occupancy/{k}": v for k, v in scene.occupancy.state_dict().items()})
        return tensors

    def load_state(self, tensors: dict[str, Tensor], source: str) -> None:
        scene = self._own()
        for module, prefix in ((scene.field, "condition/"), (scene.occupancy, "condition_occupancy/")):
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            if set(state) != set(module.state_dict()):
                raise ValueError(f"{source} lacks the refine stage's frozen condition model ({prefix}*)")
            module.load_state_dict(state)
