"""The tiny-model builder writes the real on-disk layouts, and the single-file export is exact."""

from __future__ import annotations

import json

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint
from safetensors import safe_open
from transformers import CLIPTextModel, CLIPTokenizer

from a124_core.priors.ldm_format import unet_to_ldm, vae_to_ldm
from a124_core.priors.tiny import TINY_WORDS, build_tiny_models, write_clip_tokenizer


def test_clip_tokenizer_offline_whole_words_and_fallback(tmp_path):
    tok = CLIPTokenizer.from_pretrained(write_clip_tokenizer(tmp_path / "tok"), local_files_only=True)
    assert tok.model_max_length == 77
    ids = tok("a panda is dancing, front view").input_ids
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces == [
        "<|startoftext|>",
        "a</w>",
        "panda</w>",
        "is</w>",
        "dancing</w>",
        ",</w>",
        "front</w>",
        "view</w>",
        "<|endoftext|>",
    ]
    # Unknown words fall back to byte-level characters and still round-trip.
    assert tok.decode(tok("zebra xyz").input_ids, skip_special_tokens=True) == "zebra xyz"
    vocab = json.loads((tmp_path / "tok" / "vocab.json").read_text())
    assert list(vocab)[-2:] == ["<|startoftext|>", "<|endoftext|>"]
    assert all(tok.convert_tokens_to_ids(w + "</w>") != tok.unk_token_id for w in TINY_WORDS)


def test_layouts_match_the_published_models(tiny_models):
    m = tiny_models
    for folder in (m.sd15, m.video):
        for f in (
            "model_index.json",
            "unet/config.json",
            "vae/config.json",
            "text_encoder/config.json",
            "tokenizer/vocab.json",
            "tokenizer/merges.txt",
            "scheduler/scheduler_config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "text_encoder/model.safetensors",
        ):
            assert (folder / f).is_file(), f"{folder}/{f}"
    assert json.loads((m.video / "unet" / "config.json").read_text())["_class_name"] == "UNet3DConditionModel"
    with safe_open(str(m.zero123 / "cc_projection" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert sorted(f.keys()) == ["projection.bias", "projection.weight"]
    with safe_open(
        str(m.zero123_clip_camera / "clip_camera_projection" / "diffusion_pytorch_model.safetensors"), "pt"
    ) as f:
        assert sorted(f.keys()) == ["proj.bias", "proj.weight"]
    assert json.loads((m.zero123 / "unet" / "config.json").read_text())["in_channels"] == 8
    assert json.loads((m.controlnet_tile / "config.json").read_text())["_class_name"] == "ControlNetModel"
    assert not list(m.sd15_config_dir.rglob("*.safetensors"))
    with safe_open(str(m.sd15_single_file), "pt") as f:
        keys = set(f.keys())
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys
    assert "first_stage_model.encoder.mid.attn_1.q.weight" in keys
    assert "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight" in keys
    total = sum(p.stat().st_size for p in m.models_dir.rglob("*") if p.is_file())
    assert total < 16e6  # tiny: a few hundred K parameters per model (13.3 MB with MVDream and SD2.1-base)


def test_builder_is_idempotent(tiny_models):
    stamp = (tiny_models.sd15 / "unet" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns
    again = build_tiny_models(tiny_models.models_dir)
    assert again == tiny_models
    assert (tiny_models.sd15 / "unet" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns == stamp


def test_ldm_export_is_the_inverse_of_diffusers_converter():
    """Round trip through diffusers' own converter on a deeper UNet than the tiny one (3 blocks, 2 layers)."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(8, 16, 16),
        layers_per_block=2,
        cross_attention_dim=8,
        attention_head_dim=2,
        norm_num_groups=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    )
    state = unet.state_dict()
    ldm = {k.removeprefix("model.diffusion_model."): v for k, v in unet_to_ldm(state, 2).items()}
    back = convert_ldm_unet_checkpoint({"model.diffusion_model." + k: v for k, v in ldm.items()}, dict(unet.config))
    assert set(back) == set(state)
    assert all(torch.equal(back[k], state[k]) for k in state)

    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16),
        norm_num_groups=4,
        layers_per_block=2,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
    )
    vstate = vae.state_dict()
    vback = convert_ldm_vae_checkpoint(vae_to_ldm(vstate, 3), dict(vae.config))
    assert set(vback) == set(vstate)
    assert all(torch.equal(vback[k].reshape(vstate[k].shape), vstate[k]) for k in vstate)


def test_single_file_loads_the_same_weights(tiny_models):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_single_file(
        str(tiny_models.sd15_single_file),
        config=str(tiny_models.sd15_config_dir),
        local_files_only=True,
        safety_checker=None,
        requires_safety_checker=False,
    )
    ref = {
        "unet": UNet2DConditionModel.from_pretrained(tiny_models.sd15 / "unet"),
        "vae": AutoencoderKL.from_pretrained(tiny_models.sd15 / "vae"),
        "text_encoder": CLIPTextModel.from_pretrained(tiny_models.sd15 / "text_encoder"),
    }
    for name, model in ref.items():
        a, b = getattr(pipe, name).state_dict(), model.state_dict()
        assert set(a) == set(b), name
        assert all(torch.equal(a[k], b[k]) for k in b), name
