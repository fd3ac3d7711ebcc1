"""Tiny randomly initialised diffusers pipelines, saved in the exact on-disk layout users have.

Each ``build_*`` function writes a folder that ``DiffusionPipeline.from_pretrained(path,
local_files_only=True)`` (and packshot's ``--model PATH``) loads like real weights: model_index.json,
one sub-folder per component with its config and ``*.safetensors`` weights, a CLIP tokenizer built
offline from a small byte-level vocabulary. Sizes follow diffusers' own tests (UNet
block_out_channels=(32, 64), cross_attention_dim=32) with a 4-level VAE so that the VAE scale factor
is 8 like real Stable Diffusion (see ../shared/NOTES.md). All weights come from a fixed torch seed,
so a folder built twice holds identical weights.

Builders (each returns the folder):

* :func:`build_sd_inpaint`      SD 1.x/2.x-layout inpainting pipeline (UNet in_channels=9)
* :func:`build_sd_text2img`     SD-layout text-to-image pipeline (UNet in_channels=4)
* :func:`build_sdxl_inpaint`    SDXL-layout inpainting pipeline (two text encoders, in_channels=9)
* :func:`build_sdxl_text2img`   SDXL-layout text-to-image pipeline
* :func:`build_controlnet`      a ControlNetModel made with ControlNetModel.from_unet (4-channel, or 9-channel inpainting)
* :func:`build_single_file`     an SD pipeline exported as ONE original-layout (LDM) ``.safetensors`` file
* :func:`build_ip_adapter`      an IP-Adapter folder in h94/IP-Adapter's layout (models/…)
"""
from __future__ import annotations

from tiny_tokenizer import tiny_clip_tokenizer

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

SAMPLE_SIZE = 16          # latent side the tiny UNets say they were "trained" at: 16 * 8 = 128 px native
TEXT_DIM = 32             # hidden size of each tiny CLIP text encoder


def tiny_tokenizer():
    """The shared offline CLIP tokenizer (tests/tiny_tokenizer.py) with this file's merges."""
    return tiny_clip_tokenizer([("t", "h"), ("th", "e</w>"), ("o", "n</w>"), ("a", "n"), ("i", "n")], max_length=77)


def _text_config(tok, projection: bool = False):
    from transformers import CLIPTextConfig

    kw = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
              hidden_size=TEXT_DIM, intermediate_size=37, layer_norm_eps=1e-5, num_attention_heads=4,
              num_hidden_layers=2, vocab_size=len(tok), max_position_embeddings=77, hidden_act="gelu")
    if projection:
        kw["projection_dim"] = TEXT_DIM
    return CLIPTextConfig(**kw)


def tiny_vae(sdxl: bool = False, sample_size: int = SAMPLE_SIZE):
    from diffusers import AutoencoderKL

    kw = {"force_upcast": False} if sdxl else {}
    return AutoencoderKL(block_out_channels=(16, 16, 32, 32), in_channels=3, out_channels=3,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         latent_channels=4, norm_num_groups=8, sample_size=sample_size * 8, **kw)


def tiny_unet(in_channels: int = 9, sdxl: bool = False, sample_size: int = SAMPLE_SIZE):
    from diffusers import UNet2DConditionModel

    if not sdxl:
        return UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=sample_size, in_channels=in_channels,
            out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=TEXT_DIM)
    # SDXL: text_time added conditioning = pooled text (32) + 6 micro-conditioning ids x 8
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=sample_size, in_channels=in_channels,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=TEXT_DIM + 6 * 8,
        cross_attention_dim=2 * TEXT_DIM)


def _seeded():
    import torch
    torch.manual_seed(0)


def _save(pipe, path: Path) -> Path:
    path = Path(path)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def sd_components(in_channels: int = 9, sample_size: int = SAMPLE_SIZE) -> dict:
    from diffusers import PNDMScheduler
    from transformers import CLIPTextModel

    _seeded()
    tok = tiny_tokenizer()
    return {
        "unet": tiny_unet(in_channels, sample_size=sample_size),
        "vae": tiny_vae(sample_size=sample_size),
        "text_encoder": CLIPTextModel(_text_config(tok)).eval(),
        "tokenizer": tok,
        "scheduler": PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   skip_prk_steps=True, steps_offset=1),
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
    }


def sdxl_components(in_channels: int = 9) -> dict:
    from diffusers import EulerDiscreteScheduler
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    _seeded()
    tok = tiny_tokenizer()
    return {
        "unet": tiny_unet(in_channels, sdxl=True),
        "vae": tiny_vae(sdxl=True),
        "text_encoder": CLIPTextModel(_text_config(tok)).eval(),
        "text_encoder_2": CLIPTextModelWithProjection(_text_config(tok, projection=True)).eval(),
        "tokenizer": tok,
        "tokenizer_2": tok,
        "scheduler": EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                            steps_offset=1, timestep_spacing="leading"),
        "image_encoder": None,
        "feature_extractor": None,
    }


def build_sd_inpaint(path: Path, sample_size: int = SAMPLE_SIZE) -> Path:
    """``sample_size`` is the UNet's latent side: native px = 8 x sample_size (16 -> 128 px)."""
    from diffusers import StableDiffusionInpaintPipeline

    return _save(StableDiffusionInpaintPipeline(**sd_components(9, sample_size), requires_safety_checker=False),
                 path)


def build_sd_text2img(path: Path) -> Path:
    from diffusers import StableDiffusionPipeline

    return _save(StableDiffusionPipeline(**sd_components(4), requires_safety_checker=False), path)


def build_sdxl_inpaint(path: Path) -> Path:
    from diffusers import StableDiffusionXLInpaintPipeline

    return _save(StableDiffusionXLInpaintPipeline(**sdxl_components(9), requires_aesthetics_score=False), path)


def build_sdxl_text2img(path: Path) -> Path:
    from diffusers import StableDiffusionXLPipeline

    return _save(StableDiffusionXLPipeline(**sdxl_components(4)), path)


def build_controlnet(path: Path, sdxl: bool = False, in_channels: int = 4) -> Path:
    """A tiny ControlNetModel made with ``ControlNetModel.from_unet``, saved as a folder: from a
    4-channel tiny UNet like real SD ControlNets, or (``in_channels=9``) from a tiny inpainting UNet
    like Yahoo's photo-background-generation ControlNet (from SD2-inpainting)."""
    from diffusers import ControlNetModel

    _seeded()
    cn = ControlNetModel.from_unet(tiny_unet(in_channels, sdxl=sdxl))
    import torch
    for zero_conv in [*cn.controlnet_down_blocks, cn.controlnet_mid_block]:   # "trained": non-zero residuals
        torch.nn.init.normal_(zero_conv.weight, std=0.05)
    cn.save_pretrained(path, safe_serialization=True)
    return Path(path)


def corrupt_copy(src: Path, dst: Path, part: str = "unet") -> Path:
    """Copy a pipeline folder and truncate ``part``'s weights file to half its size."""
    import shutil

    shutil.copytree(src, dst)
    weights = next((Path(dst) / part).glob("*.safetensors"))
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return Path(dst)


# -- single-file export (diffusers -> original LDM layout) -------------------------------------
# The key maps are diffusers' own scripts/convert_diffusers_to_original_stable_diffusion.py
# (Apache-2.0), reduced to what SD 1.x needs; the result loads through
# ``StableDiffusionInpaintPipeline.from_single_file`` (diffusers converts it back).

def _unet_to_ldm(sd: dict, unet) -> dict:
    n_blocks = len(unet.config.block_out_channels)
    layers = unet.config.layers_per_block
    conv = [("time_embed.0.weight", "time_embedding.linear_1.weight"),
            ("time_embed.0.bias", "time_embedding.linear_1.bias"),
            ("time_embed.2.weight", "time_embedding.linear_2.weight"),
            ("time_embed.2.bias", "time_embedding.linear_2.bias"),
            ("input_blocks.0.0.weight", "conv_in.weight"), ("input_blocks.0.0.bias", "conv_in.bias"),
            ("out.0.weight", "conv_norm_out.weight"), ("out.0.bias", "conv_norm_out.bias"),
            ("out.2.weight", "conv_out.weight"), ("out.2.bias", "conv_out.bias")]
    resnet = [("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("out_layers.0", "norm2"),
              ("out_layers.3", "conv2"), ("emb_layers.1", "time_emb_proj"), ("skip_connection", "conv_shortcut")]
    layer_map = []
    for i in range(n_blocks):
        for j in range(layers):
            layer_map.append((f"input_blocks.{(layers + 1) * i + j + 1}.0.", f"down_blocks.{i}.resnets.{j}."))
            layer_map.append((f"input_blocks.{(layers + 1) * i + j + 1}.1.", f"down_blocks.{i}.attentions.{j}."))
        for j in range(layers + 1):
            layer_map.append((f"output_blocks.{(layers + 1) * i + j}.0.", f"up_blocks.{i}.resnets.{j}."))
            layer_map.append((f"output_blocks.{(layers + 1) * i + j}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < n_blocks - 1:
            layer_map.append((f"input_blocks.{(layers + 1) * (i + 1)}.0.op.", f"down_blocks.{i}.downsamplers.0.conv."))
            # the upsampler is the last module of level i's last output block: after resnet (+ attention)
            layer_map.append((f"output_blocks.{(layers + 1) * i + layers}.{2 if _has_attn(unet, i) else 1}.",
                              f"up_blocks.{i}.upsamplers.0."))
    layer_map.append(("middle_block.1.", "mid_block.attentions.0."))
    for j in range(2):
        layer_map.append((f"middle_block.{2 * j}.", f"mid_block.resnets.{j}."))
    mapping = {k: k for k in sd}
    for ldm, hf in conv:
        mapping[hf] = ldm
    for k, v in mapping.items():
        if "resnets" in k:
            for ldm, hf in resnet:
                v = v.replace(hf, ldm)
            mapping[k] = v
    for k, v in mapping.items():
        for ldm, hf in layer_map:
            v = v.replace(hf, ldm)
        mapping[k] = v
    return {"model.diffusion_model." + v: sd[k] for k, v in mapping.items()}


def _has_attn(unet, up_index: int) -> bool:
    return "CrossAttn" in unet.config.up_block_types[up_index]


def _vae_to_ldm(sd: dict) -> dict:
    conv = [("nin_shortcut", "conv_shortcut"), ("norm_out", "conv_norm_out"), ("mid.attn_1.", "mid_block.attentions.0.")]
    for i in range(4):
        for j in range(2):
            conv.append((f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}."))
        if i < 3:
            conv.append((f"down.{i}.downsample.", f"down_blocks.{i}.downsamplers.0."))
            conv.append((f"up.{3 - i}.upsample.", f"up_blocks.{i}.upsamplers.0."))
        for j in range(3):
            conv.append((f"decoder.up.{3 - i}.block.{j}.", f"decoder.up_blocks.{i}.resnets.{j}."))
    for i in range(2):
        conv.append((f"mid.block_{i + 1}.", f"mid_block.resnets.{i}."))
    attn = [("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("proj_out.", "to_out.0.")]
    out = {}
    for k, v in sd.items():
        name = k
        for ldm, hf in conv:
            name = name.replace(hf, ldm)
        if "attentions" in k or "attn_1" in name:
            for ldm, hf in attn:
                name = name.replace(hf, ldm)
            if any(name.endswith(f"attn_1.{p}.weight") for p in ("q", "k", "v", "proj_out")):
                v = v.reshape(*v.shape, 1, 1)
        out["first_stage_model." + name] = v
    return out


def build_single_file(path: Path, in_channels: int = 9) -> Path:
    """Write the tiny SD pipeline as ONE original-layout checkpoint ``path`` (``.safetensors``)."""
    from safetensors.torch import save_file

    comps = sd_components(in_channels)
    sd = {}
    sd.update(_unet_to_ldm(comps["unet"].state_dict(), comps["unet"]))
    sd.update(_vae_to_ldm(comps["vae"].state_dict()))
    for k, v in comps["text_encoder"].state_dict().items():
        # original checkpoints hold transformers' CLIPTextModel under text_model.* (transformers 5
        # flattened the module, so its own keys may lack the prefix)
        sd["cond_stage_model.transformer." + (k if k.startswith("text_model.") else "text_model." + k)] = v
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return Path(path)


def build_ip_adapter(path: Path, sdxl: bool = False) -> Path:
    """An IP-Adapter folder laid out like h94/IP-Adapter: models/ip-adapter_tiny.safetensors + image_encoder/."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    _seeded()
    root = Path(path) / "models"
    enc = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        image_size=32, patch_size=8))
    enc.save_pretrained(root / "image_encoder", safe_serialization=True)
    unet = tiny_unet(9, sdxl=sdxl)
    cross = unet.config.cross_attention_dim
    tokens = 4
    sd = {"image_proj.proj.weight": torch.randn(cross * tokens, 32) * 0.02,
          "image_proj.proj.bias": torch.zeros(cross * tokens),
          "image_proj.norm.weight": torch.ones(cross), "image_proj.norm.bias": torch.zeros(cross)}
    idx = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = unet.config.block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(unet.config.block_out_channels))[int(name[len("up_blocks.")])]
        else:
            hidden = unet.config.block_out_channels[int(name[len("down_blocks.")])]
        sd[f"ip_adapter.{idx}.to_k_ip.weight"] = torch.randn(hidden, cross) * 0.02
        sd[f"ip_adapter.{idx}.to_v_ip.weight"] = torch.randn(hidden, cross) * 0.02
        idx += 2
    save_file(sd, str(root / "ip-adapter_tiny.safetensors"))
    (root / "README.txt").write_text(json.dumps({"tiny": True}))
    return Path(path)
