"""A training stage: the scene it trains, how it draws its SDS views, and the guidance terms that score them.

A stage owns its scene (it trains the scene it is given, in place), an Adam optimizer and one CPU
`torch.Generator` that draws every random number of a step (cameras, times, shading, ray jitter, diffusion noise),
so a checkpoint that stores the generator state resumes bit-identically. Per step it either renders the reference
view (reconstruction steps) or draws a view with its `ViewSampler`, renders it once at the size its terms want, and
sums what its terms return. The runner (`runner.train`) calls `attach`, `before_step`, `compute_losses`,
`preview`, `training_state` / `load_training_state` and `release`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import Cameras, reference_camera
from ..checkpoint import optimizer_tensors, restore_optimizer, rng_state, set_rng_state
from ..guidance.sds import render_shape
from ..priors.memory import apply_vae_checkpointing, wants_vae_checkpointing
from ..rendering.renderer import light_directions, render_cameras
from .config import StageConfig, config_to_dict
from .scene import Scene, check_resumable
from .terms.base import GuidanceTerm, StepContext
from .view import View, ViewSampler


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


def slot_priors(slots: Any) -> list[Any]:
    """The priors wired into a stage's prior slots (a dataclass of optional priors), in slot order."""
    return [p for p in (getattr(slots, f.name) for f in fields(slots)) if p is not None]


class Stage:
    """Base of StaticStage, CoarseStage and RefineStage (which only choose the scene, sampler, terms and priors)."""

    name = "stage"

    def __init__(
        self,
        config: StageConfig,
        reference: Any,
        scene: Scene,
        terms: list[GuidanceTerm],
        views: ViewSampler,
        priors: list[Any],
        device: Any = None,
        reconstruction_schedule: bool = True,
    ):
        """
        Args:
            priors: the priors of the stage's slots (`slot_priors`): moved onto the device while it trains.
            reconstruction_schedule: whether the warm-up / every-k-th steps are reconstruction-only steps (the static
                stage; the dynamic ones with first_frame_supervision='schedule'). Without priors every step is.
        """
        self.config = config
        self.device = torch.device(device if device is not None else "cpu")
        self.reference = reference
        self.targets = (
            None
            if reference is None
            else {
                k: (None if v is None else v.to(self.device))
                for k, v in reference_targets(reference, config.reference_size).items()
            }
        )
        self.scene = scene.to(self.device)
        self.views = views
        self.reference_time = views.reference_time
        self.generator = torch.Generator().manual_seed(config.seed)
        self.optimizer = torch.optim.Adam(self.scene.field.parameter_groups(), betas=config.betas, eps=config.adam_eps)
        self.step = 0
        self.bad_steps = 0
        #: Called with every SDS view the stage draws, before it is rendered (diagnostics; the oracle priors of the
        #: tests learn from it which cameras and times the frames they are given were rendered at).
        self.view_observers: list[Callable[[View], None]] = []
        self.terms = terms
        self.priors = priors
        #: Whether steps draw views (any prior; a clip's sampler draws its frames even without one).
        self.uses_sds = bool(self.priors) or getattr(views, "draws_without_priors", False)
        if reference is None and not self.uses_sds:
            raise ValueError(
                f"The {self.name} stage got no reference image and no prior: it has nothing to learn from. Text-to-4D "
                "needs the SD1.5 prior in the static stage and the video prior in the dynamic ones."
            )
        self.reconstruction_schedule = reconstruction_schedule
        self.need_normals = any(term.needs_normals for term in terms)
        self.need_displacement = any(term.needs_displacement for term in terms)
        aspect = next((a for a in (term.render_aspect() for term in terms) if a is not None), None)
        size = config.render_size
        self.render_shape = render_shape(size, aspect) if aspect is not None else (size, size)
        self.render_shape = self.sds_render_shape(0)
        #: The input image's camera at the reference time (None without a reference: text-to-4D).
        self.reference_at_time = None if reference is None else self.reference_view(self.reference_time)

    # ----------------------------------------------------------------- priors
    def attach(self) -> None:
        """Move the priors onto the training device and build the terms' (cached) conditions there."""
        for prior in self.priors:
            prior.to(self.device)
        checkpointing = wants_vae_checkpointing(self.config.loop.vae_checkpointing, self.device)
        apply_vae_checkpointing(self.priors, checkpointing)
        for term in self.terms:
            term.attach(self.device)
            term.build()
        if self.config.loop.offload_priors and self.device.type == "cuda":
            for prior in self.priors:  # conditions are cached: the encoders would only idle on the GPU
                prior.offload_encoders()

    def release(self) -> None:
        """Move the priors back to the CPU (when `loop.offload_priors`), also after an error or a cancel."""
        if self.config.loop.offload_priors:
            for prior in self.priors:
                prior.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

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
    def render_view(
        self,
        view: View,
        size: int | tuple[int, int],
        field: Any = None,
        occupancy: Any = "scene",
        perturb: bool = True,
        displacement: bool = False,
    ) -> dict[str, Tensor]:
        """Render the frames of `view` at size x size (or (H, W)) with `field` (default: the scene's) and
        `occupancy` (default: the scene's grid; None: no empty-space skipping); maps [B, H, W, C] (plus the
        composited displacement when asked, deformation fields)."""
        height, width = (size, size) if isinstance(size, int) else size
        field = self.scene.field if field is None else field
        occupancy = self.scene.occupancy if isinstance(occupancy, str) and occupancy == "scene" else occupancy
        return render_cameras(
            field,
            view.cameras,
            height,
            width,
            times=view.times,
            config=self.config.render,
            occupancy=occupancy,
            shading=view.shading,
            light_dirs=view.light_dirs,
            ambient=view.ambient,
            background=view.background,
            perturb=perturb,
            need_normals=self.need_normals or view.shading != "albedo",
            generator=self.generator if perturb else None,
            need_displacement=displacement,
        )

    def reference_view(self, time: float | None) -> View:
        """The input image's camera, ambient 1 (albedo), white background."""
        cams = reference_camera(self.config.camera).to(self.device)
        times = None if time is None else torch.full((1,), float(time), device=self.device)
        return View(cams, times, "albedo", None, 1.0, torch.ones(3, device=self.device))

    # ----------------------------------------------------------------- one step
    def is_reconstruction_step(self, step: int) -> bool:
        """A step that only reconstructs the reference view (no SDS; never without a reference: text-to-4D)."""
        if self.reference is None:
            return False
        return not self.uses_sds or (self.reconstruction_schedule and self.config.is_reference_step(step))

    def before_step(self, step: int) -> None:
        """Advance the field's own schedule (a deformation grid's level unmasking), and refresh the occupancy grid
        every `update_every` steps (each slot over its own times)."""
        schedule = getattr(self.scene.field, "set_progress", None)
        if schedule is not None:
            schedule(step)
        if step % self.config.occupancy.update_every == 0:
            field = self.scene.field
            self.scene.occupancy.refresh(lambda x, t: field.density(x, t), generator=self.generator)

    def compute_losses(self, step: int) -> dict[str, Tensor]:
        """Render this step's view once and collect every term's weighted losses (the runner sums them)."""
        if self.is_reconstruction_step(step):
            view, at_reference_time = self.reference_at_time, True
            out = self.render_view(view, self.config.reference_size)
        else:
            view, at_reference_time = self.views.draw(self)
            out = self.render_view(view, self.sds_render_shape(step), displacement=self.need_displacement)
        ctx = StepContext(
            step,
            self.progress(step),
            not self.is_reconstruction_step(step),
            view,
            out,
            at_reference_time,
            field=self.scene.field,
            generator=self.generator,
            render_view=self.render_view,
            reference_view=self.reference_at_time,
            targets=self.targets,
        )
        losses: dict[str, Tensor] = {}
        for term in self.terms:
            losses.update(term.losses(ctx))
        return losses

    def sds_render_shape(self, step: int) -> tuple[int, int]:
        """(H, W) of step `step`'s SDS render: a term's render schedule (Dream-in-4D's phases), else render_size at
        the video prior's aspect."""
        progress = self.progress(step)
        sized = next((s for s in (term.render_size(progress) for term in self.terms) if s is not None), None)
        return tuple(sized) if sized is not None else self.render_shape

    def progress(self, step: int) -> float:
        return min(1.0, step / max(1, self.config.steps - 1))

    @torch.no_grad()
    def preview(self) -> Tensor:  # [H, W, 3]
        """The reference view at t = 0 (albedo on white), rendered without jitter."""
        size = self.config.loop.preview_size
        view = self.reference_view(0.0 if self.scene.is_dynamic else None)
        return self.render_view(view, size, perturb=False)["rgb"][0].clamp(0, 1).cpu()

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    # ----------------------------------------------------------------- checkpoints
    def sync_scene(self, step: int) -> Scene:
        """The scene, marked with the steps done and this stage's config (what a checkpoint records)."""
        self.scene.step = step
        self.scene.complete = step >= self.config.steps
        self.scene.stage_config = config_to_dict(self.config)
        return self.scene

    def training_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Optimizer, RNG, the terms' state and bookkeeping (the scene's tensors are added by the runner)."""
        opt_tensors, opt_meta = optimizer_tensors(self.optimizer)
        tensors = {**opt_tensors, **rng_state(), "rng/generator": self.generator.get_state()}
        for term in self.terms:
            tensors.update(term.state_tensors())
        meta = {"training": True, "optimizer": opt_meta, "bad_steps": self.bad_steps, "total_steps": self.config.steps}
        return tensors, meta

    def load_training_state(self, tensors: dict[str, Tensor], meta: dict[str, Any], source: str) -> None:
        check_resumable(meta, self.name, self.scene, source)
        loaded = Scene.from_checkpoint(tensors, meta, source)
        self.scene.field.load_state_dict(loaded.field.state_dict())
        self.scene.occupancy.load_state_dict(loaded.occupancy.state_dict())
        restore_optimizer(self.optimizer, {k: v.to(self.device) for k, v in tensors.items()}, meta["optimizer"])
        set_rng_state(tensors)
        self.generator.set_state(tensors["rng/generator"].to(torch.uint8))
        for term in self.terms:
            term.load_state(tensors, source)
        self.bad_steps = int(meta.get("bad_steps", 0))
        self.step = int(meta["step"])


__all__ = ["Stage", "reference_targets", "slot_priors"]
