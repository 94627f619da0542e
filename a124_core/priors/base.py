"""The interfaces every diffusion prior implements: `Prior`, the members all kinds share, and one Protocol per kind.

Each member is written once. `Prior` is a Protocol that concrete priors also inherit (for its default
`offload_encoders` and the abstract-method check at construction); a kind's Protocol adds only what that kind's
stages call. Guidance terms only see these protocols: a prior of the right `PriorKind` that has the kind's methods
can be wired into any slot that accepts that kind (SPEC 5). Priors are frozen, plain objects (not `nn.Module`
children of a trainable model) so their weights never enter checkpoints. Sizes and frame counts are not a prior's to
decide: a guidance term passes the render it wants scored; `image_size` is only the prior's native resolution, the
default a term resizes to.
"""

from __future__ import annotations

import enum
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor


class PriorKind(str, enum.Enum):
    """What a prior is conditioned on; the slot a prior may be wired into."""

    IMAGE_TEXT = "image-text"  # SD1.5 / SD2.1-base: text -> image
    IMAGE_POSE = "image-pose"  # Zero123-XL: reference image + relative camera -> image
    VIDEO_TEXT = "video-text"  # ModelScope / Zeroscope: text -> F frames
    IMAGE_CONTROL = "image-control"  # ControlNet-Tile: text + control image -> image
    IMAGE_TEXT_MULTIVIEW = "image-text-multiview"  # MVDream: text + one camera per view -> views denoised jointly


@dataclass(frozen=True)
class NoiseSchedule:
    """The discrete DDPM schedule a prior was trained with; priors always return epsilon (v models convert)."""

    alphas_cumprod: Tensor  # [num_train_timesteps], float32

    @property
    def num_train_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    def add_noise(self, latents: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """q(z_t | z_0) with one timestep per batch element; t: [B] long."""
        a = self.alphas_cumprod.to(latents.device)[t].float()
        a = a.view(-1, *([1] * (latents.dim() - 1)))
        return (a.sqrt() * latents.float() + (1 - a).sqrt() * noise.float()).to(latents.dtype)


@runtime_checkable
class Prior(Protocol):
    """A frozen diffusion model used as guidance: what every guidance term calls (SDS / x0 targets, device moves).

    Contract:
      - `encode_images` is differentiable w.r.t. its input (the VAE encoder is differentiated by SDS).
      - `predict_noise` runs without grad and returns the classifier-free-guided epsilon, with the
        conditional and unconditional branches batched in one network call.
      - Conditions are built once per prompt/reference by the prior's own `*_condition` methods and cached.
    """

    kind: PriorKind
    #: Renders are resized to this square size (or (H, W)) before encoding.
    image_size: int | tuple[int, int]
    schedule: NoiseSchedule
    device: torch.device
    dtype: torch.dtype

    @abstractmethod
    def encode_images(self, images: Tensor) -> Tensor:
        """images [B, 3, H, W] (video priors: [F, 3, H, W]) in [0, 1] -> latents.

        Image priors return [B, C, h, w]; video priors return [1, C, F, h, w]. The batch dimension of the
        result is the one noise timesteps are drawn for (one t per clip for video).
        """

    @abstractmethod
    def predict_noise(self, noisy_latents: Tensor, t: Tensor, condition: Any, guidance_scale: float) -> Tensor:
        """CFG epsilon eps_u + s * (eps_c - eps_u) for noisy latents at integer timesteps t [B]."""

    @abstractmethod
    def to(self, device: torch.device | str) -> Any:
        """Move weights (used to keep priors on the GPU only while their stage runs); returns self."""

    def offload_encoders(self) -> None:
        """Move the networks used only to build conditions (text / image encoders) to the CPU in float32.

        Stages build their conditions once and cache them, so the encoders idle on the GPU for the whole stage
        (0.25 GB for SD1.5's, 0.6 GB for Zero123's image encoder, 0.7 GB for ModelScope's). A condition built
        later still works: it is computed on the CPU and moved to the prior's device. `to()` brings them back.
        Priors without separate encoders (e.g. ComfyUI-model adapters, whose memory ComfyUI manages) keep this no-op.
        """
        return None


def cfg_combine(eps: Tensor, guidance_scale: float) -> Tensor:
    """Classifier-free guidance: eps [2B, ...] ordered (uncond, cond) -> eps_u + s (eps_c - eps_u) (SPEC 5)."""
    eps_u, eps_c = eps.chunk(2)
    return eps_u + guidance_scale * (eps_c - eps_u)


Tokens = Mapping[str, Tensor]
"""Textual-inversion tokens for one condition: name -> vectors [n, D]; used by that condition only, never added to
the prior (priors are shared between nodes)."""


@runtime_checkable
class ImageTextPrior(Prior, Protocol):
    """SD1.5 / SD2.1-base: text -> image; the static stage asks for view-dependent prompts."""

    def text_condition(self, prompt: str, negative: str = "", tokens: Tokens | None = None) -> Any: ...

    def view_dependent_condition(self, prompt: str, negative: str = "") -> Any: ...


@runtime_checkable
class ImagePosePrior(Prior, Protocol):
    """Zero123: the reference image once, then relative poses [B, 4] (`priors.zero123.pose_embedding`)."""

    def reference_condition(self, image: Tensor) -> Any: ...

    def pose_condition(self, reference: Any, pose: Tensor) -> Any: ...


@runtime_checkable
class VideoTextPrior(Prior, Protocol):
    """Text -> F frames; F is whatever clip the stage renders."""

    def text_condition(self, prompt: str, negative: str = "", tokens: Tokens | None = None) -> Any: ...


@runtime_checkable
class ImageControlPrior(Prior, Protocol):
    """ControlNet-Tile: a text condition (with the learned token) plus control images of the same views."""

    def text_condition(self, prompt: str, negative: str = "", tokens: Tokens | None = None) -> Any: ...

    def control_condition(self, text: Any, control_images: Tensor, controlnet_prompt: str) -> Any: ...


@runtime_checkable
class MultiViewTextPrior(Prior, Protocol):
    """MVDream: a text condition, then one camera matrix per view; groups of `num_views` consecutive latents are
    denoised jointly (`priors.mvdream`; matrices from `multiview_cameras.mvdream_camera_matrices`).

    `predict_noise_branches` gives both CFG branches of one batched call: the x0-reconstruction SDS rescales the
    guided x0 by the spread of the unguided one (`guidance.multiview_sds`).
    """

    #: Views the network attends across jointly (4 for the released MVDream); batches are multiples of it.
    num_views: int

    def text_condition(self, prompt: str, negative: str = "", tokens: Tokens | None = None) -> Any: ...

    def multiview_condition(self, text: Any, camera_matrices: Tensor) -> Any: ...

    def predict_noise_branches(self, noisy_latents: Tensor, t: Tensor, condition: Any) -> tuple[Tensor, Tensor]: ...


PROTOCOLS: dict[PriorKind, type] = {
    PriorKind.IMAGE_TEXT: ImageTextPrior,
    PriorKind.IMAGE_POSE: ImagePosePrior,
    PriorKind.VIDEO_TEXT: VideoTextPrior,
    PriorKind.IMAGE_CONTROL: ImageControlPrior,
    PriorKind.IMAGE_TEXT_MULTIVIEW: MultiViewTextPrior,
}


def check_prior_kind(prior: Any, expected: PriorKind, slot: str) -> None:
    """Raise a clear error when a prior of the wrong kind, or one lacking its kind's methods, is wired into a slot."""
    kind = getattr(prior, "kind", None)
    if kind != expected:
        got = kind.value if isinstance(kind, PriorKind) else repr(kind)
        raise ValueError(
            f"The {slot} slot expects a prior of kind '{expected.value}', got '{got}'. "
            f"Wire a {expected.value} prior (see README: priors) into this slot."
        )
    protocol = PROTOCOLS[expected]
    missing = [name for name in protocol_members(protocol) if not hasattr(prior, name)]
    if missing:
        raise ValueError(
            f"{type(prior).__name__} in the {slot} slot says it is a '{expected.value}' prior but lacks "
            f"{', '.join(missing)} ({protocol.__name__} in a124_core/priors/base.py lists what a stage calls)."
        )


def protocol_members(protocol: type) -> list[str]:
    """Attribute and method names a kind's Protocol declares, its bases' included (what `check_prior_kind` needs)."""
    names: list[str] = []
    for klass in reversed(protocol.__mro__):
        if klass in (object, Protocol, Any) or not getattr(klass, "_is_protocol", False):
            continue
        names += [n for n in vars(klass).get("__annotations__", {}) if n not in names]
        names += [n for n, v in vars(klass).items() if callable(v) and not n.startswith("_") and n not in names]
    return names
