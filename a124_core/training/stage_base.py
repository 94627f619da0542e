"""What the three stages share: reference targets, random shading, renders, regularisers, training state.

A stage owns a `Scene` (field + occupancy grid), an Adam optimizer and one CPU `torch.Generator` that draws every
random number of a step (cameras, times, shading, ray jitter, diffusion noise), so a checkpoint that stores the
generator state resumes bit-identically. The loop (`loop.train`) calls `attach`, `before_step`,
`compute_losses`, `preview`, `training_state` / `load_training_state` and `release`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import Cameras, angle_from_reference_deg, reference_camera
from ..checkpoint import optimizer_tensors, restore_optimizer, rng_state, set_rng_state
from ..guidance.sds import score_distillation
from ..priors.base import PriorKind, check_prior_kind
from ..priors.memory import apply_vae_checkpointing, wants_vae_checkpointing
from ..priors.zero123 import pose_embedding
from ..rendering.renderer import light_directions, render_cameras
from . import losses as L
from .config import StageConfig, config_to_dict
from .scene import Scene


@dataclass
class View:
    """Everything that decides what B rendered frames look like (so a second model can see exactly the same)."""

    cameras: Cameras  # B cameras
    times: Tensor | None  # [B] frame times, None for static fields
    shading: str  # 'albedo' | 'lambertian' | 'textureless' | 'normal'
    light_dirs: Tensor | None  # [B, 3]
    ambient: float
    background: Tensor  # [3] one colour per step

    def select(self, frames: list[int] | tuple[int, ...]) -> View:
        idx = torch.as_tensor(list(frames), dtype=torch.long)
        return View(
            cameras=self.cameras[idx],
            times=None if self.times is None else self.times[idx],
            shading=self.shading,
            light_dirs=None if self.light_dirs is None else self.light_dirs[idx],
            ambient=self.ambient,
            background=self.background,
        )


def reference_targets(reference: Any, size: int) -> dict[str, Tensor | None]:
    """Reference rgb [1, S, S, 3] (on white), mask [1, S, S, 1] in {0, 1} and depth [1, S, S, 1] or None."""
    for name in ("rgb", "mask"):
        value = getattr(reference, name, None)
        if not isinstance(value, Tensor) or value.dim() != 3:
            raise ValueError(
                f"reference.{name} must be a [C, H, W] tensor (build it with a124_core.reference.build_reference)"
            )

    def resize(x: Tensor, mode: str) -> Tensor:
        x = x[None].float()
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode=mode, **({"antialias": True} if mode == "bilinear" else {}))
        return x.permute(0, 2, 3, 1).contiguous()

    rgb = resize(reference.rgb, "bilinear").clamp(0, 1)
    mask = (resize(reference.mask, "bilinear") > 0.5).float()
    if mask.sum() == 0:
        raise ValueError("The reference mask is empty: the reference image has no foreground to reconstruct")
    depth = getattr(reference, "depth", None)
    return {"rgb": rgb, "mask": mask, "depth": None if depth is None else resize(depth, "bilinear")}


class TrainingStage(ABC):
    """Base of StaticStage, CoarseStage and RefineStage."""

    name = "stage"
    #: slot name -> prior kind accepted there
    slots: dict[str, PriorKind] = {}

    def __init__(self, config: StageConfig, reference: Any, scene: Scene, priors: dict[str, Any], device: Any):
        self.config = config
        self.device = torch.device(device if device is not None else "cpu")
        for slot, prior in priors.items():
            if slot not in self.slots:
                raise ValueError(f"The {self.name} stage has no prior slot {slot!r}; slots: {sorted(self.slots)}")
            if prior is not None:
                check_prior_kind(prior, self.slots[slot], f"{self.name} stage's {slot}")
        self.priors = {k: v for k, v in priors.items() if v is not None}
        self.reference = reference
        self.targets = {
            k: (None if v is None else v.to(self.device))
            for k, v in reference_targets(reference, config.reference_size).items()
        }
        self.scene = scene.to(self.device)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.optimizer = torch.optim.Adam(self.scene.field.parameter_groups(), betas=config.betas, eps=config.adam_eps)
        self.step = 0
        self.bad_steps = 0
        #: Called with every SDS view the stage draws, before it is rendered (diagnostics; the oracle priors of the
        #: tests learn from it which cameras and times the frames they are given were rendered at).
        self.view_observers: list[Callable[[View], None]] = []

    # ----------------------------------------------------------------- priors
    def attach(self) -> None:
        """Move the priors onto the training device and build their (cached) conditions there."""
        for prior in self.priors.values():
            prior.to(self.device)
        checkpointing = wants_vae_checkpointing(self.config.loop.vae_checkpointing, self.device)
        apply_vae_checkpointing(list(self.priors.values()), checkpointing)
        self.build_conditions()
        if self.config.loop.offload_priors and self.device.type == "cuda":
            for prior in self.priors.values():  # conditions are cached: the encoders would only idle on the GPU
                prior.offload_encoders()

    @abstractmethod
    def build_conditions(self) -> None:
        """Prompt / reference conditions of the stage's priors (after they are on the device)."""

    def release(self) -> None:
        """Move the priors back to the CPU (when `loop.offload_priors`), also after an error or a cancel."""
        if self.config.loop.offload_priors:
            for prior in self.priors.values():
                prior.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def zero123_reference_condition(self) -> Any:
        """The image-pose prior's condition of the reference image (built once per stage)."""
        return self.priors["zero123"].reference_condition(self.reference.rgb[None].float())

    def zero123_loss(self, cameras: Cameras, images: Tensor, progress: float) -> Tensor:
        """lambda * Zero123 SDS of renders [B, 3, H, W] seen from `cameras`, each weighted by its angle to the
        reference view / 180 (SPEC 5); the stage config's `zero123` / `lambda_zero123` settings."""
        c, prior = self.config, self.priors["zero123"]
        pose = pose_embedding(
            cameras.polar_deg,
            cameras.azimuth_deg,
            reference_polar=c.camera.reference_polar_deg,
            reference_azimuth=c.camera.reference_azimuth_deg,
        )
        cond = prior.pose_condition(self.zero123_reference, pose)
        weight = angle_from_reference_deg(cameras, c.camera).to(self.device) / 180.0
        sds = score_distillation(prior, images, cond, c.zero123, weight, progress, self.generator)
        return c.lambda_zero123 * sds["loss_sds"]

    @property
    def uses_sds(self) -> bool:
        return bool(self.priors)

    # ----------------------------------------------------------------- random draws
    def rand(self) -> float:
        """One U[0, 1) from the stage generator (CPU: no device sync)."""
        return float(torch.rand((), generator=self.generator))

    def draw_view(self, cameras: Cameras, times: Tensor | None) -> View:
        """Random shading, ambient, light and background for this step's renders (SPEC 4)."""
        s = self.config.shading
        u = self.rand()
        warm_up = self.step < s.normal_until * self.config.steps  # self.step is the step being computed
        mode = "normal" if warm_up else "textureless" if u < s.p_textureless else "lambertian"
        lo, hi = s.ambient_range
        ambient = lo + (hi - lo) * self.rand()
        if mode == "lambertian" and ambient >= 1.0:
            mode = "albedo"  # full ambient light is the albedo: no normals needed for it
        lights = light_directions(cameras, self.generator).to(self.device)
        bg = torch.rand(3, generator=self.generator) if s.random_background else torch.ones(3)
        view = View(
            cameras.to(self.device),
            None if times is None else times.to(self.device),
            mode,
            lights,
            ambient,
            bg.to(self.device),
        )
        for observe in self.view_observers:
            observe(view)
        return view

    # ----------------------------------------------------------------- rendering
    @property
    def need_normals(self) -> bool:
        w = self.config.weights
        return w.orientation > 0 or w.normal_tv > 0 or w.normal_blur > 0

    def render_view(
        self, field: Any, view: View, size: int | tuple[int, int], perturb: bool = True, occupancy: Any = "scene"
    ) -> dict[str, Tensor]:
        """Render the frames of `view` with `field` at size x size (or (H, W)); maps [B, H, W, C]."""
        height, width = (size, size) if isinstance(size, int) else size
        return render_cameras(
            field,
            view.cameras,
            height,
            width,
            times=view.times,
            config=self.config.render,
            occupancy=self.scene.occupancy if occupancy == "scene" else occupancy,
            shading=view.shading,
            light_dirs=view.light_dirs,
            ambient=view.ambient,
            background=view.background,
            perturb=perturb,
            need_normals=self.need_normals or view.shading != "albedo",
            generator=self.generator if perturb else None,
        )

    def reference_view(self, time: float | None) -> View:
        """The input image's camera, ambient 1 (albedo), white background."""
        cams = reference_camera(self.config.camera).to(self.device)
        times = None if time is None else torch.full((1,), float(time), device=self.device)
        return View(cams, times, "albedo", None, 1.0, torch.ones(3, device=self.device))

    def reference_losses(self, time: float | None) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Weighted rgb / mask / depth losses of the reference view (SPEC 6); also returns the render."""
        w = self.config.weights
        out = self.render_view(self.scene.field, self.reference_view(time), self.config.reference_size)
        t = self.targets
        losses = {
            "rgb": w.rgb * L.rgb_loss(out["rgb"], t["rgb"], t["mask"]),
            "mask": w.mask * L.mask_loss(out["opacity"], t["mask"]),
        }
        if t["depth"] is not None and w.depth > 0:
            losses["depth"] = w.depth * L.depth_loss(out["depth"], t["depth"], t["mask"])
        return losses, out

    def regularisers(self, out: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        """Opacity entropy (ramped over the first half), orientation, normal-image smoothness (SPEC 6)."""
        w = self.config.weights
        reg: dict[str, Tensor] = {}
        if w.opacity_entropy > 0:
            reg["opacity_entropy"] = (
                w.opacity_entropy * L.ramp(step, self.config.steps) * L.opacity_entropy(out["opacity"])
            )
        if "orientation" in out and w.orientation > 0:
            reg["orientation"] = w.orientation * L.orientation_loss(out["orientation"])
        if "normal_image" in out and (w.normal_tv > 0 or w.normal_blur > 0):
            image = out["normal_image"]
            reg["normal_smooth"] = w.normal_tv * L.normal_tv(image) + w.normal_blur * L.normal_blur_loss(image)
        return reg

    # ----------------------------------------------------------------- loop hooks
    def before_step(self, step: int) -> None:
        """Refresh the occupancy grid every `update_every` steps (each slot at its own time)."""
        if step % self.config.occupancy.update_every == 0:
            field = self.scene.field
            self.scene.occupancy.refresh(lambda x, t: field.density(x, t), generator=self.generator)

    @abstractmethod
    def compute_losses(self, step: int) -> dict[str, Tensor]:
        """Weighted loss terms of one step; the loop sums them."""

    def progress(self, step: int) -> float:
        return min(1.0, step / max(1, self.config.steps - 1))

    @torch.no_grad()
    def preview(self) -> Tensor:  # [H, W, 3]
        """The reference view at t = 0 (albedo on white), rendered without jitter."""
        size = self.config.loop.preview_size
        view = self.reference_view(0.0 if self.scene.is_dynamic else None)
        return self.render_view(self.scene.field, view, size, perturb=False)["rgb"][0].clamp(0, 1).cpu()

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    # ----------------------------------------------------------------- checkpoints
    def training_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Optimizer, RNG and bookkeeping (the scene's tensors are added by the loop)."""
        opt_tensors, opt_meta = optimizer_tensors(self.optimizer)
        tensors = {**opt_tensors, **rng_state(), "rng/generator": self.generator.get_state()}
        meta = {"training": True, "optimizer": opt_meta, "bad_steps": self.bad_steps, "total_steps": self.config.steps}
        return tensors, meta

    def check_compatible(self, meta: dict[str, Any], source: str) -> None:
        """Raise before any step when a checkpoint does not fit this stage and config."""
        if meta.get("stage") != self.name:
            raise ValueError(
                f"{source} was written by the {meta.get('stage')!r} stage; the {self.name} stage can only resume its "
                f"own "
                f"checkpoints (pass it as the input scene of the next stage instead)."
            )
        if not meta.get("training"):
            raise ValueError(f"{source} holds a scene but no training state (optimizer, RNG); it cannot be resumed")
        ours = json.loads(json.dumps(self.scene.metadata()))  # compare in JSON form (tuples -> lists)
        for key in ("dynamic", "num_knots", "field_config", "occupancy_slots", "occupancy_config"):
            if meta.get(key) != ours.get(key):
                raise ValueError(
                    f"{source} is incompatible with this stage's config: {key} is {meta.get(key)} in the checkpoint "
                    f"but "
                    f"{ours.get(key)} here. Resume with the config the checkpoint was trained with."
                )

    def load_training_state(self, tensors: dict[str, Tensor], meta: dict[str, Any], source: str) -> None:
        self.check_compatible(meta, source)
        loaded = Scene.from_checkpoint(tensors, meta, source)
        self.scene.field.load_state_dict(loaded.field.state_dict())
        self.scene.occupancy.load_state_dict(loaded.occupancy.state_dict())
        restore_optimizer(self.optimizer, {k: v.to(self.device) for k, v in tensors.items()}, meta["optimizer"])
        set_rng_state(tensors)
        self.generator.set_state(tensors["rng/generator"].to(torch.uint8))
        self.bad_steps = int(meta.get("bad_steps", 0))
        self.step = int(meta["step"])

    def stage_config_dict(self) -> dict[str, Any]:
        return config_to_dict(self.config)


__all__ = ["TrainingStage", "View", "reference_targets"]
