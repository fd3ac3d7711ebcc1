"""The base model's parts for training and the per-method set-up (torch, diffusers, peft: lazy).

Loading follows :mod:`packshot.backgrounds.diffusion.loading`: ``from_pretrained(folder,
local_files_only=True, use_safetensors=...)`` per component. The noise scheduler is the base's
own, as a ``DDPMScheduler`` (what diffusers' training scripts do). Methods:

* ``lora``              peft LoRA on the UNet's attention projections (``unet.add_adapter``)
* ``dreambooth-lora``   LoRA on the UNet and on the text encoder(s)' attention projections
* ``textual-inversion`` one new token in the tokenizer(s); only its embedding row(s) learn

An inpainting UNet (in_channels=9) is trained the way diffusers trains inpainting models: the
noisy latents plus the mask and the masked image's latents. packshot uses the "whole image
masked" case (mask all ones, masked image all grey): the adapter learns to draw the product
itself, which is what text2img/img2img with an adapter asks of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, ModelError

UNET_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


@dataclass
class Parts:
    """Loaded modules of one base pipeline, on ``device``; frozen unless a method un-freezes."""

    family: str                       # "sd" | "sdxl"
    inpaint: bool
    tokenizers: list[Any]
    text_encoders: list[Any]
    vae: Any
    unet: Any
    noise_scheduler: Any
    device: str
    dtype: Any                        # dtype of the frozen weights (float32, or fp16/bf16 on a GPU)
    path: Path
    named: dict[str, Any] = field(default_factory=dict)   # module name -> module (checkpoint keys)


def _load_error(path: Path, part: str, e: Exception) -> ModelError:
    msg = " ".join(str(e).split())[:240]
    return ModelError(f"base model {path}: cannot load {part}: {type(e).__name__}: {msg}")


def load_parts(path: Path, family: str, inpaint: bool, device: str, dtype: Any, allow_pickle: bool) -> Parts:
    import diffusers
    import transformers

    from ..backgrounds.diffusion.stack import quiet

    kw: dict[str, Any] = {"local_files_only": True, "torch_dtype": dtype}
    if not allow_pickle:
        kw["use_safetensors"] = True
    subs = ["text_encoder", "text_encoder_2"] if family == "sdxl" else ["text_encoder"]
    encoder_cls = [transformers.CLIPTextModel, transformers.CLIPTextModelWithProjection]
    part = "tokenizer"
    try:
        with quiet():
            toks = [transformers.AutoTokenizer.from_pretrained(str(path), subfolder=s.replace("text_encoder", "tokenizer"),
                                                               local_files_only=True) for s in subs]
            encs = []
            for s, cls in zip(subs, encoder_cls):
                part = s
                encs.append(cls.from_pretrained(str(path), subfolder=s, **kw))
            part = "vae"
            vae = diffusers.AutoencoderKL.from_pretrained(str(path), subfolder="vae",
                                                          **{**kw, "torch_dtype": _vae_dtype(family, dtype)})
            part = "unet"
            unet = diffusers.UNet2DConditionModel.from_pretrained(str(path), subfolder="unet", **kw)
            part = "scheduler"
            sched = diffusers.DDPMScheduler.from_pretrained(str(path), subfolder="scheduler", local_files_only=True)
    except Exception as e:
        raise _load_error(path, part, e) from None
    for m in (*encs, vae, unet):
        m.requires_grad_(False)
        m.to(device)
    named = {"unet": unet, **{s: e for s, e in zip(subs, encs)}}
    return Parts(family, inpaint, toks, encs, vae, unet, sched, device, dtype, path, named)


def _vae_dtype(family: str, dtype: Any) -> Any:
    """SDXL's VAE overflows in float16: it encodes in float32 (latents are computed once)."""
    import torch
    return torch.float32 if family == "sdxl" else dtype


# -- methods -----------------------------------------------------------------------------------

def add_lora(parts: Parts, rank: int, text_too: bool) -> None:
    from peft import LoraConfig

    parts.unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                      target_modules=UNET_TARGETS))
    if text_too:
        from peft import inject_adapter_in_model

        for enc in parts.text_encoders:
            # peft's own injection (what transformers' add_adapter calls; that wrapper wants a newer
            # peft than the pinned 0.21): the config is kept where get_peft_model_state_dict reads it
            cfg = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=TEXT_TARGETS)
            inject_adapter_in_model(cfg, enc, adapter_name="default")
            enc.peft_config = {"default": cfg}


@dataclass
class TokenRows:
    """Textual inversion: the new token's id and the original embedding matrix per encoder."""

    ids: list[int]
    originals: list[Any]


def add_token(parts: Parts, token: str, init_word: str) -> TokenRows:
    """Add ``token`` to every tokenizer, its embedding initialised from ``init_word``'s first
    token (the product's class word), and make the embedding matrix trainable."""
    ids, originals = [], []
    for tok, enc in zip(parts.tokenizers, parts.text_encoders):
        if tok.add_tokens(token) == 0:
            raise InvalidInputError(f"token {token!r} is already in the base model's vocabulary; choose a "
                                    f"new one (e.g. '<my-product>')")
        new_id = tok.convert_tokens_to_ids(token)
        init_ids = tok.encode(init_word, add_special_tokens=False) or tok.encode("object", add_special_tokens=False)
        enc.resize_token_embeddings(len(tok))
        emb = enc.get_input_embeddings().weight
        with _no_grad():
            emb[new_id] = emb[init_ids[0]].clone()
        emb.requires_grad_(True)
        ids.append(new_id)
        originals.append(emb.detach().clone())
    return TokenRows(ids, originals)


def restore_rows(parts: Parts, rows: TokenRows) -> None:
    """Every embedding row but the new token's back to the original (as diffusers' script does)."""
    import torch
    with torch.no_grad():
        for enc, new_id, orig in zip(parts.text_encoders, rows.ids, rows.originals):
            w = enc.get_input_embeddings().weight
            keep = torch.ones(w.shape[0], dtype=torch.bool, device=w.device)
            keep[new_id] = False
            w[keep] = orig[keep].to(w.dtype)


def _no_grad():
    import torch
    return torch.no_grad()


def trainable(parts: Parts) -> dict[str, Any]:
    """``{"unet.<param>": param}`` of every parameter that learns (the checkpoint's keys)."""
    return {f"{m}.{n}": p for m, mod in parts.named.items() for n, p in mod.named_parameters() if p.requires_grad}


def cast_trainable(parts: Parts) -> None:
    """Trainable parameters in float32 while the frozen ones may be fp16/bf16 (diffusers' way)."""
    import torch
    from diffusers.training_utils import cast_training_params

    if parts.dtype != torch.float32:
        cast_training_params(list(parts.named.values()), dtype=torch.float32)


def enable_checkpointing(parts: Parts, text_too: bool) -> None:
    parts.unet.enable_gradient_checkpointing()
    if text_too:
        for enc in parts.text_encoders:   # transformers 5 renamed it (the old name warns)
            (getattr(enc, "activation_checkpointing_enable", None) or enc.gradient_checkpointing_enable)()


# -- forward -----------------------------------------------------------------------------------

def tokenize(parts: Parts, captions: list[str]) -> list[Any]:
    return [tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True,
                return_tensors="pt").input_ids.to(parts.device) for tok in parts.tokenizers]


def encode_text(parts: Parts, ids: list[Any]) -> tuple[Any, Any | None]:
    """(encoder hidden states, pooled embeds or None): SD takes the last hidden state; SDXL the
    penultimate of both encoders, concatenated, and the second encoder's pooled projection."""
    import torch
    if parts.family != "sdxl":
        return parts.text_encoders[0](ids[0])[0], None
    hidden, pooled = [], None
    for enc, i in zip(parts.text_encoders, ids):
        out = enc(i, output_hidden_states=True)
        pooled = out[0]
        hidden.append(out.hidden_states[-2])
    return torch.cat(hidden, dim=-1), pooled


def time_ids(parts: Parts, size: int, batch: int) -> Any:
    """SDXL's micro-conditioning: original size, crop top-left (0, 0), target size."""
    import torch
    return torch.tensor([[size, size, 0, 0, size, size]] * batch, dtype=torch.float32, device=parts.device)


def unet_input(parts: Parts, noisy: Any, blank_latents: Any | None) -> Any:
    """Inpainting UNet: + mask (all ones: the whole image is to be drawn) + masked-image latents."""
    import torch
    if not parts.inpaint:
        return noisy
    b, _c, h, w = noisy.shape
    mask = torch.ones(b, 1, h, w, dtype=noisy.dtype, device=noisy.device)
    return torch.cat([noisy, mask, blank_latents.to(noisy.dtype).expand(b, -1, -1, -1)], dim=1)


def encode_images(parts: Parts, images: list[Any]) -> Any:
    """uint8 HxWx3 arrays -> scaled latents (the distribution's mean: deterministic, computed once)."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    vae = parts.vae
    out = []
    with torch.no_grad():
        for i in range(x.shape[0]):
            lat = vae.encode(x[i:i + 1].to(parts.device, vae.dtype)).latent_dist.mean
            out.append(lat * vae.config.scaling_factor)
    return torch.cat(out).float()


# -- saving ------------------------------------------------------------------------------------

def save_lora(parts: Parts, folder: Path, text_too: bool) -> None:
    import diffusers
    from diffusers.training_utils import _collate_lora_metadata
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    def layers(m):
        return convert_state_dict_to_diffusers(get_peft_model_state_dict(m))

    kw: dict[str, Any] = {"unet_lora_layers": layers(parts.unet)}
    mods: dict[str, Any] = {"unet": parts.unet}
    if text_too:
        names = ["text_encoder", "text_encoder_2"][:len(parts.text_encoders)]
        for n, enc in zip(names, parts.text_encoders):
            kw[f"{n}_lora_layers"] = layers(enc)
            mods[n] = enc
    from ..backgrounds.diffusion.stack import quiet

    with quiet():   # importing a pipeline class pulls transformers' image processors (chatty)
        cls = diffusers.StableDiffusionXLPipeline if parts.family == "sdxl" else diffusers.StableDiffusionPipeline
        cls.save_lora_weights(str(folder), safe_serialization=True, **kw, **_collate_lora_metadata(mods))


def save_embedding(parts: Parts, rows: TokenRows, token: str, folder: Path) -> None:
    """diffusers' textual-inversion file: ``{token: [1, dim]}``; SDXL ``{"clip_l", "clip_g"}``."""
    from safetensors.torch import save_file

    from ..models.adapters import EMBEDS_FILE

    vecs = [enc.get_input_embeddings().weight[i].detach().float().cpu()[None].contiguous()
            for enc, i in zip(parts.text_encoders, rows.ids)]
    data = {"clip_l": vecs[0], "clip_g": vecs[1]} if parts.family == "sdxl" else {token: vecs[0]}
    save_file(data, str(folder / EMBEDS_FILE))
