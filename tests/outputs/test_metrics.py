"""CLIP metrics: equal to a naive per-frame computation on the tiny CLIP model; CLIP-R ranks correctly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

from a124_core.compat import clip_features
from a124_core.outputs.metrics import ClipEvaluator, ClipMetricsConfig, check_clip_folder

from .conftest import smooth_video

PROMPTS = ["a panda is dancing", "a dog is running", "a cat is jumping", "the object"]


@pytest.fixture(scope="module")
def evaluator(tiny_clip_dir):
    return ClipEvaluator(tiny_clip_dir, ClipMetricsConfig(batch_size=4, device="cpu"))


@pytest.fixture(scope="module")
def naive(tiny_clip_dir):
    """Per-image / per-prompt embeddings the plain transformers way (CLIPImageProcessor on PIL images)."""
    model = CLIPModel.from_pretrained(str(tiny_clip_dir), local_files_only=True).eval()
    processor = CLIPImageProcessor.from_pretrained(str(tiny_clip_dir), local_files_only=True)
    tokenizer = CLIPTokenizer.from_pretrained(str(tiny_clip_dir), local_files_only=True)

    @torch.no_grad()
    def image(frame: torch.Tensor) -> torch.Tensor:
        pil = Image.fromarray((frame.numpy() * 255).round().astype(np.uint8))
        pixels = processor(images=pil, return_tensors="pt").pixel_values
        return F.normalize(clip_features(model.get_image_features(pixel_values=pixels))[0], dim=-1)

    @torch.no_grad()
    def text(prompt: str) -> torch.Tensor:
        tokens = tokenizer([prompt], return_tensors="pt")
        return F.normalize(clip_features(model.get_text_features(**tokens))[0], dim=-1)

    return image, text


def quantised(video: torch.Tensor) -> torch.Tensor:
    """Frames on the uint8 grid, so the PIL path of the naive computation sees the same pixels."""
    return (video * 255).round() / 255


@pytest.fixture(scope="module")
def scene():
    orbit = [quantised(smooth_video(5, 48, 64, seed=s)) for s in range(3)]  # 3 views x 5 frames, non-square
    reference = quantised(smooth_video(1, 56, 40, seed=9))[0]
    return orbit, reference


def test_tiny_clip_folder_has_the_real_layout(tiny_clip_dir):
    assert check_clip_folder(tiny_clip_dir) == tiny_clip_dir
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt"):
        assert (tiny_clip_dir / name).is_file()
    tokenizer = CLIPTokenizer.from_pretrained(str(tiny_clip_dir), local_files_only=True)
    model = CLIPModel.from_pretrained(str(tiny_clip_dir), local_files_only=True)
    assert model.config.text_config.eos_token_id == tokenizer.eos_token_id
    assert sum(p.numel() for p in model.parameters()) < 200_000


def test_preprocessing_matches_clip_image_processor(evaluator, tiny_clip_dir, scene):
    processor = CLIPImageProcessor.from_pretrained(str(tiny_clip_dir), local_files_only=True)
    frames = [*scene[0][0], scene[1], scene[0][1][0].transpose(0, 1)]  # landscape and portrait frames
    for frame in frames:
        pil = Image.fromarray((frame.numpy() * 255).round().astype(np.uint8))
        expected = processor(images=pil, return_tensors="pt").pixel_values
        ours = evaluator.preprocess(frame[None])
        assert ours.shape == expected.shape
        # PIL rounds the resized image to uint8; we stay in float: at most ~2 grey levels apart.
        assert (ours - expected).abs().max() < 2.5 / 255 / 0.26
        assert (ours - expected).abs().mean() < 0.5 / 255 / 0.26


def test_metrics_equal_naive_per_frame_cosines(evaluator, naive, scene):
    image, text = naive
    orbit, reference = scene
    frame_embs = [torch.stack([image(f) for f in view]) for view in orbit]
    all_frames = torch.cat(frame_embs)
    t = text(PROMPTS[0])
    expected_t = float(np.mean([float(e @ t) for e in all_frames]))
    ref = image(reference)
    expected_i = float(np.mean([float(e @ ref) for e in frame_embs[0]]))
    pairs = [float(v[k] @ v[k + 1]) for v in frame_embs for k in range(len(v) - 1)]
    expected_f = float(np.mean(pairs))
    texts = torch.stack([text(p) for p in PROMPTS])
    hits = [int(torch.argmax(texts @ e)) == 0 for e in all_frames]
    expected_r = float(np.mean(hits))

    scores = evaluator.evaluate(orbit, reference, PROMPTS[0], PROMPTS)
    assert scores.clip_t == pytest.approx(expected_t, abs=3e-3)
    assert scores.clip_i == pytest.approx(expected_i, abs=3e-3)
    assert scores.clip_f == pytest.approx(expected_f, abs=3e-3)
    margins = [(texts @ e).topk(2).values for e in all_frames]
    assert all(float(m[0] - m[1]) > 5e-3 for m in margins), "near-tied prompts: change the scene seeds"
    assert scores.clip_r == pytest.approx(expected_r)
    winners = torch.stack([torch.argmax(texts @ e) for e in all_frames])
    for k, prompt in enumerate(PROMPTS):  # every prompt as the true one, so non-trivial accuracies are covered
        assert evaluator.clip_r(orbit, prompt, PROMPTS) == pytest.approx(float((winners == k).float().mean()))
    # The single-metric entry points agree with the combined one.
    assert evaluator.clip_t(torch.cat(orbit), PROMPTS[0]) == pytest.approx(scores.clip_t, abs=1e-6)
    assert evaluator.clip_i(orbit[0], reference) == pytest.approx(scores.clip_i, abs=1e-6)
    assert evaluator.clip_f(orbit) == pytest.approx(scores.clip_f, abs=1e-6)
    assert evaluator.clip_r(orbit, PROMPTS[0], PROMPTS) == pytest.approx(scores.clip_r, abs=1e-6)


def test_batched_encoding_equals_one_by_one(evaluator, scene):
    frames = torch.cat(scene[0])  # 15 frames, batch size 4: batches of 4, 4, 4, 3
    batched = evaluator.encode_images(frames)
    single = torch.cat([evaluator.encode_images(f[None]) for f in frames])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)
    assert torch.allclose(batched.norm(dim=-1), torch.ones(len(frames)), atol=1e-5)


def test_clip_f_does_not_pair_frames_across_views(evaluator, scene):
    orbit = scene[0]
    per_view = [evaluator.clip_f(v) for v in orbit]
    assert evaluator.clip_f(orbit) == pytest.approx(float(np.mean(per_view)), abs=1e-6)  # equal pair counts
    assert evaluator.clip_f(torch.stack(orbit)) == pytest.approx(evaluator.clip_f(orbit), abs=1e-6)
    still = orbit[0][:1].expand(4, -1, -1, -1)
    assert evaluator.clip_f(still) == pytest.approx(1.0, abs=1e-5)


def test_clip_r_ranks_correctly_on_a_constructed_case():
    e = torch.eye(4)
    candidates = e  # candidate k points along axis k
    queries = F.normalize(
        torch.tensor([[1.0, 0.2, 0, 0], [0.9, 0.1, 0, 0], [0.3, 1.0, 0, 0], [1.0, 0, 0, 0.99]]), dim=-1
    )
    assert ClipEvaluator.clip_r_from(queries, candidates, 0) == pytest.approx(0.75)
    assert ClipEvaluator.clip_r_from(queries, candidates, 1) == pytest.approx(0.25)
    assert ClipEvaluator.clip_r_from(queries, candidates, 3) == pytest.approx(0.0)


def test_clip_r_on_the_model_follows_the_nearest_prompt(evaluator, scene):
    frames = torch.cat(scene[0])
    sims = evaluator.encode_images(frames) @ evaluator.encode_texts(PROMPTS).T
    winners = sims.argmax(dim=1)
    for k, prompt in enumerate(PROMPTS):
        expected = float((winners == k).float().mean())
        assert evaluator.clip_r([frames], prompt, PROMPTS) == pytest.approx(expected)
    # Per-video retrieval: one query per view (the view's mean embedding).
    video_eval = ClipEvaluator(evaluator_folder(evaluator), ClipMetricsConfig(retrieval="video", device="cpu"))
    view_means = F.normalize(torch.stack([evaluator.encode_images(v).mean(0) for v in scene[0]]), dim=-1)
    best = (view_means @ evaluator.encode_texts(PROMPTS).T).argmax(dim=1)
    assert video_eval.clip_r(scene[0], PROMPTS[int(best[0])], PROMPTS) == pytest.approx(
        float((best == best[0]).float().mean())
    )


def evaluator_folder(evaluator: ClipEvaluator):
    return evaluator.model.name_or_path


def test_text_embeddings_are_cached(tiny_clip_dir):
    ev = ClipEvaluator(tiny_clip_dir, ClipMetricsConfig(device="cpu"))
    calls = []
    original = ev.model.get_text_features

    def counting(**kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(**kwargs)

    ev.model.get_text_features = counting
    first = ev.encode_texts(PROMPTS[:2])
    second = ev.encode_texts([PROMPTS[1], PROMPTS[0], PROMPTS[2]])
    assert calls == [2, 1]
    torch.testing.assert_close(second[:2], first.flip(0))


def test_bad_inputs(tmp_path, evaluator, tiny_clip_dir):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ClipEvaluator(tmp_path / "nowhere")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((tiny_clip_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match=r"lacks model.safetensors, preprocessor_config.json, vocab.json"):
        ClipEvaluator(partial)
    with pytest.raises(ValueError, match="non-empty"):
        evaluator.clip_t(torch.rand(2, 8, 8, 3), "  ")
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        evaluator.encode_images(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="at least 2 frames"):
        evaluator.clip_f(torch.rand(1, 8, 8, 3))
    with pytest.raises(ValueError, match="retrieval"):
        ClipEvaluator(tiny_clip_dir, ClipMetricsConfig(retrieval="scene"))
