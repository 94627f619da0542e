"""MVDreamPrior: the original `.pt` layout (both variants) and the diffusers-layout folder, the network against numbers
from the original code, joint-view attention, batched CFG, cached conditions, one-line refusals."""

from __future__ import annotations

import shutil
import zlib

import pytest
import torch

from a124_core.multiview_cameras import orbit_group, sample_multiview_cameras
from a124_core.priors.base import PriorKind, check_prior_kind
from a124_core.priors.ldm_format import CAMERA_EMBED, UNET_PREFIX, UNET_TOP, unet_ldm_keys
from a124_core.priors.mvdream import MVDreamPrior
from a124_core.priors.mvdream_arch import MVDreamArchitecture, build_networks
from a124_core.priors.mvdream_weights import load_original, read_state, to_original


@pytest.fixture(scope="module")
def mvdream(tiny_models):
    return MVDreamPrior.from_pretrained(tiny_models.mvdream, device="cpu", tokenizer_dir=tiny_models.clip_tokenizer)


def _inputs(prior, groups=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    views = sample_multiview_cameras(groups, generator=gen)
    z = torch.randn(4 * groups, 4, 16, 16, generator=gen)
    t = torch.full((4 * groups,), 500)
    return z, t, prior.multiview_condition(prior.text_condition("a panda", "blurry"), views.matrices)


@pytest.mark.parametrize("which", ["mvdream", "mvdream_sd15"])
def test_original_layout_loads_every_key_and_round_trips(tiny_models, which):
    path = getattr(tiny_models, which)
    prior = MVDreamPrior.from_pretrained(path, device="cpu", tokenizer_dir=tiny_models.clip_tokenizer)
    assert prior.kind is PriorKind.IMAGE_TEXT_MULTIVIEW and prior.num_views == 4 and prior.image_size == 32
    state = read_state(path)
    nets = {"unet": prior.unet, "vae": prior.vae, "text_encoder": prior.text_encoder}
    again = to_original(nets, prior.architecture)
    read = {k for k in state if not k.startswith("cond_stage_model.model.transformer.resblocks.2.")}
    assert set(again) == set(state)  # the same layout, key for key
    for key in read - {"cond_stage_model.model.text_projection", "cond_stage_model.model.logit_scale"}:
        assert torch.equal(again[key], state[key]), key  # every weight the file holds reached the right module
    layout = "open_clip" if which == "mvdream" else "clip"
    assert (prior.tokenizer.pad_token_id == 0) == (layout == "open_clip")  # SD2's OpenCLIP pads with "!"


def _refusal(path, tokenizer, match, **kwargs):
    with pytest.raises(ValueError, match=match) as err:
        MVDreamPrior.from_pretrained(path, device="cpu", tokenizer_dir=tokenizer, **kwargs)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def test_wrong_layouts_are_refused_in_one_line_naming_the_file(tiny_models, tmp_path):
    tok = tiny_models.clip_tokenizer
    state = read_state(tiny_models.mvdream)
    shutil.copy(tiny_models.mvdream.with_suffix(".json"), tmp_path / "dropped.json")
    torch.save({k: v for k, v in state.items() if k != UNET_PREFIX + "out.2.weight"}, tmp_path / "dropped.pt")
    _refusal(tmp_path / "dropped.pt", tok, r"1 weights missing")
    shutil.copy(tiny_models.mvdream.with_suffix(".json"), tmp_path / "extra.json")
    torch.save({**state, UNET_PREFIX + "label_emb.0.weight": torch.zeros(3)}, tmp_path / "extra.pt")
    _refusal(tmp_path / "extra.pt", tok, r"1 unexpected keys")
    torch.save({k: v for k, v in state.items() if "camera_embed" not in k}, tmp_path / "plain_sd.pt")
    _refusal(tmp_path / "plain_sd.pt", tok, "no camera embedding")
    prior = MVDreamPrior.from_pretrained(tiny_models.mvdream_diffusers, device="cpu")
    torch.save(prior.unet.state_dict(), tmp_path / "diffusers_keys.pt")
    _refusal(tmp_path / "diffusers_keys.pt", tok, "not an MVDream checkpoint in the original layout")
    shutil.copy(tiny_models.mvdream, tmp_path / "no_sidecar.pt")  # read as the released SD2.1 model: shapes differ
    _refusal(tmp_path / "no_sidecar.pt", tok, "pass the architecture")
    prior = MVDreamPrior.from_pretrained(
        tmp_path / "no_sidecar.pt",
        device="cpu",
        tokenizer_dir=tok,
        architecture=tiny_models.mvdream.with_suffix(".json"),
    )
    assert prior.architecture.unet["model_channels"] == 16
    with pytest.raises(ValueError, match="needs tokenizer_dir"):
        MVDreamPrior.from_pretrained(tiny_models.mvdream, device="cpu")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MVDreamPrior.from_pretrained(tmp_path / "missing.pt", device="cpu", tokenizer_dir=tok)
    with pytest.raises(ValueError, match="not MVDream's MultiViewUNetModel"):
        MVDreamPrior.from_pretrained(tiny_models.sd21, device="cpu")


def test_diffusers_folder_and_original_file_give_the_same_epsilon(tiny_models, mvdream):
    folder = MVDreamPrior.from_pretrained(tiny_models.mvdream_diffusers, device="cpu")
    assert folder.architecture.unet["use_linear_in_transformer"] is True  # taken from the weights
    z, t, cond = _inputs(mvdream, groups=2)
    eps = mvdream.predict_noise(z, t, cond, 50.0)
    other = folder.predict_noise(z, t, folder.multiview_condition(folder.text_condition("a panda", "blurry"),
                                                                  cond.cameras), 50.0)  # fmt: skip
    torch.testing.assert_close(other, eps, rtol=0, atol=1e-6)


def _fill(key: str, shape: torch.Size) -> torch.Tensor:
    """Deterministic weights from the original key name (no RNG): what the numbers below were computed with."""
    n = shape.numel()
    idx = torch.arange(n, dtype=torch.float64)
    u = torch.frac(torch.sin(idx * 12.9898 + zlib.crc32(key.encode()) % 997) * 43758.5453) * 2 - 1
    if len(shape) >= 2:
        return (u * (3.0 / (n // shape[0])) ** 0.5).float().reshape(shape)
    return ((1.0 if "norm" in key and key.endswith("weight") else 0.0) + 0.1 * u).float().reshape(shape)


#: Outputs of bytedance/MVDream's MultiViewUNetModel (mvdream/ldm/modules/diffusionmodules/openaimodel.py, run once
#: on CPU in fp32, num_frames=4) with `_fill` weights on the inputs below: out.flatten()[::131], mean, std.
ORIGINAL_OUTPUTS = {
    "sd21": (
        [1.459909, 1.571296, 1.647912, 2.66379, 1.21675, 1.494519, 0.414422, -0.101653, 1.303812, -0.352297,
         -0.290114, 1.503468, -1.62846, 0.379852, -0.703421, -0.804626], 0.4738385, 1.0058783,
    ),
    "sd15": (
        [1.460138, 1.570904, 1.648096, 2.66407, 1.217058, 1.494559, 0.414963, -0.101573, 1.304107, -0.352269,
         -0.289826, 1.503196, -1.628457, 0.379853, -0.703397, -0.804612], 0.4738453, 1.0058957,
    ),
}  # fmt: skip


@pytest.mark.parametrize("style", ["sd21", "sd15"])
def test_network_matches_the_original_code(style):
    """Our diffusers-built UNet (camera MLP as the projection class embedding, joint-view processor) reproduces the
    original MultiViewUNetModel: head counts, projections, the camera path and the view-major joint attention."""
    unet_cfg = dict(image_size=8, model_channels=32, attention_resolutions=[2, 1], num_res_blocks=1,
                    channel_mult=[1, 2], context_dim=24, camera_dim=16)  # fmt: skip
    unet_cfg.update(num_head_channels=16, use_linear_in_transformer=True) if style == "sd21" else unet_cfg.update(
        num_heads=2
    )
    arch = MVDreamArchitecture(unet=unet_cfg, vae={}, text_encoder={"layout": "clip"})
    unet = build_networks(arch, empty=True, parts=("unet",))["unet"]
    keys = unet_ldm_keys(unet.state_dict(), 1, {**UNET_TOP, **CAMERA_EMBED})
    shapes = {UNET_PREFIX + keys[k]: v.shape for k, v in unet.state_dict().items()}
    load_original({"unet": unet}, {k: _fill(k, s) for k, s in shapes.items()}, arch, "golden")
    x = _fill("x", torch.Size([8, 4, 8, 8]))
    ctx, cam = _fill("context", torch.Size([8, 5, 24])) * 10, _fill("camera", torch.Size([8, 16])) * 10
    t = torch.tensor([10, 200, 400, 999, 3, 500, 640, 800])
    with torch.no_grad():
        out = unet(x, t, encoder_hidden_states=ctx, class_labels=cam, cross_attention_kwargs={"num_views": 4}).sample
    values, mean, std = ORIGINAL_OUTPUTS[style]
    torch.testing.assert_close(out.flatten()[::131], torch.tensor(values), rtol=0, atol=2e-5)
    assert abs(out.mean().item() - mean) < 2e-6 and abs(out.std().item() - std) < 2e-6


def test_views_attend_jointly_within_their_group_only(mvdream):
    z, t, cond = _inputs(mvdream, groups=2)
    eps = mvdream.predict_noise(z, t, cond, 1.0)
    z2 = z.clone()
    z2[1] += 1.0  # view 1 of group 0
    eps2 = mvdream.predict_noise(z2, t, cond, 1.0)
    assert (eps2[0] - eps[0]).abs().max() > 1e-4  # a view sees the others of its object...
    torch.testing.assert_close(eps2[4:], eps[4:], rtol=0, atol=1e-6)  # ...and nothing of the next object
    perm = torch.tensor([2, 0, 3, 1, 4, 5, 6, 7])  # views and their cameras reordered together: same per view
    moved = mvdream.multiview_condition(cond.text, cond.cameras[perm])
    torch.testing.assert_close(mvdream.predict_noise(z[perm], t, moved, 1.0), eps[perm], rtol=0, atol=1e-5)
    swapped = mvdream.multiview_condition(cond.text, cond.cameras[perm])  # cameras reordered alone: not the same
    assert (mvdream.predict_noise(z, t, swapped, 1.0) - eps).abs().max() > 1e-4


def test_cfg_is_one_batched_call_and_conditions_are_cached(mvdream, monkeypatch):
    z, t, cond = _inputs(mvdream)
    calls = []
    forward = mvdream.unet.forward
    monkeypatch.setattr(mvdream.unet, "forward", lambda *a, **k: calls.append(a[0].shape[0]) or forward(*a, **k))
    eps = mvdream.predict_noise(z, t, cond, 50.0)
    eps_u, eps_c = mvdream.predict_noise_branches(z, t, cond)
    assert calls == [8, 8]  # 4 views x (uncond, cond) in one UNet call each time
    torch.testing.assert_close(eps, eps_u + 50.0 * (eps_c - eps_u))
    assert mvdream.text_condition("a panda", "blurry").cond is cond.text.cond  # the text encoder ran once
    flat = mvdream.multiview_condition(cond.text, cond.cameras.reshape(4, 16))
    torch.testing.assert_close(flat.cameras, cond.cameras)


def test_the_unet_reads_the_original_get_camera_vectors(mvdream, monkeypatch):
    """What reaches the camera MLP is MVDream's get_camera(4, elevation 15, azimuth_start 30), row-major, in both
    CFG branches (tests/test_multiview_cameras.py pins the matrices to those numbers)."""
    from tests.test_multiview_cameras import MVDREAM_GET_CAMERA

    seen = []
    forward = mvdream.unet.forward
    monkeypatch.setattr(mvdream.unet, "forward", lambda *a, **k: seen.append(k["class_labels"]) or forward(*a, **k))
    cond = mvdream.multiview_condition(mvdream.text_condition("a panda"), orbit_group(15.0, 30.0).matrices)
    mvdream.predict_noise(torch.zeros(4, 4, 16, 16), torch.full((4,), 10), cond, 50.0)
    expected = torch.tensor(MVDREAM_GET_CAMERA)
    torch.testing.assert_close(seen[0], torch.cat([expected, expected]), rtol=0, atol=2e-6)


def test_kind_and_bad_input(mvdream, tiny_models):
    check_prior_kind(mvdream, PriorKind.IMAGE_TEXT_MULTIVIEW, "multi-view")
    with pytest.raises(ValueError, match="expects a prior of kind 'image-text'"):
        check_prior_kind(mvdream, PriorKind.IMAGE_TEXT, "2D")
    text = mvdream.text_condition("a panda")
    with pytest.raises(ValueError, match="multiple of 4 views"):
        mvdream.multiview_condition(text, orbit_group().matrices[:3])
    z, t, cond = _inputs(mvdream)
    with pytest.raises(ValueError, match="one camera per view"):
        mvdream.predict_noise(torch.cat([z, z]), torch.cat([t, t]), cond, 50.0)
    with pytest.raises(TypeError, match="MultiViewCondition"):
        mvdream.predict_noise(z, t, text, 50.0)
    images = torch.rand(4, 3, 24, 24, requires_grad=True)
    mvdream.encode_images(torch.nn.functional.interpolate(images, size=32)).sum().backward()
    assert images.grad.abs().sum() > 0  # the VAE encoder is differentiated
