"""The video-to-4D nodes (issue 26): Reference Video from an IMAGE batch, a VIDEO file (Load Video) or frames in
memory, ComfyUI's masks inverted, every bad input refused in one line before any model is built or file written, the
stages taking the clip, and the mesh-from-video nodes."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from comfy_api.v0_0_2 import InputImpl, Types
from node_env import node_classes

from a124_core.reference import build_clip, load_clip_video
from tests.reference.conftest import empty_homes, no_rembg  # noqa: F401 (fixtures: no rembg model reachable)
from tests.reference.videos import moving_square, write_vfr_mp4, write_video


def node(pack, name):
    return node_classes(pack)[name]


@pytest.fixture(scope="module")
def square():
    """The sliding square: IMAGE batch [6, 48, 64, 3] and ComfyUI masks [6, 48, 64] (1 = transparent)."""
    frames, masks = moving_square(n=6)
    return torch.from_numpy(frames).float() / 255, 1 - torch.from_numpy(masks).float() / 255


def reference_video(pack, **inputs):
    return node(pack, "A124_ReferenceVideo").execute(0.2, inputs.pop("max_frames", 64), **inputs)


def test_image_batch_with_comfy_masks_is_the_librarys_clip(pack, comfy_env, square):
    """ComfyUI's masks (1 = transparent) are inverted: the clip is `build_clip` of the frames with 1 = object masks;
    taken as already 1 = object they cover every border and are refused as inverted."""
    frames, masks = square
    clip, first, preview, note = reference_video(pack, images=frames, mask=masks)
    expected = build_clip(frames, 1 - masks)
    assert torch.equal(clip.rgb, expected.rgb) and torch.equal(clip.mask, expected.mask) and len(clip) == 6
    assert first is clip.first and clip.foreground_source == "mask"
    assert preview.shape == (6, 256, 256, 3) and torch.allclose(preview[0], first.preview, atol=1e-6)
    assert note == "6 frames, foreground from mask."
    with pytest.raises(ValueError, match="look inverted"):
        reference_video(pack, images=frames, mask=masks, mask_is_foreground=True)


def test_load_video_file_keeps_its_alpha(pack, comfy_env, square, tmp_path):
    """A Load Video VIDEO is its file, read by the library (ComfyUI decodes RGB only): the alpha is the foreground."""
    frames, masks = square
    rgba = torch.cat([frames, 1 - masks[..., None]], -1).mul(255).round().byte().numpy()
    path = write_video(tmp_path / "clip.webm", rgba, 12.0, "libvpx-vp9", "yuva420p", ("-lossless", "1"))
    clip, _, _, note = reference_video(pack, video=InputImpl.VideoFromFile(str(path)))
    assert clip.foreground_source == "alpha" and clip.fps == pytest.approx(12, rel=1e-3)  # WebM: ms timestamps
    assert note.startswith("6 frames at 12 fps, foreground from alpha")
    assert torch.equal(clip.rgb, load_clip_video(path).rgb)


def test_video_in_memory_with_masks_and_the_frame_budget(pack, comfy_env, square):
    """A VIDEO of frames in memory (a video model's, Create Video's) with a MASK batch; over the budget the note says
    which frames are kept."""
    frames, masks = square
    video = InputImpl.VideoFromComponents(Types.VideoComponents(frames, Fraction(12)))
    clip, _, preview, note = reference_video(pack, video=video, mask=masks, max_frames=4)
    assert clip.source_index.tolist() == [0, 2, 4] and clip.fps == 6.0 and preview.shape[0] == 3
    assert "every 2nd frame is used (3 frames: 0, 2, 4) over the whole 0.42 s at 6 fps" in note


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f, m: (f, m[:5]), "The clip has 6 frames but 5 masks"),
        (lambda f, m: (f[:1], m[:1]), "1 frame; a video needs at least 2"),
        (lambda f, m: (f, torch.cat([m[:3], torch.ones_like(m[3:4]), m[4:]])), "The mask of frame 3 (counted from 0)"),
        (lambda f, m: (f, m[:, :40]), "The mask of frame 0 is 64x40 px but the frame is 64x48 px"),
    ],
)
def test_bad_clip_is_one_line(pack, comfy_env, square, change, expected):
    frames, masks = change(*square)
    with pytest.raises(ValueError) as err:
        reference_video(pack, images=frames, mask=masks)
    assert expected in str(err.value) and "\n" not in str(err.value)


@pytest.mark.usefixtures("no_rembg")
def test_no_alpha_and_no_rembg_model(pack, comfy_env, square):
    with pytest.raises(FileNotFoundError, match="no alpha and no masks") as err:
        reference_video(pack, images=square[0])
    assert "Reference Video node's mask input" in str(err.value) and "\n" not in str(err.value)


def test_variable_frame_rate_file_is_refused_also_with_masks(pack, comfy_env, square, tmp_path):
    frames, masks = square
    rgb = (frames * 255).round().byte().numpy()
    vfr = write_vfr_mp4(tmp_path / "vfr.mp4", np.concatenate([rgb, rgb]))
    with pytest.raises(ValueError, match="variable frame rate"):
        reference_video(pack, video=InputImpl.VideoFromFile(str(vfr)), mask=torch.cat([masks, masks]))


def test_validation_wants_one_clip(pack, comfy_env):
    validate = node(pack, "A124_ReferenceVideo").validate_inputs
    assert "wire an IMAGE batch into 'images' or a VIDEO" in validate(border_ratio=0.2, max_frames=8)
    assert "not both" in validate(border_ratio=0.2, max_frames=8, images=None, video=None)
    assert validate(border_ratio=0.2, max_frames=8, video=None) is True
    assert "max_frames=1 is outside [2, 1024]" in validate(border_ratio=0.2, max_frames=1, images=None)


def test_static_stage_takes_the_clips_first_frame(pack, comfy_env, square):
    """The static stage given the clip trains exactly as given its first frame (same seed, same steps)."""
    frames, masks = square
    clip, first, _, _ = reference_video(pack, images=frames, mask=masks)
    static = node(pack, "A124_StaticStage").execute
    with torch.inference_mode():
        a = static("a red square", "smoke", 2, 0, reference=clip, run_name="a")[1]
        b = static("a red square", "smoke", 2, 0, reference=first, run_name="b")[1]
    assert torch.equal(a, b)


def test_mesh_from_video_refuses_a_bad_clip_before_any_work(pack, comfy_env, tmp_path):
    """An empty mask frame stops Animate Mesh from Video before the fit: no checkpoint folder, no GLB."""
    from pathlib import Path

    from input_videos import mesh_frames

    from tests.meshes.builder import build_test_mesh, write_glb

    inputs = Path(comfy_env["folder_paths"].get_input_directory())
    (inputs / "3d").mkdir(parents=True)
    write_glb(build_test_mesh(), inputs / "3d" / "model.glb")
    rgba = torch.from_numpy(mesh_frames()).float() / 255
    masks = 1 - rgba[..., 3]
    masks[5] = 1.0  # frame 5 fully transparent
    run = node(pack, "A124_AnimateMeshFromVideo").execute
    with pytest.raises(ValueError, match=r"The mask of frame 5 \(counted from 0\) is empty"):
        run("3d/model.glb", "smoke", 2, 0, 3, 8.0, 1000.0, images=rgba[..., :3], mask=masks)
    out = Path(comfy_env["folder_paths"].get_output_directory())
    assert not (out / "animate124").exists()


def test_coarse_stage_trains_on_the_clip(pack, comfy_env, square, monkeypatch):
    """The clip in the coarse stage's reference input reaches the library's stage as the clip (video to 4D), not as
    one image, and the stage trains on it."""
    import a124_core.training.coarse_stage as coarse_module
    from a124_core.reference import ReferenceClip

    seen = []

    class Spy(coarse_module.CoarseStage):
        def __init__(self, config, reference, *args, **kwargs):
            seen.append(reference)
            super().__init__(config, reference, *args, **kwargs)

    monkeypatch.setattr(coarse_module, "CoarseStage", Spy)
    frames, masks = square
    clip, first, _, _ = reference_video(pack, images=frames, mask=masks)
    with torch.inference_mode():
        static = node(pack, "A124_StaticStage").execute("a red square", "smoke", 2, 0, reference=first)[0]
        scene = node(pack, "A124_CoarseStage").execute(
            static, "a red square", "smoke", 2, 0, reference=clip, representation="deformation"
        )[0]
    assert isinstance(seen[0], ReferenceClip) and len(seen[0]) == 6 and seen[0] is not clip  # a copy: never mutated
    assert scene.stage == "coarse" and scene.complete
