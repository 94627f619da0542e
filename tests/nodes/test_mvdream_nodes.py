"""Issue 25's nodes: MVDream Loader (released file or diffusers port), the static stage's multi-view slot (text
mode, refused beside a reference image, the subject word kept from MVDream's prompt) and textual inversion from an
IMAGE batch of 4-6 photos."""

from __future__ import annotations

import re

import pytest
import torch
from node_env import node_classes

from a124_core.priors.base import PriorKind

SD21 = "diffusers/stable-diffusion-2-1-base"
MVDREAM_FILE = "checkpoints/sd-v2.1-base-4view.pt"


def node(pack, name):
    return node_classes(pack)[name]


def test_mvdream_loader_lists_and_loads_both_layouts(pack, comfy_env):
    """The released file (with the 2D prior's tokenizer) and the diffusers port hold the same tiny weights: the two
    priors the node gives predict the same epsilon; plain SD folders are not offered."""
    loader = node(pack, "A124_LoadMVDreamPrior")
    inputs = loader.INPUT_TYPES()["required"]
    options = inputs["model"][1]["options"]
    assert {MVDREAM_FILE, "checkpoints/sd-v1.5-4view.pt", "diffusers/mvdream-sd2.1-diffusers"} <= set(options)
    assert SD21 not in options and "diffusers/stable-diffusion-v1-5" not in options
    assert SD21 in inputs["tokenizer"][1]["options"] and inputs["tokenizer"][1]["default"] == "comfy/sd1_tokenizer"
    (from_file,) = loader.execute(MVDREAM_FILE, SD21)
    (from_folder,) = loader.execute("diffusers/mvdream-sd2.1-diffusers", "comfy/sd1_tokenizer")  # folder: unused
    assert from_file.kind == from_folder.kind == PriorKind.IMAGE_TEXT_MULTIVIEW
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(4, 4, 16, 16, generator=gen)
    cams = torch.eye(4).expand(4, 4, 4).clone()
    cams[:, 0, 3] = torch.arange(4.0)
    t = torch.full((4,), 500)
    eps = [
        p.predict_noise(latents, t, p.multiview_condition(p.text_condition("a panda", ""), cams), 7.5)
        for p in (from_file, from_folder)
    ]
    assert torch.allclose(eps[0], eps[1], atol=1e-5) and eps[0].abs().mean() > 0.1


def test_mvdream_loader_validation_is_one_line(pack, comfy_env):
    loader = node(pack, "A124_LoadMVDreamPrior")
    assert loader.validate_inputs(MVDREAM_FILE, SD21) is True
    assert loader.validate_inputs("diffusers/mvdream-sd2.1-diffusers", "comfy/sd1_tokenizer") is True
    msg = loader.validate_inputs(SD21, "comfy/sd1_tokenizer")
    assert "not an MVDream diffusers folder" in msg and "\n" not in msg
    msg = loader.validate_inputs("checkpoints/missing-4view.pt", SD21)
    assert "missing-4view.pt" in msg and "checkpoints" in msg
    assert "tokenizer folder" in loader.validate_inputs(MVDREAM_FILE, "configs/nothing-here")
    # Outside ComfyUI there is no comfy/sd1_tokenizer: one line, before anything is built.
    with pytest.raises(ValueError, match="outside ComfyUI pick a folder"):
        loader.execute(MVDREAM_FILE, "comfy/sd1_tokenizer")
    # A plain SD checkpoint given as MVDream: the library's one line naming the file.
    with pytest.raises(ValueError, match="tiny-sd21-base.safetensors"):
        loader.execute("checkpoints/tiny-sd21-base.safetensors", SD21)


def test_static_stage_refuses_mvdream_with_a_reference(pack, comfy_env):
    """ComfyUI passes a wired link input to validate_inputs as None and leaves an unwired one out."""
    static = node(pack, "A124_StaticStage")
    msg = static.validate_inputs("", reference=None, mvdream_prior=None)
    assert isinstance(msg, str) and "MVDream" in msg and "Zero123" in msg and "\n" not in msg
    assert static.validate_inputs("", mvdream_prior=None) is True
    assert static.validate_inputs("", reference=None) is True
    assert static.INPUT_TYPES()["optional"]["mvdream_prior"][0] == "A124_PRIOR_IMAGE_TEXT_MULTIVIEW"


def test_static_stage_text_mode_runs_mvdream_with_the_2d_prior(pack, comfy_env, monkeypatch):
    """Text mode through the node: MVDream scores groups of four views under the prompt without the subject word,
    the 2D prior (SD2.1-base) gets the whole prompt."""
    from a124_core.priors.mvdream import MVDreamPrior

    (sd,) = node(pack, "A124_LoadSD15Prior").execute(SD21, "none")
    (mv,) = node(pack, "A124_LoadMVDreamPrior").execute(MVDREAM_FILE, SD21)
    prompts, batches = {"mv": [], "sd": []}, []
    real_branches, real_text = MVDreamPrior.predict_noise_branches, MVDreamPrior.text_condition
    real_sd_text = type(sd).view_dependent_condition

    def branches(self, latents, t, condition):
        batches.append(condition.cameras.shape[0])
        return real_branches(self, latents, t, condition)

    def mv_text(self, prompt, negative="", tokens=None):
        prompts["mv"].append(prompt)
        return real_text(self, prompt, negative, tokens)

    def sd_text(self, prompt, negative=""):
        prompts["sd"].append(prompt)
        return real_sd_text(self, prompt, negative)

    monkeypatch.setattr(MVDreamPrior, "predict_noise_branches", branches)
    monkeypatch.setattr(MVDreamPrior, "text_condition", mv_text)
    monkeypatch.setattr(type(sd), "view_dependent_condition", sd_text)
    static = node(pack, "A124_StaticStage")
    scene, preview, checkpoint = static.execute(
        "an emoji of a sks dog", "smoke", 4, 1, sd_prior=sd, mvdream_prior=mv, run_name="text", subject_word="sks"
    )
    assert scene.stage == "static" and preview.shape[-1] == 3 and checkpoint.endswith("static.safetensors")
    assert batches and all(b % 4 == 0 for b in batches)
    assert prompts["mv"] and all(p.startswith("an emoji of a dog") for p in prompts["mv"])
    assert prompts["sd"] and all(p.startswith("an emoji of a sks dog") for p in prompts["sd"])


def photos(count: int, side: int = 72) -> torch.Tensor:
    """A ComfyUI IMAGE batch [count, side, side + 8, 3] of distinct, non-uniform photos."""
    gen = torch.Generator().manual_seed(count)
    return torch.rand(count, side, side + 8, 3, generator=gen)


def test_textual_inversion_takes_a_batch_of_photos(pack, comfy_env):
    ti = node(pack, "A124_TextualInversion")
    (sd,) = node(pack, "A124_LoadSD15Prior").execute("diffusers/stable-diffusion-v1-5", "none")
    assert ti.validate_inputs("_dog_", "dog", images=None) is True
    assert ti.validate_inputs("_dog_", "dog", reference=None) is True
    for wiring in ({}, {"reference": None, "images": None}):
        msg = ti.validate_inputs("_dog_", "dog", **wiring)
        assert "either reference" in msg and "\n" not in msg
    with torch.inference_mode():  # as ComfyUI runs nodes: inference tensors in
        batch = photos(4)
        emb, token = ti.execute(sd, "_dog_", "dog", "smoke", 2, 2, 0, 1, save_to_embeddings=False, images=batch)
    assert token == "_dog_" and emb.vectors.shape == (1, 32) and emb.path.is_file()
    for bad, expected in ((photos(3), "holds 3 photo(s)"), (photos(7), "holds 7 photo(s)"), (photos(4, 40), "64 px")):
        with pytest.raises(ValueError, match=re.escape(expected)):
            ti.execute(sd, "_cat_", "cat", "smoke", 2, 2, 0, 1, save_to_embeddings=False, images=bad)


def test_photos_are_centre_squares_trained_on(pack, comfy_env, monkeypatch):
    """Each photo reaches the trainer as its opaque centre square (a sample of one photo is that photo)."""
    import sys

    module = sys.modules[node(pack, "A124_TextualInversion").__module__]
    batch = photos(5)
    rgba = module.subject_photos(batch)
    assert rgba.shape == (5, 4, 72, 72) and torch.all(rgba[:, 3] == 1)
    assert torch.equal(rgba[2, :3], batch[2, :, 4:76].permute(2, 0, 1))


def test_sd21_base_loads_as_the_2d_prior_from_a_folder_or_one_file(pack, comfy_env):
    """Load SD1.5 Prior takes SD2.1-base (the 2D prior beside MVDream) as a diffusers folder or as one original-layout
    file with its config folder: the same weights give the same epsilon."""
    loader = node(pack, "A124_LoadSD15Prior")
    assert (
        loader.validate_inputs("checkpoints/tiny-sd21-base.safetensors", "configs/stable-diffusion-2-1-base") is True
    )
    (folder,) = loader.execute(SD21, "none")
    (single,) = loader.execute("checkpoints/tiny-sd21-base.safetensors", "configs/stable-diffusion-2-1-base")
    latents, t = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([200, 800])
    eps = [p.predict_noise(latents, t, p.text_condition("a panda", ""), 7.5) for p in (folder, single)]
    assert folder.kind == PriorKind.IMAGE_TEXT and torch.allclose(eps[0], eps[1], atol=1e-5)
