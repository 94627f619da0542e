"""A run folder's fingerprint: resume refuses another run and names every difference (issue 16)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from a124_core.run_record import (
    RECORD_NAME,
    check_resume,
    differences,
    file_digest,
    make_fingerprint,
    prior_identity,
    read_record,
    write_record,
)

PROMPTS = {"motion": "a panda is dancing", "static": "a DSLR image of a panda", "token": "_panda_"}


@pytest.fixture
def inputs(tmp_path):
    image = tmp_path / "in" / "panda.png"
    image.parent.mkdir()
    image.write_bytes(b"\x89PNG fake image bytes")
    prior = tmp_path / "models" / "sd15"
    (prior / "unet").mkdir(parents=True)
    (prior / "unet" / "config.json").write_text('{"in_channels": 4}')
    weights = {"w": torch.randn(2_500_000, generator=torch.Generator().manual_seed(0))}  # 10 MB: sampled
    save_file(weights, str(prior / "unet" / "diffusion_pytorch_model.safetensors"))
    return image, prior


def _fingerprint(image, prior, **changes):
    args = dict(image=image, prompts=PROMPTS, seed=3407, preset="smoke", representation="grid4d")
    args.update(changes)
    return make_fingerprint(priors={"sd15": prior, "video": "tiny-random:seed=0"}, **args)


def test_record_roundtrip_and_same_run_resumes(inputs, tmp_path):
    image, prior = inputs
    out = tmp_path / "out"
    fp = _fingerprint(image, prior)
    path = write_record(out, fp)
    assert path == out / RECORD_NAME and json.loads(path.read_text())["fields"]["seed"] == 3407
    assert read_record(out) == fp
    check_resume(out, _fingerprint(image, prior))  # the same inputs: no error


def test_moved_copies_are_the_same_run(inputs, tmp_path):
    image, prior = inputs
    fp = _fingerprint(image, prior)
    image2 = shutil.copy(image, tmp_path / "elsewhere.png")
    prior2 = shutil.copytree(prior, tmp_path / "copied-models" / "sd15")
    assert differences(fp, _fingerprint(image2, prior2)) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seed": 1}, "seed"),
        ({"preset": "fast"}, "preset"),
        ({"representation": "deformation"}, "representation"),
        ({"prompts": {**PROMPTS, "motion": "a panda is jumping"}}, "prompt.motion"),
        ({"extra": {"video_model": "zeroscope_v2_576w"}}, "video_model"),
    ],
)
def test_each_changed_setting_is_named(inputs, tmp_path, change, field):
    image, prior = inputs
    write_record(tmp_path / "out", _fingerprint(image, prior))
    with pytest.raises(ValueError) as err:
        check_resume(tmp_path / "out", _fingerprint(image, prior, **change))
    message = str(err.value)
    assert "\n" not in message and f"{field}:" in message and "new --out" in message and "drop --resume" in message
    assert message.count(" -> ") == 1


def test_changed_image_and_seed_are_both_named(inputs, tmp_path):
    image, prior = inputs
    write_record(tmp_path / "out", _fingerprint(image, prior))
    other = tmp_path / "other.png"
    other.write_bytes(b"\x89PNG another image")
    with pytest.raises(ValueError, match=r"\(image: \w{12} -> \w{12}; seed: 3407 -> 7\)"):
        check_resume(tmp_path / "out", _fingerprint(other, prior, seed=7))


def test_changed_weights_are_seen_in_a_large_file(inputs, tmp_path):
    """A fine-tune differs everywhere; one flipped byte inside a sampled block is enough to see it."""
    image, prior = inputs
    fp = _fingerprint(image, prior)
    weights = prior / "unet" / "diffusion_pytorch_model.safetensors"
    before = file_digest(weights)
    assert before.startswith("sampled-sha256:")
    data = bytearray(weights.read_bytes())
    data[7 * ((len(data) - 65536) // 15) + 100] ^= 0xFF  # inside block 7 of 16, far past the header
    weights.write_bytes(bytes(data))
    assert file_digest(weights) != before
    (diff,) = differences(fp, _fingerprint(image, prior))
    assert diff.startswith("prior.sd15:")
    tree = prior_identity(prior)
    (prior / "unet" / "config.json").write_text('{"in_channels": 8}')
    assert prior_identity(prior) != tree
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prior_identity(prior.parent / "missing")


def test_folders_without_a_record(inputs, tmp_path):
    image, prior = inputs
    fp = _fingerprint(image, prior)
    check_resume(tmp_path / "fresh", fp)  # nothing there yet: a first --resume starts the run
    (tmp_path / "empty").mkdir()
    check_resume(tmp_path / "empty", fp)
    old = tmp_path / "old-run"
    (old / "checkpoints").mkdir(parents=True)
    with pytest.raises(ValueError, match=f"has files but no {RECORD_NAME}"):
        check_resume(old, fp)
    (old / RECORD_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        check_resume(old, fp)
