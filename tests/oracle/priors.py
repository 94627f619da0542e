"""Oracle priors: implement the Prior interface with no learned weights and know the scene the stage should learn.

Each returns the exact epsilon of a point-mass prior at the ground-truth render of the view it is asked about:
with z_t = sqrt(a) z + sqrt(1 - a) eps, eps(z*) = (z_t - sqrt(a) z*) / sqrt(1 - a), so SDS pulls the render's latent
straight at the truth. The "VAE" is the identity (latent = 2 image - 1 at the prior's size) and the schedule is
SD1.5's. Classifier-free guidance is exercised: the unconditional branch is a point mass at grey (latent 0) and
the conditional one lies 1/s of the way from it to the truth, so only eps_u + s (eps_c - eps_u) at the scale the
method prescribes (SPEC 5) targets the truth; a wrong scale or swapped branches do not.

What each oracle is told and what it works out itself:
- image-pose: decodes the [B, 4] pose it is given with SPEC 2 (written out here) into a camera, ray-traces the
  scene at t = 0 (the reference image) from it;
- video / image-text: learn each step's cameras and times from the stage's `view_observers` hook (the stage code
  path under test is the real one); the video oracle expects frames in increasing time (frame k of F at
  t_min + k (t_max - t_min) / (F - 1)), as a video model does;
- image-control: renders the frozen condition scene it is given at the view of each frame and checks that the
  control image equals it; a tile model reproduces its control image, so a control image from another view
  becomes the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from a124_core.guidance.sds import center_square
from a124_core.priors.base import NoiseSchedule, Prior, PriorKind, cfg_combine
from a124_core.rendering.renderer import RenderConfig, render_cameras

from . import scenes


def sd_schedule(steps: int = 1000) -> NoiseSchedule:
    """SD1.5's scaled-linear DDPM schedule (beta 0.00085 -> 0.012)."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, steps, dtype=torch.float64) ** 2
    return NoiseSchedule(alphas_cumprod=torch.cumprod(1 - betas, 0).float())


@dataclass
class OracleText:
    """What a text prior's condition carries here: the prompts, and the azimuth of a view-dependent one."""

    prompt: str
    negative: str = ""
    azimuth_deg: Tensor | None = None


@dataclass
class OraclePose:
    polar_deg: Tensor  # [B]
    azimuth_deg: Tensor  # [B]


@dataclass
class OracleControl:
    text: OracleText
    image: Tensor  # [B, 3, S, S]


@dataclass
class ViewDependentOracleText:
    prompt: str
    negative: str
    calls: list = field(default_factory=list)

    def at_azimuth(self, azimuth_deg: float | Tensor) -> OracleText:
        az = torch.as_tensor(azimuth_deg, dtype=torch.float32).reshape(-1)
        self.calls.append(az)
        return OracleText(self.prompt, self.negative, az)


class OraclePrior(Prior):
    """Identity latents, SD1.5 schedule, exact point-mass epsilon with CFG at the method's scale."""

    def __init__(self, kind: PriorKind, image_size: int | tuple[int, int], method_scale: float):
        self.kind = kind
        self.image_size = image_size
        self.method_scale = method_scale
        self.schedule = sd_schedule()
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.view = None  # the stage's last SDS view (set through the hook)
        self.calls = 0
        self.scales: list[float] = []

    def observe(self, view: Any) -> None:
        self.view = view

    def encode_images(self, images: Tensor) -> Tensor:
        return images * 2 - 1

    def to(self, device: torch.device | str) -> OraclePrior:
        return self

    def text_condition(self, prompt: str, negative: str = "", tokens: dict | None = None) -> OracleText:
        return OracleText(prompt, negative)

    def guided_eps(self, noisy: Tensor, t: Tensor, truth: Tensor, guidance_scale: float) -> Tensor:
        """CFG epsilon whose target is `truth` [B, ...] (images in [0, 1]) at the method's scale."""
        self.calls += 1
        self.scales.append(float(guidance_scale))
        a = self.schedule.alphas_cumprod[t].view(-1, *([1] * (noisy.dim() - 1)))
        z_star = truth * 2 - 1  # truth already in the latent layout
        z_uncond = torch.zeros_like(z_star)
        z_cond = z_uncond + (z_star - z_uncond) / self.method_scale

        def eps(z0: Tensor) -> Tensor:
            return (noisy - a.sqrt() * z0) / (1 - a).sqrt()

        return cfg_combine(torch.cat([eps(z_uncond), eps(z_cond)]), guidance_scale)

    def frame_size(self, noisy: Tensor) -> tuple[int, int]:
        return int(noisy.shape[-2]), int(noisy.shape[-1])


class ImagePoseOracle(OraclePrior):
    """Zero123's slot: the still scene (what the reference image shows) from the decoded relative pose."""

    def __init__(self, scene=scenes.still, size: int = 32, reference_polar=90.0, reference_azimuth=0.0):
        super().__init__(PriorKind.IMAGE_POSE, size, method_scale=5.0)
        self.scene, self.reference_polar, self.reference_azimuth = scene, reference_polar, reference_azimuth
        self.reference_error: float | None = None

    def reference_condition(self, image: Tensor) -> Tensor:
        size = image.shape[-1]
        truth = scenes.image(self.scene, 0.0, self.reference_polar, self.reference_azimuth, size, size)
        self.reference_error = float((image[0] - truth).abs().mean())
        return image

    def pose_condition(self, reference: Tensor, pose: Tensor) -> OraclePose:
        pose = torch.as_tensor(pose, dtype=torch.float32)
        d_polar = torch.rad2deg(pose[:, 0])  # SPEC 2: [rad(d_polar), sin(d_az), cos(d_az), d_r]
        d_azimuth = torch.rad2deg(torch.atan2(pose[:, 1], pose[:, 2]))
        return OraclePose(self.reference_polar + d_polar, self.reference_azimuth + d_azimuth)

    def predict_noise(self, noisy: Tensor, t: Tensor, condition: OraclePose, guidance_scale: float) -> Tensor:
        h, w = self.frame_size(noisy)
        truth = torch.stack(
            [
                scenes.image(self.scene, 0.0, float(p), float(a), h, w)
                for p, a in zip(condition.polar_deg, condition.azimuth_deg)
            ]
        )
        return self.guided_eps(noisy, t, truth, guidance_scale)


class ImageTextOracle(OraclePrior):
    """SD's slot in the static stage: the still scene from the camera the stage drew; checks the view-dependent
    prompt was asked for at that camera's azimuth relative to the reference."""

    def __init__(self, scene=scenes.still, size: int = 32, reference_azimuth: float = 0.0):
        super().__init__(PriorKind.IMAGE_TEXT, size, method_scale=100.0)
        self.scene, self.reference_azimuth = scene, reference_azimuth
        self.azimuth_mismatches = 0

    def view_dependent_condition(self, prompt: str, negative: str = "") -> ViewDependentOracleText:
        return ViewDependentOracleText(prompt, negative)

    def predict_noise(self, noisy: Tensor, t: Tensor, condition: OracleText, guidance_scale: float) -> Tensor:
        cams = self.view.cameras
        expected = torch.remainder(cams.azimuth_deg.cpu() - self.reference_azimuth + 180, 360) - 180
        got = torch.remainder(condition.azimuth_deg + 180, 360) - 180
        if condition.azimuth_deg is None or not torch.allclose(got, expected, atol=1e-3):
            self.azimuth_mismatches += 1
        return self.guided_eps(noisy, t, self.truth(cams, *self.frame_size(noisy)), guidance_scale)

    def truth(self, cams: Any, height: int, width: int) -> Tensor:
        """The scene from each camera [B] (its angles; the static cameras' radius 1.8 and FOV 40): [B, 3, H, W]."""
        return torch.stack(
            [
                scenes.image(self.scene, 0.0, float(p), float(a), height, width)
                for p, a in zip(cams.polar_deg.cpu(), cams.azimuth_deg.cpu())
            ]
        )


class VideoOracle(OraclePrior):
    """The video slot: the moving scene over the clip's cameras, frames in increasing time."""

    def __init__(self, scene=scenes.moving, size: int | tuple[int, int] = 32):
        super().__init__(PriorKind.VIDEO_TEXT, size, method_scale=100.0)
        self.scene = scene

    def encode_images(self, images: Tensor) -> Tensor:  # [F, 3, H, W] -> [1, 3, F, H, W]
        return (images * 2 - 1).permute(1, 0, 2, 3)[None]

    def decode_latents(self, latents: Tensor) -> Tensor:  # [1, 3, F, H, W] -> [F, 3, H, W] in [0, 1]
        """The identity VAE's decoder (Dream-in-4D's decoded-RGB loss)."""
        return ((latents[0].permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1)

    def frame_times(self, num_frames: int) -> list[float]:
        times = self.view.times.detach().cpu()
        lo, hi = float(times.min()), float(times.max())
        return [lo + (hi - lo) * k / max(1, num_frames - 1) for k in range(num_frames)]

    def predict_noise(self, noisy: Tensor, t: Tensor, condition: OracleText, guidance_scale: float) -> Tensor:
        num_frames = noisy.shape[2]
        cams = self.view.cameras
        if len(cams) != num_frames:
            raise AssertionError(f"the stage gave {num_frames} frames for a view of {len(cams)} cameras")
        h, w = self.frame_size(noisy)
        frames = [
            self.frame(tk, float(p), float(a), h, w)
            for tk, p, a in zip(self.frame_times(num_frames), cams.polar_deg.cpu(), cams.azimuth_deg.cpu())
        ]
        truth = torch.stack(frames).permute(1, 0, 2, 3)[None]  # [1, 3, F, H, W]
        return self.guided_eps(noisy, t, truth, guidance_scale)

    def frame(self, t: float, polar_deg: float, azimuth_deg: float, height: int, width: int) -> Tensor:
        """The true frame [3, H, W] at time t from (polar, azimuth)."""
        return scenes.image(self.scene, t, polar_deg, azimuth_deg, height, width)


class ImageControlOracle(OraclePrior):
    """ControlNet-Tile's slot: the truth at the trained frame's view when the control image is the frozen
    condition scene's render of that same view and time; otherwise the control image itself."""

    def __init__(
        self,
        condition_scene: Any,
        control_frames: tuple[int, ...],
        render: RenderConfig,
        clip_shape: tuple[int, int],
        scene=scenes.moving,
        size: int = 32,
    ):
        """condition_scene: the frozen coarse scene; render / clip_shape: how the stage renders a clip."""
        super().__init__(PriorKind.IMAGE_CONTROL, size, method_scale=7.5)
        self.condition_scene, self.control_frames, self.render = condition_scene, control_frames, render
        self.clip_shape = clip_shape
        self.scene = scene
        self.matches = 0
        self.mismatches = 0

    def control_condition(self, text: OracleText, control_images: Tensor, controlnet_prompt: str = "") -> Any:
        return OracleControl(text, control_images.detach())

    @torch.no_grad()
    def expected_control(self, frames: list[int], height: int, width: int) -> Tensor:
        view, scene = self.view, self.condition_scene
        idx = torch.as_tensor(frames)
        out = render_cameras(
            scene.field,
            view.cameras[idx],
            height,
            width,
            times=view.times[idx],
            config=self.render,
            occupancy=scene.occupancy,
            shading=view.shading,
            light_dirs=None if view.light_dirs is None else view.light_dirs[idx],
            ambient=view.ambient,
            background=view.background,
            need_normals=view.shading != "albedo",
        )
        return center_square(out["rgb"].permute(0, 3, 1, 2).clamp(0, 1))

    def predict_noise(self, noisy: Tensor, t: Tensor, condition: OracleControl, guidance_scale: float) -> Tensor:
        frames = list(self.control_frames)
        control = condition.image
        expected = self.expected_control(frames, *self.clip_shape)
        same = control.shape == expected.shape and bool((control - expected).abs().max() < 1e-4)
        self.matches += int(same)
        self.mismatches += int(not same)
        h, w = self.frame_size(noisy)
        cams, times = self.view.cameras, self.view.times.cpu()
        truth = torch.stack(
            [
                scenes.image(self.scene, float(times[f]), float(cams.polar_deg[f]), float(cams.azimuth_deg[f]), h, w)
                for f in frames
            ]
        )
        if not same:
            truth = torch.nn.functional.interpolate(control, size=(h, w), mode="bilinear", antialias=True)
        return self.guided_eps(noisy, t, truth, guidance_scale)
