"""ControlNetTilePrior: textual-inversion tokens, ControlNet + UNet CFG batching, control effect, bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from a124_core.guidance.sds import SDSConfig, x0_reconstruction
from a124_core.priors.base import PriorKind
from a124_core.priors.controlnet_tile import ControlNetTilePrior


@pytest.fixture()
def cn(tiny_models):
    return ControlNetTilePrior.from_pretrained(tiny_models.controlnet_tile, tiny_models.sd15, device="cpu")


def test_defaults_and_kind(cn, tiny_models):
    assert cn.kind is PriorKind.IMAGE_CONTROL
    assert cn.image_size == 2 * tiny_models.image_size  # SPEC: 2x native (1024 for SD1.5)
    small = ControlNetTilePrior.from_pretrained(
        tiny_models.controlnet_tile,
        tiny_models.sd15_single_file,
        ControlNetTilePrior.Config(image_size=32),
        base_config_dir=tiny_models.sd15_config_dir,
    )
    assert small.image_size == 32


def _encode_with_added_rows(cn, prompt: str, tokens: dict) -> torch.Tensor:
    """What diffusers' load_textual_inversion would give: a copy of tokenizer + encoder with real new rows."""
    tokenizer, encoder = copy.deepcopy(cn.tokenizer), copy.deepcopy(cn.text_encoder)
    for name, vectors in tokens.items():
        names = [name] + [f"{name}_{i}" for i in range(1, vectors.shape[0])]
        tokenizer.add_tokens(names)
        encoder.resize_token_embeddings(len(tokenizer))
        with torch.no_grad():
            encoder.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(names)] = vectors
        prompt = prompt.replace(name, " ".join(names))
    ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
    with torch.no_grad():
        return encoder(ids)[0]


def test_tokens_are_used_without_changing_the_prior(cn):
    vocab, table = len(cn.tokenizer), cn.text_encoder.get_input_embeddings().weight.detach().clone()
    plain = cn.text_condition("a <tok> is dancing").cond.clone()
    one = {"<tok>": torch.randn(1, 32, generator=torch.Generator().manual_seed(0))}
    three = {"<panda>": torch.randn(3, 32, generator=torch.Generator().manual_seed(1))}
    for tokens, prompt in ((one, "a <tok> is dancing"), (three, "a <panda> is dancing")):
        cond = cn.text_condition(prompt, "blurry", tokens=tokens)
        assert torch.equal(cond.cond, _encode_with_added_rows(cn, prompt, tokens))
        assert torch.equal(cond.uncond, cn.text_condition("", "blurry").uncond)
    assert not torch.equal(plain, cn.text_condition("a <tok> is dancing", tokens=one).cond)
    # The shared prior knows nothing afterwards: same vocabulary, same table, plain prompts as before.
    assert len(cn.tokenizer) == vocab and torch.equal(cn.text_encoder.get_input_embeddings().weight, table)
    assert torch.equal(cn.text_condition("a <tok> is dancing").cond, plain)
    with pytest.raises(ValueError, match=r"expected \[n, 32\]"):
        cn.text_condition("a <bad>", tokens={"<bad>": torch.zeros(2, 768)})
    with pytest.raises(ValueError, match="without spaces"):
        cn.text_condition("a x", tokens={"two words": torch.zeros(1, 32)})


def test_batched_cfg_equals_separate_controlnet_and_unet_calls(cn):
    text = cn.text_condition("a panda is dancing", "blurry")
    control = torch.rand(
        2, 3, 64, 64, generator=torch.Generator().manual_seed(2)
    )  # the scoring size: the term resizes
    cond = cn.control_condition(text, control)
    assert torch.equal(cond.image, control)
    z = torch.randn(2, 4, 32, 32, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([300, 700])
    eps = cn.predict_noise(z, t, cond, 7.5)

    def branch(unet_text, cn_text):
        with torch.no_grad():
            down, mid = cn.controlnet(
                z, t, encoder_hidden_states=cn_text.expand(2, -1, -1), controlnet_cond=cond.image, return_dict=False
            )
            return cn.unet(
                z,
                t,
                encoder_hidden_states=unet_text.expand(2, -1, -1),
                down_block_additional_residuals=down,
                mid_block_additional_residual=mid,
            ).sample

    e_c = branch(text.cond, cn.prompts("best quality, high resolution"))
    e_u = branch(text.uncond, text.uncond)
    torch.testing.assert_close(eps, e_u + 7.5 * (e_c - e_u), rtol=1e-4, atol=1e-5)
    other = cn.predict_noise(z, t, cn.control_condition(text, 1 - control), 7.5)
    assert not torch.allclose(eps, other)  # the control image matters


def test_x0_reconstruction_gradient_is_finite(cn):
    images = torch.rand(2, 3, 40, 40, requires_grad=True)
    cond = cn.control_condition(cn.text_condition("a panda"), torch.rand(2, 3, cn.image_size, cn.image_size))
    out = x0_reconstruction(
        cn, images, cond, SDSConfig(guidance_scale=7.5, t_range=(0.2, 0.8)), generator=torch.Generator().manual_seed(0)
    )
    out["loss_x0"].backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_wrong_models_are_rejected(tiny_models, tmp_path):
    with pytest.raises(ValueError, match="not a ControlNet"):
        ControlNetTilePrior.from_pretrained(tiny_models.sd15, tiny_models.sd15)
    with pytest.raises(ValueError, match="is a ControlNet"):
        ControlNetTilePrior.from_pretrained(tiny_models.controlnet_tile, tiny_models.controlnet_tile)
    with pytest.raises(ValueError, match="controlnet_config_dir"):
        ControlNetTilePrior.from_pretrained(
            tiny_models.controlnet_tile / "diffusion_pytorch_model.safetensors", tiny_models.sd15
        )
    with pytest.raises(ValueError, match="not a ControlNet checkpoint"):
        ControlNetTilePrior.from_pretrained(
            tiny_models.sd15_single_file, tiny_models.sd15, controlnet_config_dir=tiny_models.controlnet_tile
        )
    with pytest.raises(FileNotFoundError, match="ControlNet folder .* does not exist"):
        ControlNetTilePrior.from_pretrained(tmp_path / "missing", tiny_models.sd15)


def test_single_file_controlnet_with_config_dir(cn, tiny_models):
    single = ControlNetTilePrior.from_pretrained(
        tiny_models.controlnet_tile / "diffusion_pytorch_model.safetensors",
        tiny_models.sd15,
        controlnet_config_dir=tiny_models.controlnet_tile,
    )
    a, b = single.controlnet.state_dict(), cn.controlnet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
