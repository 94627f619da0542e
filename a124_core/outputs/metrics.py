"""CLIP metrics of the paper's Table 1 (SPEC 11): CLIP-R, CLIP-T, CLIP-I, CLIP-F.

Definitions (all cosines between L2-normalised CLIP projections; the paper uses ViT-B/32):
- CLIP-T: mean cosine(text, frame) over every frame of every orbit view.
- CLIP-R: retrieval accuracy of the true prompt among the candidate prompts (the benchmark captions),
  per frame: a frame counts as a hit when the true prompt has the highest cosine (`retrieval="video"`
  ranks the mean embedding of each view's video instead).
- CLIP-I: mean cosine(reference image, frame) over the video rendered from the reference camera
  (view 0 of the SPEC 10 orbit: polar 90, azimuth 0).
- CLIP-F: mean cosine between consecutive frames of each orbit view (pairs never cross views).

Images are preprocessed in torch (resize of the short side, bicubic with antialias, centre crop,
normalise) with the settings of the folder's preprocessor_config.json, so rendered tensors never pass
through PIL or torchvision. Text embeddings are cached per prompt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..compat import clip_features
from ..weight_files import check_weight_files

REQUIRED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
TOKENIZER_FILES = (("vocab.json", "merges.txt"), ("tokenizer.json",))


@dataclass(frozen=True)
class ClipMetricsConfig:
    """How the CLIP evaluator runs."""

    batch_size: int = 32
    """Images per CLIP forward."""
    device: str | None = None
    """Torch device; None picks CUDA when available, else CPU."""
    retrieval: str = "frame"
    """CLIP-R unit: "frame" (every frame is a query) or "video" (each view's mean embedding is a query)."""


@dataclass
class ClipScores:
    """One scene's scores (higher is better), named as in the paper's Table 1."""

    clip_r: float
    """Retrieval accuracy of the true prompt among the candidates."""
    clip_t: float
    """Mean text-frame cosine over the orbit."""
    clip_i: float
    """Mean reference-image-frame cosine over the reference-camera video."""
    clip_f: float
    """Mean cosine of consecutive frames within each view."""

    def as_dict(self) -> dict[str, float]:
        """Plain dict (for JSON run summaries)."""
        return asdict(self)


def check_clip_folder(folder: str | Path) -> Path:
    """Raise FileNotFoundError naming the missing files when `folder` is not a transformers CLIPModel folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"CLIP model folder {folder} does not exist. Put a transformers CLIPModel there (e.g. a download of "
            f"openai/clip-vit-base-patch32 with {', '.join(REQUIRED_FILES)} and its tokenizer files)."
        )
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not any(all((folder / name).is_file() for name in group) for group in TOKENIZER_FILES):
        missing.append("vocab.json + merges.txt (or tokenizer.json)")
    if missing:
        raise FileNotFoundError(
            f"CLIP model folder {folder} lacks {', '.join(missing)}; expected a transformers CLIPModel folder "
            f"({', '.join(REQUIRED_FILES)} and tokenizer files), e.g. openai/clip-vit-base-patch32."
        )
    check_weight_files(folder)  # a truncated or zero-filled download: one line naming the file
    return folder


def _as_images(images: Tensor, name: str) -> Tensor:
    """Check an IMAGE batch [N, H, W, 3] (a single [H, W, 3] image is promoted) in [0, 1]."""
    if not torch.is_tensor(images):
        raise ValueError(f"{name} must be a torch tensor [N, H, W, 3] in [0, 1], got {type(images).__name__}.")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] < 1:
        raise ValueError(f"{name} must be shaped [N, H, W, 3] (ComfyUI IMAGE), got {tuple(images.shape)}.")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or inf values.")
    return images


def _as_views(videos: Tensor | Sequence[Tensor], name: str) -> list[Tensor]:
    """A [V, N, H, W, 3] tensor or a list of [N, H, W, 3] videos -> list of videos."""
    if torch.is_tensor(videos) and videos.ndim == 5:
        views = list(videos.unbind(0))
    elif torch.is_tensor(videos):
        views = [videos]
    else:
        views = list(videos)
    if not views:
        raise ValueError(f"{name} holds no video.")
    return [_as_images(v, f"{name}[{i}]") for i, v in enumerate(views)]


class ClipEvaluator:
    """CLIP-R/T/I/F from a local transformers CLIPModel folder (batched forwards, cached text embeddings)."""

    def __init__(self, model_dir: str | Path, config: ClipMetricsConfig | None = None) -> None:
        from transformers import CLIPModel, CLIPTokenizer

        self.config = config or ClipMetricsConfig()
        if self.config.retrieval not in ("frame", "video"):
            raise ValueError(f"retrieval must be 'frame' or 'video', got {self.config.retrieval!r}.")
        if self.config.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.config.batch_size}.")
        folder = check_clip_folder(model_dir)
        self.device = torch.device(self.config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.model = CLIPModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
        self.model = self.model.to(self.device, self.dtype).train(False).requires_grad_(False)
        self.tokenizer = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
        pre = json.loads((folder / "preprocessor_config.json").read_text())
        size = pre.get("size", {"shortest_edge": 224})
        self.resize_short = int(size["shortest_edge"] if isinstance(size, dict) else size)
        crop = pre.get("crop_size", self.resize_short)
        crop = (crop["height"], crop["width"]) if isinstance(crop, dict) else (int(crop), int(crop))
        self.crop = crop if pre.get("do_center_crop", True) else None
        self.mean = torch.tensor(pre.get("image_mean", [0.48145466, 0.4578275, 0.40821073])).view(1, 3, 1, 1)
        self.std = torch.tensor(pre.get("image_std", [0.26862954, 0.26130258, 0.27577711])).view(1, 3, 1, 1)
        self._text_cache: dict[str, Tensor] = {}

    def preprocess(self, images: Tensor) -> Tensor:
        """IMAGE [N, H, W, 3] in [0, 1] -> CLIP pixel values [N, 3, S, S] (as CLIPImageProcessor computes them)."""
        x = _as_images(images, "images").to("cpu", torch.float32).clamp(0.0, 1.0).permute(0, 3, 1, 2)
        h, w = x.shape[-2:]
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(self.resize_short * long / short)
        size = (new_long, self.resize_short) if w <= h else (self.resize_short, new_long)
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)
        if self.crop is not None:
            top, left = (x.shape[-2] - self.crop[0]) // 2, (x.shape[-1] - self.crop[1]) // 2
            if top < 0 or left < 0:
                raise ValueError(f"Images of {h}x{w} are too small for CLIP's {self.crop} crop after resizing.")
            x = x[..., top : top + self.crop[0], left : left + self.crop[1]]
        return (x - self.mean) / self.std

    @torch.no_grad()
    def encode_images(self, images: Tensor) -> Tensor:
        """IMAGE [N, H, W, 3] -> unit CLIP embeddings [N, D] (float32, CPU), in batches."""
        images = _as_images(images, "images")
        outs = []
        for start in range(0, images.shape[0], self.config.batch_size):
            pixels = self.preprocess(images[start : start + self.config.batch_size]).to(self.device, self.dtype)
            feats = clip_features(self.model.get_image_features(pixel_values=pixels))
            outs.append(F.normalize(feats.float(), dim=-1).cpu())
        return torch.cat(outs, dim=0)

    @torch.no_grad()
    def encode_texts(self, prompts: Sequence[str]) -> Tensor:
        """Prompts -> unit CLIP embeddings [P, D] (float32, CPU); each prompt is encoded once per evaluator."""
        prompts = list(prompts)
        for prompt in prompts:
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(f"Prompts must be non-empty strings, got {prompt!r}.")
        todo = list(dict.fromkeys(p for p in prompts if p not in self._text_cache))
        for start in range(0, len(todo), self.config.batch_size):
            chunk = todo[start : start + self.config.batch_size]
            tokens = self.tokenizer(chunk, padding=True, truncation=True, return_tensors="pt").to(self.device)
            feats = clip_features(self.model.get_text_features(**tokens))
            for prompt, feat in zip(chunk, F.normalize(feats.float(), dim=-1).cpu()):
                self._text_cache[prompt] = feat
        return torch.stack([self._text_cache[p] for p in prompts])

    # Metrics from embeddings (exposed so a runner that already encoded the frames does not encode twice).

    @staticmethod
    def clip_t_from(frame_emb: Tensor, text_emb: Tensor) -> float:
        """Mean cosine between frames [N, D] and one text [D]."""
        return float((frame_emb @ text_emb).mean())

    @staticmethod
    def clip_i_from(frame_emb: Tensor, image_emb: Tensor) -> float:
        """Mean cosine between frames [N, D] and the reference image [D]."""
        return float((frame_emb @ image_emb).mean())

    @staticmethod
    def clip_f_from(view_embs: Sequence[Tensor]) -> float:
        """Mean cosine of consecutive frames within each view ([N_v, D] each; needs N_v >= 2 somewhere)."""
        pairs = [(e[:-1] * e[1:]).sum(-1) for e in view_embs if e.shape[0] >= 2]
        if not pairs:
            raise ValueError("CLIP-F needs videos of at least 2 frames.")
        return float(torch.cat(pairs).mean())

    @staticmethod
    def clip_r_from(query_emb: Tensor, candidate_emb: Tensor, true_index: int) -> float:
        """Fraction of queries [Q, D] whose most similar candidate [P, D] is `true_index` (ties count as hits)."""
        sims = query_emb @ candidate_emb.T  # [Q, P]
        return float((sims[:, true_index] >= sims.max(dim=1).values).float().mean())

    # Metrics from frames.

    def clip_t(self, frames: Tensor, prompt: str) -> float:
        """CLIP-T of frames [N, H, W, 3] against `prompt`."""
        return self.clip_t_from(self.encode_images(frames), self.encode_texts([prompt])[0])

    def clip_i(self, frames: Tensor, reference: Tensor) -> float:
        """CLIP-I of the reference-camera video [N, H, W, 3] against the reference image [H, W, 3]."""
        ref = _as_images(reference, "reference")
        if ref.shape[0] != 1:
            raise ValueError(f"reference must be one image [H, W, 3] or [1, H, W, 3], got {tuple(reference.shape)}.")
        return self.clip_i_from(self.encode_images(frames), self.encode_images(ref)[0])

    def clip_f(self, videos: Tensor | Sequence[Tensor]) -> float:
        """CLIP-F of one video [N, H, W, 3] or of several views ([V, N, H, W, 3] or a list)."""
        return self.clip_f_from([self.encode_images(v) for v in _as_views(videos, "videos")])

    def clip_r(self, videos: Tensor | Sequence[Tensor], prompt: str, candidates: Sequence[str]) -> float:
        """CLIP-R: retrieval accuracy of `prompt` among `candidates` (added if absent; duplicates dropped)."""
        candidates = self._candidates(prompt, candidates)
        embs = [self.encode_images(v) for v in _as_views(videos, "videos")]
        return self.clip_r_from(self._queries(embs), self.encode_texts(candidates), candidates.index(prompt))

    def evaluate(
        self,
        orbit: Tensor | Sequence[Tensor],
        reference_image: Tensor,
        prompt: str,
        candidates: Sequence[str],
        reference_video: Tensor | None = None,
    ) -> ClipScores:
        """All four scores of one scene, each frame encoded once.

        Args:
            orbit: the orbit views, [V, N, H, W, 3] or a list of [N, H, W, 3] videos.
            reference_image: the input image [H, W, 3] (composited on white, like the renders).
            prompt: the scene's motion prompt.
            candidates: the prompts CLIP-R ranks against (the benchmark's captions).
            reference_video: the video from the reference camera; None takes orbit view 0 (SPEC 10's
                azimuth-0 view is the reference camera).
        """
        views = _as_views(orbit, "orbit")
        candidates = self._candidates(prompt, candidates)
        embs = [self.encode_images(v) for v in views]
        ref_emb = embs[0] if reference_video is None else self.encode_images(reference_video)
        ref_image = _as_images(reference_image, "reference_image")
        if ref_image.shape[0] != 1:
            raise ValueError(f"reference_image must be one image [H, W, 3], got {tuple(reference_image.shape)}.")
        texts = self.encode_texts(candidates)
        all_frames = torch.cat(embs, dim=0)
        return ClipScores(
            clip_r=self.clip_r_from(self._queries(embs), texts, candidates.index(prompt)),
            clip_t=self.clip_t_from(all_frames, texts[candidates.index(prompt)]),
            clip_i=self.clip_i_from(ref_emb, self.encode_images(ref_image)[0]),
            clip_f=self.clip_f_from(embs),
        )

    def _queries(self, view_embs: Sequence[Tensor]) -> Tensor:
        if self.config.retrieval == "video":
            return F.normalize(torch.stack([e.mean(dim=0) for e in view_embs]), dim=-1)
        return torch.cat(list(view_embs), dim=0)

    @staticmethod
    def _candidates(prompt: str, candidates: Sequence[str]) -> list[str]:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"The prompt must be a non-empty string, got {prompt!r}.")
        return list(dict.fromkeys([*candidates, prompt]))
