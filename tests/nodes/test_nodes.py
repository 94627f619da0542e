"""Every node runs on tiny priors through its public function, with stand-in ComfyUI modules."""

from __future__ import annotations

import json
from fractions import Fraction

import fake_comfy
import pytest
import torch
from comfy_api.v0_0_2 import io
from node_env import node_classes


def node(pack, name):
    return node_classes(pack)[name]


def test_every_node_is_documented(pack, comfy_env):
    """V3 nodes (one class each): ids, display names, category, a tooltip on every input and output."""
    classes = node_classes(pack)
    assert len(classes) == len(pack.NODES) >= 20
    for name, cls in classes.items():
        schema = cls.GET_SCHEMA()
        assert issubclass(cls, io.ComfyNode) and name.startswith("A124_")
        assert schema.display_name.endswith("(Animate124)")
        assert schema.category.startswith("Animate124/") and schema.description
        assert all(o.tooltip for o in schema.outputs), name
        # ComfyUI 0.3.x refuses a schema whose input and output ids overlap, and names an output without a display
        # name by its type.
        assert not {i.id for i in schema.inputs} & {o.id for o in schema.outputs}, name
        assert all(o.display_name for o in schema.outputs), name
        for section in ("required", "optional"):
            for input_name, spec in cls.INPUT_TYPES().get(section, {}).items():
                assert spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"
        assert not any(hasattr(cls, old) for old in ("VALIDATE_INPUTS", "IS_CHANGED")), f"{name}: V1 leftovers"


def test_reference_inverts_loadimage_mask(pack, comfy_env, panda_rgba):
    """LoadImage's MASK is 1 - alpha: the node must invert it (the object, not the background, is kept)."""
    image, mask = panda_rgba
    ref, preview, alpha = node(pack, "A124_Reference").execute(image, 0.2, mask=mask)
    assert preview.shape == (1, 256, 256, 3) and alpha.shape == (1, 256, 256)
    # Recentred: the object sits in the middle, the border (ratio 0.2) is background.
    assert ref.mask[0, 128 - 20 : 128 + 20, 128 - 20 : 128 + 20].mean() > 0.5
    assert ref.mask[0, :20].sum() == 0 and ref.mask[0, :, :20].sum() == 0
    same, _, _ = node(pack, "A124_Reference").execute(image, 0.2, mask=1.0 - mask, mask_is_foreground=True)
    assert torch.equal(same.rgb, ref.rgb)
    # Not inverting would keep the background: a different reference.
    wrong, _, _ = node(pack, "A124_Reference").execute(image, 0.2, mask=1.0 - mask)
    assert not torch.allclose(wrong.rgb, ref.rgb)


def test_reference_with_depth_model(pack, comfy_env, panda_rgba):
    image, mask = panda_rgba
    assert (
        "depth_models/tiny-dpt"
        in node_classes(pack)["A124_Reference"].INPUT_TYPES()["optional"]["depth_model"][1]["options"]
    )
    ref, _, _ = node(pack, "A124_Reference").execute(image, 0.2, mask=mask, depth_model="depth_models/tiny-dpt")
    assert ref.depth is not None and ref.depth_source == "model:tiny-dpt"
    assert (
        float(ref.depth[ref.mask > 0].max()) == pytest.approx(1.0) and float(ref.depth[ref.mask == 0].abs().max()) == 0
    )


def test_prior_loaders_give_their_kind(pack, comfy_env):
    from a124_core.priors.base import PriorKind

    sd_inputs = node_classes(pack)["A124_LoadSD15Prior"].INPUT_TYPES()["required"]
    assert "diffusers/stable-diffusion-v1-5" in sd_inputs["model"][1]["options"]
    assert "checkpoints/tiny-sd15.safetensors" in sd_inputs["model"][1]["options"]
    (sd,) = node(pack, "A124_LoadSD15Prior").execute("diffusers/stable-diffusion-v1-5", "none")
    (single,) = node(pack, "A124_LoadSD15Prior").execute(
        "checkpoints/tiny-sd15.safetensors", "configs/stable-diffusion-v1-5"
    )
    (z123,) = node(pack, "A124_LoadZero123Prior").execute("diffusers/zero123-xl")
    (video,) = node(pack, "A124_LoadVideoPrior").execute("diffusers/text-to-video-ms-1.7b", 48, 32)
    (cnet,) = node(pack, "A124_LoadControlNetTilePrior").execute(
        "controlnet/control_v11f1e_sd15_tile", "diffusers/stable-diffusion-v1-5", "none", "none"
    )
    assert [p.kind for p in (sd, single, z123, video, cnet)] == [
        PriorKind.IMAGE_TEXT,
        PriorKind.IMAGE_TEXT,
        PriorKind.IMAGE_POSE,
        PriorKind.VIDEO_TEXT,
        PriorKind.IMAGE_CONTROL,
    ]
    assert video.image_size == (32, 48)
    # Same weights through both SD1.5 layouts.
    for a, b in zip(sd.unet.state_dict().values(), single.unet.state_dict().values()):
        assert torch.allclose(a, b)
    # Loaded outside inference mode: SDS can backpropagate through the VAE encoder.
    with torch.inference_mode():
        assert not next(sd.vae.parameters()).is_inference()


def test_loader_validation_names_what_is_wrong(pack, comfy_env):
    sd = node_classes(pack)["A124_LoadSD15Prior"]
    msg = sd.validate_inputs("checkpoints/tiny-sd15.safetensors", "none")
    assert isinstance(msg, str) and "config_dir" in msg
    msg = sd.validate_inputs("diffusers/missing-model", "none")
    assert isinstance(msg, str) and "missing-model" in msg and "diffusers" in msg
    assert sd.validate_inputs("diffusers/stable-diffusion-v1-5", "none") is True
    video = node_classes(pack)["A124_LoadVideoPrior"]
    assert "both" in video.validate_inputs("diffusers/text-to-video-ms-1.7b", 144, 0)
    # A model folder of the wrong kind fails when loading, with the library's message.
    with pytest.raises(ValueError, match="Zero123"):
        node(pack, "A124_LoadZero123Prior").execute("diffusers/stable-diffusion-v1-5")


def test_textual_inversion_node_writes_embedding(pack, comfy_env, panda_rgba, models_dir):
    image, mask = panda_rgba
    ref, _, _ = node(pack, "A124_Reference").execute(image, 0.2, mask=mask)
    (sd,) = node(pack, "A124_LoadSD15Prior").execute("diffusers/stable-diffusion-v1-5", "none")
    ti = node(pack, "A124_TextualInversion")
    assert "lower case" in node_classes(pack)["A124_TextualInversion"].validate_inputs("Bad Token", "panda")
    vocab = len(sd.tokenizer)
    emb, token = ti.execute(sd, ref, "_panda_", "panda", "smoke", 3, 2, 0, 1, save_to_embeddings=True)
    assert token == "_panda_" and emb.vectors.shape == (1, 32) and emb.path.is_file()
    assert len(sd.tokenizer) == vocab, "the shared SD1.5 prior is not changed by the node"
    # The copy in models/embeddings loads back through Load Embedding with the same vectors.
    loaded, name = node(pack, "A124_LoadEmbedding").execute("_panda_.safetensors")
    assert name == "_panda_" and torch.equal(loaded.vectors, emb.vectors)
    table = sd.text_encoder.get_input_embeddings().weight
    init = table[sd.tokenizer.convert_tokens_to_ids("panda")]
    assert not torch.equal(emb.vectors[0], init)  # trained away from the initializer


def test_wrong_scene_file_fails_validation(pack, comfy_env, tmp_path):
    from a124_core.fields.static import StaticField
    from a124_core.presets import preset
    from a124_core.rendering.occupancy import OccupancyGrid
    from a124_core.training.scene import Scene

    cfg = preset("smoke").static
    scene = Scene(StaticField(cfg.field), OccupancyGrid(cfg.occupancy, 1, cfg.field.grid.bound), "static")
    (path,) = node(pack, "A124_SaveScene").execute(scene, "unit")
    entry = "output/scenes/" + path.rsplit("/", 1)[-1]
    assert entry in node_classes(pack)["A124_LoadStaticScene"].INPUT_TYPES()["required"]["scene_file"][1]["options"]
    assert node_classes(pack)["A124_LoadStaticScene"].validate_inputs(entry) is True
    msg = node_classes(pack)["A124_LoadDynamicScene"].validate_inputs(entry)
    assert isinstance(msg, str) and "static" in msg and "Load Static Scene" in msg
    (loaded,) = node(pack, "A124_LoadStaticScene").execute(entry)
    for a, b in zip(scene.field.state_dict().values(), loaded.field.state_dict().values()):
        assert torch.equal(a, b)
    # A scene file is not a resumable checkpoint of the coarse stage.
    assert "coarse" in node_classes(pack)["A124_CoarseStage"].validate_inputs(resume_from=entry[len("output/") :])


def test_static_stage_render_save_evaluate(pack, comfy_env, panda_rgba):
    """Smoke preset with both tiny priors, under inference mode like ComfyUI; then render, save, evaluate."""
    image, mask = panda_rgba
    ref, _, _ = node(pack, "A124_Reference").execute(image, 0.2, mask=mask)
    (sd,) = node(pack, "A124_LoadSD15Prior").execute("diffusers/stable-diffusion-v1-5", "none")
    (z123,) = node(pack, "A124_LoadZero123Prior").execute("diffusers/zero123-xl")
    with torch.inference_mode():
        scene, preview, ckpt = node(pack, "A124_StaticStage").execute(
            "a photo of a panda", "smoke", 0, 1, reference=ref, sd_prior=sd, zero123_prior=z123, run_name="unit"
        )
    assert scene.stage == "static" and scene.complete and scene.step == 8
    assert preview.shape == (1, 32, 32, 3) and torch.isfinite(preview).all()
    assert ckpt.endswith("checkpoints/unit/static.safetensors")
    state = comfy_env["comfy"].state
    assert state["updates"] == 8 and state["previews"] >= 1
    out = node(pack, "A124_OrbitRender").execute(scene, "test orbit", "albedo", 3, 4, 24, 10.0, True, "unit")
    images, video, comfy_video = out
    assert images.shape == (3, 24, 24, 3)  # static scene: one frame per view
    shown = out.ui.as_dict()
    assert shown["images"][0]["subfolder"] == "animate124/videos" and shown["animated"] == (True,)
    from a124_core.outputs.export import read_video

    frames, fps = read_video(video)
    assert frames.shape[0] == 3 and fps == pytest.approx(10.0)
    # ComfyUI's VIDEO holds the exact frames (not the lossy mp4) at the exact rate.
    components = comfy_video.get_components()
    assert torch.equal(components.images, images) and components.frame_rate == Fraction(10)
    assert comfy_video.get_dimensions() == (24, 24)
    grid = node(pack, "A124_OrbitRender").execute(scene, "orbit grid", "mask", 2, 1, 16, 12.5, False, "unit")
    assert grid[0].shape == (1, 16, 32, 3) and grid[1] == ""
    assert grid[2].get_components().frame_rate == Fraction(25, 2)
    assert grid[2].get_dimensions() == (32, 16)  # (width, height): two views side by side
    result = node(pack, "A124_Evaluate").execute(
        scene, ref, "clip/tiny-clip-vit-b-32", "a panda is dancing", "a dog is running\n", 2, 2, 32
    )
    scores = json.loads(result[0])
    assert set(scores) == {"clip_r", "clip_t", "clip_i", "clip_f"} and 0 <= scores["clip_r"] <= 1
    assert scores["clip_f"] == pytest.approx(result[4])


def test_interrupt_leaves_checkpoint_and_resume_matches(pack, models_dir, tmp_path, monkeypatch, panda_rgba):
    """Interrupt at the 3rd progress update -> a checkpoint; resuming it ends where an uninterrupted run ends."""
    image, mask = panda_rgba
    out = tmp_path / "output"
    out.mkdir()
    monkeypatch.setitem(__import__("sys").modules, "folder_paths", fake_comfy.make_folder_paths(models_dir, out))
    fake_comfy.install(monkeypatch, fake_comfy.make_comfy(interrupt_after=3))
    ref, _, _ = node(pack, "A124_Reference").execute(image, 0.2, mask=mask)
    stage = node(pack, "A124_StaticStage")
    with pytest.raises(fake_comfy.InterruptProcessingException):
        stage.execute("", "smoke", 0, 5, reference=ref, run_name="cut")
    latest = out / "animate124" / "checkpoints" / "cut" / "static_latest.safetensors"
    assert latest.is_file()
    assert node_classes(pack)["A124_StaticStage"].validate_inputs("checkpoints/cut/static_latest.safetensors") is True
    fake_comfy.install(monkeypatch, fake_comfy.make_comfy())
    resumed, _, _ = stage.execute(
        "", "smoke", 0, 5, reference=ref, run_name="cut", resume_from="checkpoints/cut/static_latest.safetensors"
    )
    full, _, _ = stage.execute("", "smoke", 0, 5, reference=ref, run_name="full")
    for a, b in zip(resumed.field.state_dict().values(), full.field.state_dict().values()):
        assert torch.equal(a, b)
