"""Oracle multi-view prior: MVDream's slot, knowing the still scene and decoding the camera matrices it is given.

MVDream's camera convention, written out here (not imported from a124_core.multiview_cameras), so a convention bug
in the library cannot cancel itself out. A camera is a 4x4 matrix M (16 numbers when flattened row-major):
  - M = flip_yz @ c2w, where c2w is the OpenGL camera-to-world matrix (columns: right, up, back, position) of a
    camera in a y-up world looking at the origin, and flip_yz = [[1,0,0,0],[0,0,-1,0],[0,1,0,0],[0,0,0,1]] takes
    y-up points (x, y, z) to Blender's z-up (x, -z, y);
  - the position column M[:3, 3] is scaled to unit length (distance and FOV are not in the matrix).
Decoding: M's bottom row is (0, 0, 0, 1), M[:3, :3] is a rotation, the back axis M[:3, 2] equals the position (the
camera looks at the origin) and the right axis M[:3, 0] is horizontal (no z-up component). The position in the
y-up world is (Mx, Mz, -My) of M[:3, 3]; polar = acos(y), azimuth = atan2(x, z) (SPEC 2: 0 looks from +z, growing
toward +x). A matrix that is not such a camera (a transposed one) decodes to nothing and counts as invalid.

The oracle is exact: the "VAE" is the identity (latent = 2 image - 1 at the prior's size) and each branch's epsilon
is that of a point mass, eps = (z_t - sqrt(a) x0) / sqrt(1 - a). The branches are the truth z* shifted by a
constant, x0_u = z* + k and x0_c = z* + k (1 - 1/s), so only CFG at the method's scale s = 50 gives x0 = z*
(another scale or swapped branches shift the brightness by k), and both branches have the truth's spread, so the
x0 std rescale leaves the target unchanged. Invalid cameras get x0 = grey + k for both branches.
Distance and FOV, which the matrices do not carry, are read from the stage's view (`observe`) or the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from a124_core.priors.base import PriorKind, cfg_combine

from . import scenes
from .priors import ImageTextOracle, OraclePrior, OracleText

#: Constant latent offset of the branches (0.5 in image brightness).
BRANCH_SHIFT = 1.0


@dataclass
class OracleViews:
    """What the oracle decoded from the matrices of one step."""

    text: OracleText
    polar_deg: Tensor  # [B]
    azimuth_deg: Tensor  # [B]
    valid: Tensor  # [B] bool: the matrix is an MVDream camera


def decode_mvdream_camera(m: Tensor, tol: float = 1e-4) -> tuple[float, float] | None:
    """(polar, azimuth) in degrees of an MVDream camera matrix [4, 4], or None when it is not one."""
    m = m.double()
    rot, pos = m[:3, :3], m[:3, 3]
    checks = (
        torch.allclose(m[3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=m.dtype), atol=tol),
        abs(float(pos.norm()) - 1.0) < tol,
        torch.allclose(rot.T @ rot, torch.eye(3, dtype=m.dtype), atol=tol),
        abs(float(torch.linalg.det(rot)) - 1.0) < tol,
        torch.allclose(rot[:, 2], pos, atol=tol),
        abs(float(rot[2, 0])) < tol,
    )
    if not all(checks):
        return None
    x, y, z = float(pos[0]), float(pos[2]), -float(pos[1])
    return math.degrees(math.acos(max(-1.0, min(1.0, y)))), math.degrees(math.atan2(x, z))


def scene_views(polar, azimuth, distance, fov, height: int, width: int, scene=scenes.still) -> Tensor:
    """The scene at t = 0 from each camera [B] (degrees, distances): [B, 3, H, W]."""
    return torch.stack(
        [
            scenes.image(scene, 0.0, float(p), float(a), height, width, float(r), float(f))
            for p, a, r, f in zip(polar, azimuth, distance, fov)
        ]
    )


class MultiViewOracle(OraclePrior):
    """MVDream's slot: the still scene from the cameras its matrices encode, exact epsilon at CFG 50."""

    def __init__(self, scene=scenes.still, size: int = 32, num_views: int = 4, distance=1.8, fov_deg=40.0):
        super().__init__(PriorKind.IMAGE_TEXT_MULTIVIEW, size, method_scale=50.0)
        self.scene, self.num_views = scene, num_views
        self.distance, self.fov_deg = distance, fov_deg
        self.invalid_cameras = 0

    def multiview_condition(self, text: OracleText, camera_matrices: Tensor) -> OracleViews:
        mats = torch.as_tensor(camera_matrices, dtype=torch.float32).reshape(-1, 4, 4).cpu()
        decoded = [decode_mvdream_camera(m) for m in mats]
        self.invalid_cameras += sum(d is None for d in decoded)
        polar = torch.tensor([d[0] if d else 90.0 for d in decoded])
        azimuth = torch.tensor([d[1] if d else 0.0 for d in decoded])
        return OracleViews(text, polar, azimuth, torch.tensor([d is not None for d in decoded]))

    def framing(self, batch: int) -> tuple[Tensor, Tensor]:
        """Distance and FOV [B] of the views: the observed stage view's, else the defaults."""
        cams = getattr(self.view, "cameras", None)
        if cams is not None and len(cams) == batch:
            return cams.radius.detach().cpu().float(), cams.fov_y_deg.detach().cpu().float()
        return torch.full((batch,), float(self.distance)), torch.full((batch,), float(self.fov_deg))

    def truth(self, condition: OracleViews, height: int, width: int) -> Tensor:
        """The scene [B, 3, H, W] from each decoded camera (grey where the matrix was not a camera)."""
        distance, fov = self.framing(len(condition.valid))
        images = scene_views(condition.polar_deg, condition.azimuth_deg, distance, fov, height, width, self.scene)
        return torch.where(condition.valid.view(-1, 1, 1, 1), images, torch.full_like(images, 0.5))

    def predict_noise_branches(self, noisy: Tensor, t: Tensor, condition: OracleViews) -> tuple[Tensor, Tensor]:
        if noisy.shape[0] % self.num_views or noisy.shape[0] != len(condition.valid):
            raise AssertionError(f"{noisy.shape[0]} latents for {len(condition.valid)} cameras of {self.num_views}")
        self.calls += 1
        z_star = (self.truth(condition, *self.frame_size(noisy)) * 2 - 1).to(noisy)
        a = self.schedule.alphas_cumprod.to(noisy.device)[t].view(-1, 1, 1, 1)

        def eps(x0: Tensor) -> Tensor:
            return (noisy - a.sqrt() * x0) / (1 - a).sqrt()

        return eps(z_star + BRANCH_SHIFT), eps(z_star + BRANCH_SHIFT * (1 - 1 / self.method_scale))

    def predict_noise(self, noisy: Tensor, t: Tensor, condition: OracleViews, guidance_scale: float) -> Tensor:
        self.scales.append(float(guidance_scale))
        return cfg_combine(torch.cat(self.predict_noise_branches(noisy, t, condition)), guidance_scale)


def oracle_with_views(groups: int = 2, seed: int = 0, size: int = 32) -> tuple[MultiViewOracle, Any, Tensor]:
    """An oracle that has observed `groups` sampled view groups, the views, and the scene's true renders of them."""
    from a124_core.multiview_cameras import sample_multiview_cameras

    oracle = MultiViewOracle(size=size)
    views = sample_multiview_cameras(groups, generator=torch.Generator().manual_seed(seed))
    oracle.observe(SimpleNamespace(cameras=views.cameras))
    cams = views.cameras
    return oracle, views, scene_views(cams.polar_deg, cams.azimuth_deg, cams.radius, cams.fov_y_deg, size, size)


class FrontOnlyTextOracle(ImageTextOracle):
    """A 2D prior that knows the object only as photographs show it, from the front: every render is scored against
    the front view (at the render's elevation, distance and FOV), whatever its azimuth. Alone it grows the front on
    every side (the Janus problem, Dream-in-4D Fig. 4); it still checks that the view-dependent prompt is asked for
    at the render's azimuth relative to the front."""

    def __init__(self, front_azimuth_deg: float, scene=scenes.still, size: int = 32):
        super().__init__(scene, size, reference_azimuth=front_azimuth_deg)

    def truth(self, cams: Any, height: int, width: int) -> Tensor:
        front = torch.full_like(cams.azimuth_deg.cpu(), self.reference_azimuth)
        polar, radius, fov = (x.detach().cpu() for x in (cams.polar_deg, cams.radius, cams.fov_y_deg))
        return scene_views(polar, front, radius, fov, height, width, self.scene)
