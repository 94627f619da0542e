"""A trained run's outputs: the test orbit's videos and the animated GLB."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .prepare import PreparedRun


def render_outputs(run: PreparedRun, scene: Any) -> None:
    """The test orbit's videos (grid per channel, one per view, orbit while animating, reference camera) and the
    scene as one animated GLB (the way its representation exports)."""
    from ..outputs.export import write_video
    from ..outputs.render import orbit_grid_video, render_fixed_camera, render_orbit_animating, render_test_orbit
    from ..training.representations import export_animated_glb

    s, summary = run.settings, run.summary
    orbit = replace(
        run.preset.orbit,
        num_views=s.render_views or run.preset.orbit.num_views,
        num_frames=s.render_frames or run.preset.orbit.num_frames,
        resolution=s.render_resolution or run.preset.orbit.resolution,
    )
    render_config = run.preset.refine.render
    scene.to(run.device)
    renders = run.out / "renders"
    channels = ("albedo", "depth", "normal", "mask")
    views = render_test_orbit(scene.field, orbit, channels, scene.occupancy, render_config)
    for channel in channels:
        path = write_video(orbit_grid_video(views[channel]), renders / f"orbit_grid_{channel}.mp4", s.fps)
        summary.outputs[f"orbit_grid_{channel}"] = str(path)
    for v in range(orbit.num_views):
        write_video(views["albedo"][v], renders / f"orbit_albedo_view{v:02d}.mp4", s.fps)
    summary.outputs["orbit_views"] = str(renders / "orbit_albedo_view*.mp4")
    animating = render_orbit_animating(scene.field, orbit, ("albedo",), scene.occupancy, render_config)["albedo"]
    summary.outputs["orbit_animating"] = str(write_video(animating, renders / "orbit_animating_albedo.mp4", s.fps))
    fixed = render_fixed_camera(scene.field, orbit, ("albedo",), scene.occupancy, render_config)["albedo"]
    summary.outputs["reference_view"] = str(write_video(fixed, renders / "reference_view_albedo.mp4", s.fps))
    mesh = replace(run.preset.mesh, num_frames=orbit.num_frames, fps=float(s.fps))
    exported = export_animated_glb(scene.field, run.out / "meshes" / "animated_mesh.glb", mesh, run.device)
    summary.outputs["animated_mesh"] = str(exported.path)
    summary.notes.append(f"animated mesh: {exported.bytes:,} bytes; {exported.note}")


__all__ = ["render_outputs"]
