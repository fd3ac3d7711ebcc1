"""Image captions (BLIP / BLIP-2 class models through transformers; local weights only).

``settings.captioner`` (``PACKSHOT_CAPTIONER``) or an explicit ``ref`` names a registry id
(``packshot models list``: kind ``captioner``), a Hub id in the Hugging Face cache, or a folder
saved with ``save_pretrained``. Weights are never downloaded here: missing ones give one line
naming ``packshot models pull ID``. Loaded models stay in the process's model cache (LRU).

Used by :mod:`packshot.prompts.suggest` (the product's noun and category steer the scene, and the
noun goes into the diffusion prompt) and :mod:`packshot.prompts.describe` (a reference scene's
words, read with the studio vocabulary). transformers and torch are imported on first use only.
Florence-2 needs ``trust_remote_code`` (code from the model repo), which packshot does not run.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .config import Settings
from .errors import DependencyMissingError, ModelError

DEFAULT_ID = "blip-caption-base"
# config.json model_type -> (model class, processor class) in transformers
ARCHITECTURES = {"blip": ("BlipForConditionalGeneration", "BlipProcessor"),
                 "blip-2": ("Blip2ForConditionalGeneration", "Blip2Processor")}
MAX_NEW_TOKENS = 30


def resolve_captioner(ref: str | None, settings: Settings) -> Path:
    """A captioner reference -> its local folder, checked to be a supported architecture."""
    from .models import check_weights_folder, resolve
    from .models.hf import model_type

    ref = ref or settings.captioner or DEFAULT_ID
    path = resolve(ref, settings, kinds=("captioner",))
    kind = model_type(path)
    if kind not in ARCHITECTURES:
        raise ModelError(f"captioner {ref!r} ({path}) is a {kind or 'unknown'} model; packshot captions with: "
                         f"{', '.join(ARCHITECTURES)} (BLIP / BLIP-2 class)")
    problem = check_weights_folder(path, settings.allow_pickle_weights)  # headers only, before loading
    if problem:
        raise ModelError(f"captioner {ref!r} could not be loaded: {problem}")
    return path


def _load(path: Path, settings: Settings):
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError:
        raise DependencyMissingError("the captioner", "ai") from None
    from .models.hf import model_type, pick_device, quiet_loading

    model_cls, proc_cls = (getattr(transformers, n) for n in ARCHITECTURES[model_type(path)])
    try:
        with quiet_loading():
            # the PIL image processor explicitly: the default one needs torchvision (see NOTES)
            image_proc = transformers.BlipImageProcessorPil.from_pretrained(str(path), local_files_only=True)
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            processor = proc_cls(image_processor=image_proc, tokenizer=tokenizer)
            model = model_cls.from_pretrained(str(path), local_files_only=True,
                                              use_safetensors=not settings.allow_pickle_weights or None)
    except Exception as e:  # a broken or mismatched folder: one line, never a traceback
        raise ModelError(f"captioner {path} could not be loaded: {' '.join(str(e).split())[:200]}") from None
    device = pick_device(settings)
    model = model.to(device).eval()
    return model, processor, device


def load_captioner(ref: str | None, settings: Settings):
    """(model, processor, device) for ``ref``, from the process's model cache."""
    from .models import model_cache

    path = resolve_captioner(ref, settings)
    return model_cache(settings).get(f"captioner:{path.resolve()}", lambda: _load(path, settings))


def _rgb(image: np.ndarray) -> np.ndarray:
    """RGB uint8; an RGBA cut-out is put on white first (the caption is about the product)."""
    if image.ndim == 3 and image.shape[2] == 4:
        a = image[..., 3:4].astype(np.float32) / 255.0
        return (image[..., :3].astype(np.float32) * a + 255.0 * (1 - a)).round().astype(np.uint8)
    return image


def caption_image(image: np.ndarray, ref: str | None, settings: Settings, task: str = "product") -> str:
    """One caption, deterministic (greedy decoding). ``task`` is only recorded for now: BLIP's
    unconditional caption serves both the product and the scene readings."""
    import torch
    from PIL import Image

    model, processor, device = load_captioner(ref, settings)
    inputs = processor(images=Image.fromarray(_rgb(np.asarray(image))), return_tensors="pt").to(device)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1)
    text = " ".join(processor.decode(out[0], skip_special_tokens=True).split())
    if not text:
        raise ModelError(f"captioner {ref or settings.captioner or DEFAULT_ID!r} gave an empty caption")
    return text


def noun_of(caption: str) -> str | None:
    """The product noun of a caption: the last word of it that one of the suggestion categories
    knows ("a pair of brown leather shoes on white" -> "shoes"), else None."""
    from .prompts.categories import category_of

    words = re.findall(r"[a-z]+", caption.lower())
    for w in reversed(words):
        if category_of(w):
            return w
    return None


def caption_product(rgba: np.ndarray, ref: str | None, settings: Settings) -> str:
    return caption_image(rgba, ref, settings, task="product")


def product_noun(cut, ref: str | None, settings: Settings) -> str | None:
    """The noun of the product in a Cutout (captioned on white), or None when none is recognised."""
    return noun_of(caption_product(cut.rgba(), ref, settings))
