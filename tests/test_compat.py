"""The spellings that differ between transformers 4.x and 5.x, checked on whichever version is installed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from a124_core.compat import clip_features, transformers_dtype_kwargs, transformers_version, version_tuple


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4.46.1", (4, 46, 1)), ("5.0.0rc1", (5, 0, 0)), ("2.13.0+cpu", (2, 13, 0)), ("4.57.6.dev0", (4, 57, 6))],
)
def test_version_tuple(text, expected):
    assert version_tuple(text) == expected


def test_dtype_keyword_by_version():
    assert transformers_dtype_kwargs(torch.float16, (4, 46, 1)) == {"torch_dtype": torch.float16}
    assert transformers_dtype_kwargs(torch.float16, (4, 55, 4)) == {"torch_dtype": torch.float16}
    assert transformers_dtype_kwargs(torch.float16, (4, 56, 0)) == {"dtype": torch.float16}
    assert transformers_dtype_kwargs(torch.float16, (5, 23, 0)) == {"dtype": torch.float16}


def test_the_installed_transformers_honours_the_keyword(tiny_models):
    """The keyword reaches the loader (fp16 weights), not the model's constructor (TypeError before 4.56)."""
    from transformers import CLIPTextModel

    model = CLIPTextModel.from_pretrained(
        tiny_models.sd15 / "text_encoder", local_files_only=True, **transformers_dtype_kwargs(torch.float16)
    )
    assert next(model.parameters()).dtype == torch.float16
    assert transformers_version() >= (4, 46)


def test_clip_features_on_both_return_types():
    features = torch.randn(2, 16)
    assert clip_features(features) is features
    assert clip_features(SimpleNamespace(pooler_output=features)) is features
    with pytest.raises(TypeError, match="pooler_output"):
        clip_features(SimpleNamespace(last_hidden_state=features))


def test_clip_features_of_the_installed_version(tmp_path):
    from transformers import CLIPModel

    from tests.tiny_clip import write_tiny_clip

    model = CLIPModel.from_pretrained(write_tiny_clip(tmp_path / "clip"), local_files_only=True)
    pixels = torch.rand(2, 3, model.config.vision_config.image_size, model.config.vision_config.image_size)
    with torch.no_grad():
        features = clip_features(model.get_image_features(pixel_values=pixels))
    assert features.shape == (2, model.config.projection_dim)
