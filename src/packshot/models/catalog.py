"""The table of known weights: id, kind, licence, download size and what ``models pull`` fetches.

Importing this module registers every entry with :func:`packshot.models.register_model`; it never
imports torch. Sizes are the download of the listed ``files`` patterns in GB (approximate, as
published on the Hugging Face Hub). ``commercial_ok`` is False for licences that forbid commercial
use; OpenRAIL licences allow it under their use restrictions (read them).

Repository moves: RunwayML deleted ``runwayml/stable-diffusion-inpainting`` and
``runwayml/stable-diffusion-v1-5`` from the Hub in 2024; the same weights are mirrored, unchanged,
under ``stable-diffusion-v1-5/...``. The old names are kept as ``aliases``: a copy already in the
Hugging Face cache or in the model dir under the old name is still found.

``extra`` keys: ``aliases`` (other repo ids of the same weights), ``native`` (the side in px the
model was trained at), ``base`` (the family a ControlNet / IP-Adapter fits: sd15 | sdxl),
``control`` (canny | depth), ``subfolder`` / ``weight_name`` / ``image_encoder_folder``
(IP-Adapter layout inside its repo).
"""
from __future__ import annotations

from . import ModelSpec, register_model

# What a diffusers pipeline folder needs: configs, tokenizers and safetensors weights. Root-level
# single-file checkpoints (.ckpt, several GB), pickle .bin weights, safety checkers and
# non-diffusers formats are left out.
_CONFIGS = ("model_index.json", "*/config.json", "scheduler/*", "tokenizer/*", "tokenizer_2/*",
            "feature_extractor/*")
_WEIGHTS_FP32 = ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                 "text_encoder/model.safetensors", "text_encoder_2/model.safetensors")
_WEIGHTS_FP16 = ("unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
                 "text_encoder/model.fp16.safetensors", "text_encoder_2/model.fp16.safetensors")
CONFIG_FILES = _CONFIGS

_OPENRAIL_M = "CreativeML OpenRAIL-M"
_OPENRAIL_PP = "CreativeML OpenRAIL++-M"

CATALOG: tuple[ModelSpec, ...] = (
    # -- inpainting (the default diffusion mode) --------------------------------------------
    ModelSpec("sd15-inpaint", "sd15-inpaint", "stable-diffusion-v1-5/stable-diffusion-inpainting", _OPENRAIL_M,
              True, 4.3, "Stable Diffusion 1.5 inpainting (RunwayML), 512 px.",
              _CONFIGS + _WEIGHTS_FP32,
              {"aliases": ("runwayml/stable-diffusion-inpainting",), "native": 512}),
    ModelSpec("sd2-inpaint", "sd2-inpaint", "stabilityai/stable-diffusion-2-inpainting", "CreativeML OpenRAIL++-M",
              True, 5.2, "Stable Diffusion 2 inpainting, 512 px.", _CONFIGS + _WEIGHTS_FP32, {"native": 512}),
    ModelSpec("sdxl-inpaint", "sdxl-inpaint", "diffusers/stable-diffusion-xl-1.0-inpainting-0.1", _OPENRAIL_PP,
              True, 6.9, "SDXL 1.0 inpainting 0.1 (fp16 weights), 1024 px.", _CONFIGS + _WEIGHTS_FP16,
              {"native": 1024}),
    # -- text-to-image / img2img -------------------------------------------------------------
    ModelSpec("sd15", "sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", _OPENRAIL_M,
              True, 4.3, "Stable Diffusion 1.5 text-to-image, 512 px.", _CONFIGS + _WEIGHTS_FP32,
              {"aliases": ("runwayml/stable-diffusion-v1-5",), "native": 512}),
    ModelSpec("sdxl", "sdxl", "stabilityai/stable-diffusion-xl-base-1.0", _OPENRAIL_PP,
              True, 6.9, "SDXL 1.0 base text-to-image (fp16 weights), 1024 px.", _CONFIGS + _WEIGHTS_FP16,
              {"native": 1024}),
    # -- ControlNets -----------------------------------------------------------------------------
    ModelSpec("controlnet-canny-sd15", "controlnet", "lllyasviel/control_v11p_sd15_canny", "OpenRAIL",
              True, 0.7, "ControlNet 1.1 canny edges for SD 1.5 (fp16 weights).",
              ("config.json", "diffusion_pytorch_model.fp16.safetensors"), {"base": "sd15", "control": "canny"}),
    ModelSpec("controlnet-depth-sd15", "controlnet", "lllyasviel/control_v11f1p_sd15_depth", "OpenRAIL",
              True, 0.7, "ControlNet 1.1 depth for SD 1.5 (fp16 weights).",
              ("config.json", "diffusion_pytorch_model.fp16.safetensors"), {"base": "sd15", "control": "depth"}),
    ModelSpec("controlnet-canny-sdxl", "controlnet", "diffusers/controlnet-canny-sdxl-1.0", _OPENRAIL_PP,
              True, 2.5, "ControlNet canny edges for SDXL 1.0 (fp16 weights).",
              ("config.json", "diffusion_pytorch_model.fp16.safetensors"), {"base": "sdxl", "control": "canny"}),
    ModelSpec("controlnet-depth-sdxl", "controlnet", "diffusers/controlnet-depth-sdxl-1.0", _OPENRAIL_PP,
              True, 2.5, "ControlNet depth for SDXL 1.0 (fp16 weights).",
              ("config.json", "diffusion_pytorch_model.fp16.safetensors"), {"base": "sdxl", "control": "depth"}),
    # -- IP-Adapter (style of a reference photo) -------------------------------------------------
    ModelSpec("ip-adapter-sd15", "ip-adapter", "h94/IP-Adapter", "Apache-2.0", True, 2.6,
              "IP-Adapter for SD 1.5 with its ViT-H image encoder.",
              ("models/ip-adapter_sd15.safetensors", "models/image_encoder/*"),
              {"base": "sd15", "subfolder": "models", "weight_name": "ip-adapter_sd15.safetensors",
               "image_encoder_folder": "image_encoder"}),
    ModelSpec("ip-adapter-sdxl", "ip-adapter", "h94/IP-Adapter", "Apache-2.0", True, 2.6,
              "IP-Adapter for SDXL (ViT-H variant) with its image encoder.",
              ("sdxl_models/ip-adapter_sdxl_vit-h.safetensors", "models/image_encoder/*"),
              {"base": "sdxl", "subfolder": "sdxl_models", "weight_name": "ip-adapter_sdxl_vit-h.safetensors",
               "image_encoder_folder": "models/image_encoder"}),
    # -- segmentation and text-image models (used by the SAM / text segmenters) ------------------
    ModelSpec("sam-vit-base", "sam", "facebook/sam-vit-base", "Apache-2.0", True, 0.38,
              "Segment Anything ViT-B (transformers).", ("*.json", "*.safetensors", "*.txt")),
    ModelSpec("slimsam", "sam", "Zigeng/SlimSAM-uniform-77", "Apache-2.0", True, 0.04,
              "SlimSAM-77: SAM pruned to 1/10 of ViT-B, fast on CPU.", ("*.json", "*.safetensors", "*.txt")),
    ModelSpec("clip-vit-base-patch32", "clip", "openai/clip-vit-base-patch32", "MIT", True, 0.61,
              "CLIP ViT-B/32 (ranks masks and candidates against text).", ("*.json", "*.safetensors", "*.txt")),
    ModelSpec("clipseg", "clipseg", "CIDAS/clipseg-rd64-refined", "Apache-2.0", True, 0.6,
              "CLIPSeg rd64 refined: text-prompted segmentation.", ("*.json", "*.safetensors", "*.txt")),
)

for _spec in CATALOG:
    register_model(_spec)

# -- captioners (H13: scene suggestions and descriptions; packshot.captioner) ------------------------
CAPTIONERS: tuple[ModelSpec, ...] = (
    ModelSpec("blip-caption-base", "captioner", "Salesforce/blip-image-captioning-base", "BSD-3-Clause", True,
              0.99, "BLIP base image captioning: names the product for scene suggestions.",
              ("*.json", "*.safetensors", "*.txt")),
    ModelSpec("blip-caption-large", "captioner", "Salesforce/blip-image-captioning-large", "BSD-3-Clause", True,
              1.88, "BLIP large image captioning (better nouns, slower).", ("*.json", "*.safetensors", "*.txt")),
)
for _spec in CAPTIONERS:
    register_model(_spec)
