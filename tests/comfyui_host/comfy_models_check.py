"""Run under ComfyUI's interpreter in its folder (test_comfy_models.py starts it): ComfyUI's own model classes,
patcher and LoRA loader around the tiny single-file SD checkpoints, read by the pack's SD-from-MODEL prior.

    python comfy_models_check.py <repo> <tiny models folder> <scratch folder>   # prints one JSON line

What it measures (the test asserts):
- `sd15` / `sd21`: ComfySDPrior's CFG epsilon on ComfyUI's UNet (SD15 / SD20 model configs, epsilon prediction)
  minus the diffusers prior's on the same weights: the SD-from-MODEL path reads SD2.1-base as it reads SD1.5.
- `sd21_v`: the same UNet declared v-prediction (SD2.1 768): ComfyUI's x0 gives eps = sqrt(a) v + sqrt(1 - a) z_t.
- `lora`: ComfyUI's LoraLoaderModelOnly with a rank-2 LoRA on every cross-attention key/value projection: how far
  the prior's epsilon moved, and its distance to the epsilon of a model whose weights hold W + up @ down.
The ComfyUI models are built from the tiny files' shapes (ComfyUI's detect_unet_config), since its checkpoint
loader only accepts full-size networks; heads and group norms are the tiny models'.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path.cwd()))  # ComfyUI's folder (the script runs there)
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()
REPO, MODELS, SCRATCH = (Path(p) for p in sys.argv[1:4])
sys.argv = [sys.argv[0], "--cpu"]

import comfy.model_base  # noqa: E402
import comfy.model_detection  # noqa: E402
import comfy.model_management as mm  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.ops  # noqa: E402
import comfy.supported_models  # noqa: E402
import comfy.utils  # noqa: E402
import folder_paths  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import nodes  # noqa: E402

sys.path.insert(0, str(REPO))
spec = importlib.util.spec_from_file_location(
    "comfyui_animate124", REPO / "__init__.py", submodule_search_locations=[str(REPO)]
)
pack = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = pack
spec.loader.exec_module(pack)
from comfyui_animate124.nodes.comfy_priors import ComfySDPrior  # noqa: E402

from a124_core.priors.sd import StableDiffusionPrior  # noqa: E402

PREFIX = "model.diffusion_model."
#: The tiny UNets' group norms (ComfyUI's UNet hard-codes SD's 32 groups).
TINY_GROUPS = 8


#: The tiny UNets' attention heads: SD1.5's a count per block, SD2.1-base's a width (tiny.py: 4 either way).
TINY_HEADS = {
    comfy.supported_models.SD15: {"num_heads": 4, "num_head_channels": -1},
    comfy.supported_models.SD20: {"num_heads": -1, "num_head_channels": 4},
}


class TinyOps(comfy.ops.disable_weight_init):
    """ComfyUI's default layers (patches and casts included) with the tiny models' group count."""

    class GroupNorm(comfy.ops.disable_weight_init.GroupNorm):
        def __init__(self, num_groups, num_channels, *args, **kwargs):
            super().__init__(TINY_GROUPS, num_channels, *args, **kwargs)


def comfy_model(path: Path, config_class: type, model_type: object, weights: dict | None = None) -> object:
    """A ComfyUI ModelPatcher around the tiny file's UNet (ComfyUI's classes; heads as the tiny diffusers UNet)."""
    sd = comfy.utils.load_torch_file(str(path))
    unet_config = comfy.model_detection.detect_unet_config(sd, PREFIX)
    config = config_class(unet_config)
    config.unet_config.update(TINY_HEADS[config_class])
    config.set_inference_dtype(torch.float32, None)
    config.custom_operations = TinyOps
    model = comfy.model_base.BaseModel(config, model_type=model_type, device=torch.device("cpu"))
    model.load_model_weights(weights if weights is not None else sd, PREFIX)
    return comfy.model_patcher.ModelPatcher(
        model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device()
    )


def eps_of(prior, reference: StableDiffusionPrior) -> torch.Tensor:
    """CFG epsilon (scale 7.5) of `prior` for fixed latents, timesteps and the reference prior's text embeddings."""
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 8, 8, generator=gen)
    t = torch.tensor([300, 700])
    text = reference.text_condition("a panda", "")
    with torch.inference_mode():  # as ComfyUI runs nodes
        return prior.predict_noise(latents, t, text, 7.5), latents, t


def compare(folder: str, ckpt: str, config_class: type) -> dict:
    ref = StableDiffusionPrior.from_pretrained(MODELS / "diffusers" / folder, device="cpu")
    vae = SimpleNamespace(first_stage_model=ref.vae)
    out = {}
    for name, model_type in (("eps", comfy.model_base.ModelType.EPS), ("v", comfy.model_base.ModelType.V_PREDICTION)):
        prior = ComfySDPrior(comfy_model(MODELS / "checkpoints" / ckpt, config_class, model_type), None, vae).to("cpu")
        got, latents, t = eps_of(prior, ref)
        want, _, _ = eps_of(ref, ref)  # the diffusers UNet's output, read as epsilon
        if name == "v":  # the same output read as v: eps = sqrt(a) v + sqrt(1 - a) z_t
            a = ref.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
            want = a.sqrt() * want + (1 - a).sqrt() * latents
        out[name] = float((got - want).abs().max() / want.abs().max())
    return out


def lora_check() -> dict:
    """LoraLoaderModelOnly's patch reaches ComfySDPrior's epsilon, exactly as merged weights would."""
    ref = StableDiffusionPrior.from_pretrained(MODELS / "diffusers" / "stable-diffusion-v1-5", device="cpu")
    vae = SimpleNamespace(first_stage_model=ref.vae)
    ckpt = MODELS / "checkpoints" / "tiny-sd15.safetensors"
    eps = comfy.model_base.ModelType.EPS
    base = comfy_model(ckpt, comfy.supported_models.SD15, eps)
    gen = torch.Generator().manual_seed(1)
    lora, merged = {}, comfy.utils.load_torch_file(str(ckpt))
    for key, weight in base.model.state_dict().items():
        if key.endswith(("attn2.to_k.weight", "attn2.to_v.weight")):
            stem = key[: -len(".weight")]
            up, down = torch.randn(weight.shape[0], 2, generator=gen), torch.randn(2, weight.shape[1], generator=gen)
            lora[f"{stem}.lora_up.weight"], lora[f"{stem}.lora_down.weight"] = 0.3 * up, 0.3 * down
            merged["model." + key] = merged["model." + key] + 0.09 * up @ down  # alpha = rank: scale 1
    (SCRATCH / "loras").mkdir(parents=True, exist_ok=True)
    save_file(lora, str(SCRATCH / "loras" / "tiny-lora.safetensors"))
    folder_paths.add_model_folder_path("loras", str(SCRATCH / "loras"))
    (patched,) = nodes.LoraLoaderModelOnly().load_lora_model_only(base, "tiny-lora.safetensors", 1.0)
    plain, _, _ = eps_of(ComfySDPrior(base, None, vae).to("cpu"), ref)
    with_lora, _, _ = eps_of(ComfySDPrior(patched, None, vae).to("cpu"), ref)
    want, _, _ = eps_of(ComfySDPrior(comfy_model(ckpt, comfy.supported_models.SD15, eps, merged), None, vae), ref)
    scale = float(want.abs().max())
    return {
        "patched_keys": len(lora) // 2,
        "moved": float((with_lora - plain).abs().max()) / scale,
        "to_merged": float((with_lora - want).abs().max()) / scale,
    }


print(
    json.dumps(
        {
            "sd15": compare("stable-diffusion-v1-5", "tiny-sd15.safetensors", comfy.supported_models.SD15),
            "sd21": compare("stable-diffusion-2-1-base", "tiny-sd21-base.safetensors", comfy.supported_models.SD20),
            "lora": lora_check(),
        }
    )
)
