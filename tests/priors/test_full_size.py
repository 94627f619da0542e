"""The shipped full-size architecture configs match the published models (meta device, no weights)."""

from __future__ import annotations

import json

import pytest
import torch

from a124_core.guidance.sds import SDSConfig, resize_to_prior, score_distillation
from a124_core.priors import full_size
from a124_core.priors.base import PriorKind
from a124_core.priors.zero123 import pose_embedding


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_sd15_parameter_counts_match_the_release():
    nets = full_size.build_networks("sd15")
    assert _count(nets["unet"]) == 859_520_964
    assert _count(nets["vae"]) == 83_653_863
    assert _count(nets["text_encoder"]) == 123_060_480


def test_zero123_video_and_controlnet_architectures():
    z = full_size.build_networks("zero123_xl")
    assert tuple(z["unet"].conv_in.weight.shape) == (320, 8, 3, 3)
    assert (z["projection"].in_features, z["projection"].out_features) == (772, 768)
    assert z["image_encoder"].config.projection_dim == 768 and _count(z["image_encoder"]) == 303_966_208
    v = full_size.build_networks("text_to_video_ms_1.7b")
    assert type(v["unet"]).__name__ == "UNet3DConditionModel"
    assert 1.40e9 < _count(v["unet"]) < 1.42e9 and v["unet"].config.cross_attention_dim == 1024
    assert v["text_encoder"].config.hidden_size == 1024
    c = full_size.build_networks("controlnet_tile_sd15")
    assert _count(c["controlnet"]) == 361_279_120 and _count(c["unet"]) == 859_520_964
    with pytest.raises(ValueError, match="Unknown prior"):
        full_size.load_architecture("sdxl")


def _shrink(cfg: dict) -> dict:
    """Same component types, FACTS.md tiny sizes."""
    small = json.loads(json.dumps(cfg))
    for key in ("unet", "controlnet"):
        if key in small:
            n = len(small[key]["down_block_types"])
            small[key].update(block_out_channels=[16] * (n - 2) + [32, 32], layers_per_block=1, attention_head_dim=4,
                              norm_num_groups=8, cross_attention_dim=32)  # fmt: skip
    small["unet"]["sample_size"] = 8
    if "controlnet" in small:
        small["controlnet"]["conditioning_embedding_out_channels"] = [8, 8, 8, 16]
    small["vae"].update(block_out_channels=[8, 8, 8, 16], norm_num_groups=4, layers_per_block=1)
    for key in ("text_encoder", "image_encoder"):
        if key in small:
            small[key].update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4)
            small[key]["projection_dim"] = 32
    if "image_encoder" in small:
        small["image_encoder"].update(image_size=28, patch_size=14)
        small["projection"] = {"in_features": 36, "out_features": 32}
    if "text_encoder" in small:
        small["text_encoder"].update(vocab_size=1000, bos_token_id=998, eos_token_id=999, pad_token_id=999)
    return small


def test_random_prior_wiring_with_shrunk_configs(tmp_path, monkeypatch):
    for name, file in full_size.FULL_SIZE_CONFIGS.items():
        (tmp_path / file).write_text(json.dumps(_shrink(full_size.load_architecture(name))))
    monkeypatch.setattr(full_size, "CONFIG_DIR", tmp_path)
    kinds = {
        "sd15": PriorKind.IMAGE_TEXT,
        "sd21_base": PriorKind.IMAGE_TEXT,
        "zero123_xl": PriorKind.IMAGE_POSE,
        "text_to_video_ms_1.7b": PriorKind.VIDEO_TEXT,
        "controlnet_tile_sd15": PriorKind.IMAGE_CONTROL,
    }
    for name, kind in kinds.items():
        prior = full_size.random_prior(name, "cpu")
        assert prior.kind is kind
        # Native size: UNet sample_size 8 x VAE factor 8; ControlNet-Tile renders at twice that (SPEC: 1024).
        assert prior.image_size == (128 if kind is PriorKind.IMAGE_CONTROL else 64)
        frames = 2 if kind is PriorKind.VIDEO_TEXT else 1
        renders = torch.rand(frames, 3, 48, 48, requires_grad=True)
        if kind is PriorKind.IMAGE_POSE:
            pose = pose_embedding(torch.tensor([90.0]), torch.tensor([20.0]))
            cond = prior.pose_condition(prior.reference_condition(torch.rand(1, 3, 64, 64)), pose)
        elif kind is PriorKind.IMAGE_CONTROL:
            control = resize_to_prior(renders.detach(), prior.image_size)  # the ControlNet term resizes it
            cond = prior.control_condition(prior.text_condition("a panda"), control)
        else:
            cond = prior.text_condition("a panda")
        score_distillation(prior, renders, cond, SDSConfig())["loss_sds"].backward()
        assert torch.isfinite(renders.grad).all() and renders.grad.abs().sum() > 0, name


def test_fake_prior_is_full_size_fp16_and_runs_an_sds_step_without_memory():
    """What benchmarks/estimate_gpu.py counts on: the release's parameters in fp16, an SDS step with real shapes."""
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True):
        prior = full_size.fake_prior("sd15")
        unet = list(prior.unet.parameters())
        assert all(isinstance(p, FakeTensor) and p.dtype == torch.float16 for p in unet)
        assert _count(prior.unet) == 859_520_964
        renders = torch.rand(1, 3, 128, 128, requires_grad=True)
        cond = prior.text_condition("a panda")
        out = score_distillation(prior, renders, cond, SDSConfig(), generator=torch.Generator().manual_seed(0))
        out["loss_sds"].backward()
        assert renders.grad.shape == (1, 3, 128, 128)
        assert prior.encode_images(torch.rand(1, 3, 512, 512)).shape == (1, 4, 64, 64)


def test_mvdream_and_sd21_base_match_the_releases():
    """MVDream's UNet is SD2.1-base's (865.9 M, same blocks, heads of 64 channels, linear projections) plus the camera
    MLP 16 -> 1280 -> 1280 (1.66 M); its text tower is SD2's OpenCLIP-H up to the penultimate block (340.4 M)."""
    sd21, mv, mv15 = (full_size.build_networks(n) for n in ("sd21_base", "mvdream_sd21", "mvdream_sd15"))
    camera = 16 * 1280 + 1280 + 1280 * 1280 + 1280
    assert _count(sd21["unet"]) == 865_910_724 and _count(mv["unet"]) == 865_910_724 + camera
    assert _count(mv15["unet"]) == 859_520_964 + camera and _count(mv15["text_encoder"]) == 123_060_480
    assert _count(mv["text_encoder"]) == _count(sd21["text_encoder"]) == 340_387_840
    assert _count(mv["vae"]) == 83_653_863
    differ = {k for k in set(sd21["unet"].config) | set(mv["unet"].config) if not k.startswith("_")}
    differ = {k for k in differ if sd21["unet"].config.get(k) != mv["unet"].config.get(k)}
    assert differ == {"class_embed_type", "projection_class_embeddings_input_dim", "sample_size"}


def test_fake_mvdream_runs_a_multiview_sds_step_at_256_without_memory():
    from torch._subclasses.fake_tensor import FakeTensorMode

    from a124_core.guidance.multiview_sds import multiview_sds
    from a124_core.multiview_cameras import sample_multiview_cameras

    views = sample_multiview_cameras(1, generator=torch.Generator().manual_seed(0))
    with FakeTensorMode(allow_non_fake_inputs=True):
        prior = full_size.fake_prior("mvdream_sd21")
        assert prior.kind is PriorKind.IMAGE_TEXT_MULTIVIEW and prior.image_size == 256
        renders = torch.rand(4, 3, 64, 64, requires_grad=True)
        cond = prior.multiview_condition(prior.text_condition("a panda"), views.matrices)
        out = multiview_sds(prior, renders, cond, generator=torch.Generator().manual_seed(0))
        out["loss_sds"].backward()
        assert out["x0"].shape == (4, 4, 32, 32) and renders.grad.shape == (4, 3, 64, 64)
