"""Tiny adapter folders (LoRA, DreamBooth-LoRA, textual inversion) for the tiny pipelines of
tests/tiny_pipelines.py, built DIRECTLY with peft / diffusers in packshot's shared adapter folder
format (``packshot.models.adapters``), so generation tests do not depend on the training code.

* LoRA: ``unet.add_adapter(LoraConfig(...))`` (and the text encoders' for ``dreambooth-lora``) with
  random non-zero weights from a fixed seed (an untrained peft LoRA has B = 0 and changes nothing),
  saved with the pipeline class's own ``save_lora_weights``: ``pytorch_lora_weights.safetensors``.
* Textual inversion: a random embedding per text encoder, saved as ``learned_embeds.safetensors``
  (SD: ``{token: tensor}`` as diffusers' training script writes it; SDXL: ``clip_l`` / ``clip_g``).
* metadata through ``write_metadata`` (base fingerprint of the pipeline folder it was made for) and a
  ``references/`` folder with one RGBA cut-out.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def _metadata(out: Path, base: Path, name: str, method: str, token: str, extra: dict | None = None) -> None:
    from packshot.models.adapters import base_family, base_fingerprint, write_metadata

    refs = out / "references"
    refs.mkdir(parents=True, exist_ok=True)
    from PIL import Image
    rgba = np.zeros((48, 40, 4), np.uint8)
    rgba[8:40, 8:32] = (200, 40, 40, 255)
    Image.fromarray(rgba, "RGBA").save(refs / "photo-1.png")
    meta = {"name": name, "method": method, "token": token,
            "base": {"ref": str(base), "id": None, "family": base_family(base), "fingerprint": base_fingerprint(base)},
            "steps": 30, "final_loss": 0.123, "learning_rate": 1e-4, "rank": 4, "resolution": 128, "seed": 0,
            "photos": [{"name": "photo-1.png", "sha256": "0" * 64}], "packshot_version": "test",
            "created": "2026-12-02T00:00:00Z", "product": "mug", **(extra or {})}
    write_metadata(out, meta)


def _randomise(module, seed: int, std: float) -> None:
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * std)


def build_lora(out: Path, base: Path, name: str = "mug-lora", token: str = "sks", seed: int = 1,
               std: float = 0.3, text_encoder: bool = False) -> Path:
    """A LoRA adapter folder for the tiny pipeline ``base`` (SD or SDXL, inpaint or text2img).
    ``text_encoder``: LoRA on the text encoder(s) too (the DreamBooth-LoRA layout)."""
    import diffusers
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    diffusers.utils.logging.disable_progress_bar()
    cls_name = json.loads((Path(base) / "model_index.json").read_text())["_class_name"]
    pipe = getattr(diffusers, cls_name).from_pretrained(base, local_files_only=True)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=LORA_TARGETS))
    _randomise(pipe.unet, seed, std)
    layers = {"unet_lora_layers": convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))}
    if text_encoder:
        for i, te_name in enumerate(("text_encoder", "text_encoder_2")):
            te = getattr(pipe, te_name, None)
            if te is None:
                continue
            # peft's own injection: transformers 5.23's add_adapter wants peft >= 0.22 (0.21 is installed)
            inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=TEXT_TARGETS), te)
            _randomise(te, seed + 10 + i, std)
            layers[f"{te_name}_lora_layers"] = convert_state_dict_to_diffusers(get_peft_model_state_dict(te))
    type(pipe).save_lora_weights(out, **layers, safe_serialization=True)
    _metadata(out, Path(base), name, "dreambooth-lora" if text_encoder else "lora", token)
    return out


def build_ti(out: Path, base: Path, name: str = "mug-ti", token: str = "<mug-ti>", seed: int = 2,
             vectors: int = 1) -> Path:
    """A textual-inversion adapter folder for the tiny pipeline ``base``: ``vectors`` random
    embedding vectors per text encoder (SDXL: clip_l and clip_g)."""
    import torch
    from safetensors.torch import save_file

    from packshot.models.adapters import base_family

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    dims = {}
    for key, sub in (("clip_l", "text_encoder"), ("clip_g", "text_encoder_2")):
        cfg = Path(base) / sub / "config.json"
        if cfg.exists():
            dims[key] = json.loads(cfg.read_text())["hidden_size"]

    def emb(dim: int):
        t = torch.randn(vectors, dim, generator=g) * 2.0
        return t[0].contiguous() if vectors == 1 else t.contiguous()

    if base_family(base) == "sdxl":
        tensors = {k: emb(d) for k, d in dims.items()}
    else:
        tensors = {token: emb(dims["clip_l"])}
    save_file(tensors, str(out / "learned_embeds.safetensors"))
    _metadata(out, Path(base), name, "textual-inversion", token)
    return out
