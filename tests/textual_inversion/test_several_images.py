"""Textual inversion from several photos of one subject (Dream-in-4D's personalised 4D): every photo is trained on,
one photo trains exactly as before, and the `textual-inversion` command takes `--image` repeatedly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from a124_core.cli import main
from a124_core.textual_inversion import TextualInversionConfig, train_textual_inversion, trainer
from a124_core.textual_inversion_cli import subject_image
from tests.paths import EXAMPLES

needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared/data/examples is not beside the checkout")


def _photos(panda_rgba: torch.Tensor) -> list[torch.Tensor]:
    """Three different photos of the 'subject': the panda, mirrored, and on a red card (alpha 1)."""
    red = panda_rgba.clone()
    red[:3] = red[:3] * red[3:] + torch.tensor([0.9, 0.1, 0.1])[:, None, None] * (1 - red[3:])
    red[3] = 1.0
    return [panda_rgba, panda_rgba.flip(-1), red]


def test_every_photo_is_trained_on(prior, panda_rgba, monkeypatch):
    photos = _photos(panda_rgba)
    stacked = trainer.training_images(photos, prior.image_size)
    assert stacked.shape == (3, 4, prior.image_size, prior.image_size)
    torch.testing.assert_close(stacked, trainer.training_images(torch.stack(photos), prior.image_size))
    picked = []
    augment = trainer.augment

    def recording(rgba, background, cfg, gen):
        picked.append(int(torch.argmin(((stacked - rgba.cpu()[None]) ** 2).flatten(1).sum(1))))
        return augment(rgba, background, cfg, gen)

    monkeypatch.setattr(trainer, "augment", recording)
    cfg = TextualInversionConfig(steps=3, batch_size=4, micro_batch=2)
    train_textual_inversion(prior, photos, cfg)
    assert len(picked) == 12 and set(picked) == {0, 1, 2}, picked


def test_one_photo_in_a_list_trains_exactly_as_one_photo(prior, panda_rgba):
    cfg = TextualInversionConfig(steps=2, batch_size=2, micro_batch=2, lr=0.05)
    alone = train_textual_inversion(prior, panda_rgba, cfg).embedding
    listed = train_textual_inversion(prior, [panda_rgba], cfg).embedding
    several = train_textual_inversion(prior, _photos(panda_rgba), cfg).embedding
    assert torch.equal(alone, listed) and not torch.equal(alone, several)
    with pytest.raises(ValueError, match="at least one image"):
        train_textual_inversion(prior, [], cfg)


@needs_examples
def test_the_command_learns_a_token_from_several_photos(tmp_path, capsys):
    panda, fox = EXAMPLES / "panda-dance", EXAMPLES / "fox-game"
    rgba, jpeg = subject_image(panda / "rgba.png"), subject_image(fox / "image.jpg")
    assert rgba.shape[0] == 4 and rgba.shape[1] == rgba.shape[2] and float(rgba[3].min()) == 0.0
    assert jpeg.shape[1] == jpeg.shape[2] and bool((jpeg[3] == 1.0).all())  # no alpha: the photo as it is
    out, bad = tmp_path / "ti", tmp_path / "bad"
    token = ["--token", "_panda_", "--initializer", "panda"]
    images = []
    for path in (panda / "rgba.png", panda / "image.jpg", fox / "image.jpg"):
        images += ["--image", str(path)]
    assert main(["textual-inversion", *images, *token, "--out", str(out), "--steps", "2"]) == 0
    assert "3 image(s), 2 steps" in capsys.readouterr().out
    state = load_file(out / "_panda_.safetensors")
    assert list(state) == ["_panda_"] and state["_panda_"].shape == (1, 32)
    assert main(["textual-inversion", *images, "--image", str(tmp_path / "none.png"), *token, "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: The subject image") and "does not exist" in err and "\n" not in err
    assert main(["textual-inversion", *images, *token, "--out", str(bad), "--preset", "paper"]) == 2
    assert "--models-dir or --sd-model" in capsys.readouterr().err and not bad.exists()
