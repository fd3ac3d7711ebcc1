"""Prior preservation (DreamBooth): class images drawn by the base model itself, before any
adapter is added, kept in ``<out>/class_images/`` so a resumed run reuses them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .model import Parts

CLASS_DIR = "class_images"
CLASS_PROMPT = "a photo of {product}"
PRIOR_STEPS = 25            # inference steps per class image (DPM-Solver++: enough for a class prior)


def _pipeline(parts: Parts) -> Any:
    import diffusers

    from ..backgrounds.diffusion.stack import quiet

    with quiet():
        sched = diffusers.DPMSolverMultistepScheduler.from_pretrained(str(parts.path), subfolder="scheduler",
                                                                     local_files_only=True)
    te, tok = parts.text_encoders, parts.tokenizers
    if parts.family == "sdxl":
        cls = diffusers.StableDiffusionXLInpaintPipeline if parts.inpaint else diffusers.StableDiffusionXLPipeline
        kw: dict[str, Any] = dict(text_encoder_2=te[1], tokenizer_2=tok[1])
    else:
        cls = diffusers.StableDiffusionInpaintPipeline if parts.inpaint else diffusers.StableDiffusionPipeline
        kw = dict(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = cls(vae=parts.vae, text_encoder=te[0], tokenizer=tok[0], unet=parts.unet, scheduler=sched, **kw)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def class_images(parts: Parts, folder: Path, product: str, count: int, size: int, seed: int) -> list[np.ndarray]:
    """``count`` class images at ``size`` px (made once; the ones already in ``folder`` are reused)."""
    import torch
    from PIL import Image

    from ..io import load_image, save_image

    folder.mkdir(parents=True, exist_ok=True)
    prompt = CLASS_PROMPT.format(product=product)
    out, pipe = [], None
    for i in range(count):
        path = folder / f"{i:04d}.png"
        if path.is_file():
            img = load_image(path).rgb
            if img.shape[:2] == (size, size):
                out.append(img)
                continue
        pipe = pipe or _pipeline(parts)
        kw: dict[str, Any] = {}
        if parts.inpaint:   # the whole image is "masked": the model draws all of it
            kw = {"image": Image.new("RGB", (size, size), (127, 127, 127)),
                  "mask_image": Image.new("L", (size, size), 255), "strength": 1.0}
        with torch.no_grad():
            img = pipe(prompt, height=size, width=size, num_inference_steps=PRIOR_STEPS, output_type="np",
                       generator=torch.Generator("cpu").manual_seed(seed + i), **kw).images[0]
        img = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
        save_image(img, path, "png")
        out.append(img)
    return out


def prompt_for(product: str) -> str:
    return CLASS_PROMPT.format(product=product)
