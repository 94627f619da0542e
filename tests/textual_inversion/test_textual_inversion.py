"""Textual inversion on the tiny SD1.5 prior: learning, row isolation, file format, resume, cancel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from a124_core.checkpoint import load_checkpoint
from a124_core.priors.tokens import injected
from a124_core.textual_inversion import AugmentConfig, TextualInversionConfig, train_textual_inversion
from a124_core.training.runner import Callbacks, TrainingCancelled

NO_AUG = AugmentConfig(flip_p=0, rotate_p=0, crop_scale=(1.0, 1.0), jitter_p=0, grayscale_p=0, blur_p=0)


def _eval_loss(prior, rgba: torch.Tensor, prompt: str, token: torch.Tensor, seed: int = 0, n: int = 8) -> float:
    """Epsilon MSE on a fixed batch (same images, noise and timesteps every call) with _panda_ = `token`."""
    gen = torch.Generator().manual_seed(seed)
    size = prior.image_size
    rgb = rgba[:3] * rgba[3:] + (1 - rgba[3:])
    images = F.interpolate(rgb[None], size=(size, size), mode="area").expand(n, -1, -1, -1)
    with torch.no_grad():
        latents = prior.encode_images(images)
        noise = torch.randn(latents.shape, generator=gen)
        t = torch.randint(50, 950, (n,), generator=gen)
        noisy = prior.schedule.add_noise(latents, noise, t)
        with injected(prior.tokenizer, prior.text_encoder, {"_panda_": token}) as tokenizer:
            ids = tokenizer([prompt] * n, padding="max_length", max_length=77, return_tensors="pt").input_ids
            emb = prior.text_encoder(ids)[0]
        eps = prior.unet(noisy, t, encoder_hidden_states=emb).sample
    return F.mse_loss(eps, noise).item()


def test_learns_and_leaves_the_prior_alone(prior, panda_rgba, tmp_path):
    table_before = prior.text_encoder.get_input_embeddings().weight.detach().clone()  # [V, D]
    vocab = len(prior.tokenizer)
    init = table_before[prior.tokenizer.convert_tokens_to_ids("panda</w>")][None]
    # The tiny random UNet's loss is ~1.12 whatever the text; the prompt moves it by a few 1e-3 only, so the
    # oracle is a deterministic fixed batch (same images, noise, timesteps) at two seeds, not the noisy run loss.
    before = [_eval_loss(prior, panda_rgba, "a photo of a _panda_", init, seed=s) for s in (0, 1)]

    cfg = TextualInversionConfig(steps=30, lr=0.05, batch_size=4, micro_batch=2, augment=NO_AUG, preview_every=10)
    seen = []
    progress = Callbacks(on_progress=lambda step, total, losses, preview: seen.append((step, total, preview is None)))
    result = train_textual_inversion(prior, panda_rgba, cfg, output_dir=tmp_path, callbacks=progress)
    after = [_eval_loss(prior, panda_rgba, "a photo of a _panda_", result.embedding, seed=s) for s in (0, 1)]
    assert all(a < b - 1e-3 for a, b in zip(after, before)), (before, after)  # measured: -2.6e-3 at both seeds

    # The shared prior is exactly as it was: no new vocabulary entry, no new or changed row.
    assert len(prior.tokenizer) == vocab and result.token_ids == [vocab]
    assert torch.equal(prior.text_encoder.get_input_embeddings().weight, table_before)
    assert not torch.equal(result.embedding, init)
    assert [s[0] for s in seen] == list(range(1, 31)) and all(s[1] == 30 for s in seen)
    assert [s[0] for s in seen if not s[2]] == [10, 20, 30]  # previews every 10 steps

    state = load_file(str(result.path))
    assert result.path.name == "_panda_.safetensors" and list(state) == ["_panda_"]
    assert state["_panda_"].dtype == torch.float32 and state["_panda_"].shape == (1, 32)
    assert torch.equal(state["_panda_"], result.embedding)


def test_file_loads_in_diffusers(prior, panda_rgba, tiny_sd15, tmp_path):
    from diffusers import StableDiffusionPipeline

    cfg = TextualInversionConfig(steps=2, lr=0.05, batch_size=2, micro_batch=2, n_vectors=2)
    result = train_textual_inversion(prior, panda_rgba, cfg, output_dir=tmp_path)
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd15, local_files_only=True, safety_checker=None)
    n_before = len(pipe.tokenizer)
    pipe.load_textual_inversion(str(result.path))
    ids = pipe.tokenizer.convert_tokens_to_ids(["_panda_", "_panda__1"])
    assert ids == [n_before, n_before + 1]
    prompt_ids = pipe.tokenizer(pipe.maybe_convert_prompt("a photo of a _panda_", pipe.tokenizer)).input_ids
    assert ids[0] in prompt_ids and ids[1] in prompt_ids
    table = pipe.text_encoder.get_input_embeddings().weight.detach()
    assert torch.allclose(table[ids], result.embedding)


@pytest.mark.parametrize("pool", [0, 4])  # fresh augmentations, or a latent pool (rebuilt the same on resume)
def test_resume_continues_bit_identically(prior, panda_rgba, tmp_path, pool):
    cfg = TextualInversionConfig(
        steps=6, lr=0.05, batch_size=3, micro_batch=2, checkpoint_every=2, seed=1, latent_pool=pool
    )
    full = train_textual_inversion(prior, panda_rgba, cfg, checkpoint_path=tmp_path / "full.safetensors")

    # an interrupt inside the progress callback (how ComfyUI cancels) writes a checkpoint at that step
    def interrupt(step, total, losses, preview):
        if step == 4:
            raise KeyboardInterrupt

    ckpt = tmp_path / "part.safetensors"
    with pytest.raises(KeyboardInterrupt):
        train_textual_inversion(prior, panda_rgba, cfg, checkpoint_path=ckpt, callbacks=Callbacks(interrupt))
    assert load_checkpoint(ckpt)[1]["step"] == 4
    steps = []
    resumed = train_textual_inversion(
        prior,
        panda_rgba,
        cfg,
        checkpoint_path=ckpt,
        resume_from=ckpt,
        callbacks=Callbacks(lambda s, *a: steps.append(s)),
    )
    assert steps == [5, 6] and resumed.step == 6
    assert torch.equal(resumed.embedding, full.embedding)
    assert resumed.losses == full.losses

    # the cancel flag: checkpoint, then TrainingCancelled naming it
    calls = iter([False, False, True])
    with pytest.raises(TrainingCancelled) as err:
        train_textual_inversion(
            prior,
            panda_rgba,
            cfg,
            checkpoint_path=tmp_path / "c.safetensors",
            callbacks=Callbacks(should_cancel=lambda: next(calls)),
        )
    assert err.value.step == 2 and load_checkpoint(err.value.checkpoint)[1]["step"] == 2

    with pytest.raises(TrainingCancelled, match="not saved") as err:
        train_textual_inversion(prior, panda_rgba, cfg, callbacks=Callbacks(should_cancel=lambda: True))
    assert err.value.checkpoint is None and err.value.step == 0

    with pytest.raises(ValueError, match="batch_size=3"):
        other = TextualInversionConfig(steps=6, batch_size=4, micro_batch=2, seed=1)
        train_textual_inversion(prior, panda_rgba, other, resume_from=ckpt)


def test_bad_settings(prior, panda_rgba):
    with pytest.raises(ValueError, match="lower case"):
        TextualInversionConfig(token="<Panda>")
    with pytest.raises(ValueError, match="is 3 tokens"):
        train_textual_inversion(prior, panda_rgba, TextualInversionConfig(initializer="zqx", steps=1))
    with pytest.raises(ValueError, match="already an ordinary word"):
        train_textual_inversion(prior, panda_rgba, TextualInversionConfig(token="panda", steps=1))
    with pytest.raises(ValueError, match="no visible foreground"):
        train_textual_inversion(prior, torch.zeros(4, 32, 32), TextualInversionConfig(steps=1))
