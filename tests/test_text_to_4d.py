"""Text-to-4D in the pipeline: it checks and loads only the priors it uses (SD + the video prior, plus MVDream when
asked for; never Zero123 or ControlNet-Tile), the defaults of --mvdream and --sd-model, one-line refusals."""

from __future__ import annotations

from dataclasses import replace

import pytest

from a124_core.cli import main
from a124_core.pipeline import RunSettings, prepare, validate
from a124_core.pipeline.models import MVDREAM_FILE


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


def _models(tmp_path, tiny_models, *names: str):
    """A models folder holding only the named tiny priors (links into the session's tiny models)."""
    root = tmp_path / "models"
    places = {
        "sd15": "diffusers/stable-diffusion-v1-5",
        "sd21": "diffusers/stable-diffusion-2-1-base",
        "video": "diffusers/text-to-video-ms-1.7b",
        "mvdream": f"checkpoints/{MVDREAM_FILE}",
        "zero123": "diffusers/zero123-xl",
        "controlnet_tile": "controlnet/control_v11f1e_sd15_tile",
    }
    for name in names:
        target = root / places[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(getattr(tiny_models, name))
        if name == "mvdream":  # the tiny network's architecture travels beside the file
            target.with_suffix(".json").symlink_to(tiny_models.mvdream.with_suffix(".json"))
    return root


def _settings(tmp_path, models, **kw) -> RunSettings:
    return RunSettings(image=None, prompt="a panda is dancing", out=tmp_path / "out", preset="fast",
                       models_dir=models, **kw)  # fmt: skip


def test_text_to_4d_starts_with_only_sd_and_the_video_prior(tmp_path, tiny_models):
    models = _models(tmp_path, tiny_models, "sd15", "video")
    run = prepare(_settings(tmp_path, models))
    assert set(run.priors) == {"sd", "video"} and run.reference is None
    assert set(run.summary.settings) >= {"sd_model", "mvdream"}


def test_mvdream_joins_with_sd21_base_as_the_2d_prior(tmp_path, tiny_models):
    models = _models(tmp_path, tiny_models, "sd15", "video")
    with pytest.raises(FileNotFoundError) as missing:
        validate(_settings(tmp_path, models, mvdream=MVDREAM_FILE))
    text = str(missing.value)
    assert f"checkpoints/{MVDREAM_FILE}" in text and "stable-diffusion-2-1-base" in text
    assert "zero123" not in text and "control" not in text
    models = _models(tmp_path / "b", tiny_models, "sd21", "video", "mvdream")
    run = prepare(_settings(tmp_path / "b", models, mvdream=MVDREAM_FILE))
    assert set(run.priors) == {"sd", "video", "mvdream"}
    assert run.priors["sd"].text_encoder.config.hidden_act == "gelu"  # SD2.1-base's OpenCLIP tower
    assert run.priors["mvdream"].num_views == 4


def test_mvdream_with_an_image_and_a_wrong_sd_file_are_refused_in_one_line(tmp_path, tiny_models, capsys):
    from tests.paths import EXAMPLES

    out = tmp_path / "o"
    image = EXAMPLES / "panda-dance" / "rgba.png"
    assert main(["run", "--image", str(image), "--prompt", "a panda is dancing", "--out", str(out), "--mvdream"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --mvdream is text-to-4D's") and "\n" not in err and not out.exists()
    from safetensors.torch import save_file

    from a124_core.priors.mvdream_weights import read_state

    models = _models(tmp_path, tiny_models, "video")
    wrong = models / "checkpoints" / "mvdream.safetensors"  # MVDream passed as the 2D prior
    wrong.parent.mkdir()
    save_file({k: v.contiguous() for k, v in read_state(tiny_models.mvdream).items()}, str(wrong))
    args = ["run", "--prompt", "a panda", "--out", str(out), "--preset", "fast", "--models-dir", str(models)]
    assert main([*args, "--sd-model", "mvdream.safetensors", "--sd-config", str(tiny_models.sd21_config_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "MVDream" in err and "\n" not in err and not out.exists()


def test_an_image_run_refuses_an_sd2_model_as_controlnets_base(tmp_path, tiny_models):
    from tests.paths import EXAMPLES

    models = _models(tmp_path, tiny_models, "sd21", "zero123", "video", "controlnet_tile")
    image = EXAMPLES / "panda-dance" / "rgba.png"
    settings = replace(_settings(tmp_path, models, sd_model=models / "diffusers" / "stable-diffusion-2-1-base"),
                       image=image)  # fmt: skip
    with pytest.raises(ValueError, match="SD2.x model; with --image"):
        validate(settings)
