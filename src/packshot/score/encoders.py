"""Image encoders for the similarity score's ``similarity_embed`` part: DINOv2 or a CLIP image
encoder through transformers, weights local only (never a download).

``settings.similarity_model`` (``PACKSHOT_SIMILARITY_MODEL``) names a registry id (``dinov2-small``,
``clip-vit-base-patch32``), a Hugging Face repo id already in the cache, or a local folder. The
folder's ``config.json`` ``model_type`` picks the class:

* ``dinov2`` -> ``Dinov2Model``; the embedding is ``pooler_output`` (the layer-normed CLS token),
  the feature DINOv2's authors use for image retrieval;
* ``clip`` / ``clip_vision_model`` -> ``CLIPVisionModelWithProjection`` (a full CLIPModel
  checkpoint loads its vision half); the embedding is ``image_embeds``.

Pre-processing uses the PIL-backed processor classes (``BitImageProcessorPil`` for DINOv2,
``CLIPImageProcessorPil`` for CLIP) read from the folder's ``preprocessor_config.json``: the
default (fast) processors need torchvision, which must not be installed (it breaks transformers and
diffusers here). The product is shown to the encoder as in :func:`packshot.segment.text.masked_crops`:
its box, everything outside the mask white, padded to a white square.

Nothing here imports torch or transformers at import time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings

ENCODER_TYPES = {"dinov2": ("Dinov2Model", "BitImageProcessorPil"),
                 "clip": ("CLIPVisionModelWithProjection", "CLIPImageProcessorPil"),
                 "clip_vision_model": ("CLIPVisionModelWithProjection", "CLIPImageProcessorPil")}
ENCODER_KINDS = ("image-encoder", "clip")   # registry kinds a similarity model may have


def resolve_encoder(settings: Settings) -> Path | None:
    """``settings.similarity_model`` -> local folder, checked to be an encoder; None when unset."""
    from ..errors import ModelError
    from ..models import resolve
    from ..models.hf import model_type

    ref = getattr(settings, "similarity_model", None)
    if not ref:
        return None
    path = resolve(ref, settings, kinds=ENCODER_KINDS)
    kind = model_type(path)
    if kind not in ENCODER_TYPES:
        what = f"a {kind!r} checkpoint" if kind else "not a transformers model folder"
        raise ModelError(f"similarity model {ref!r} ({path}) is {what}; it needs a DINOv2 or CLIP image "
                         f"encoder (model_type one of: {', '.join(ENCODER_TYPES)})")
    return path


@dataclass
class ImageEncoder:
    """A loaded encoder; :meth:`embed` maps a product to a unit vector."""

    kind: str
    model: Any
    processor: Any
    device: str
    dtype: Any
    path: Path

    def embed(self, view) -> np.ndarray:
        """L2-normalised embedding (float64, 1-D) of a :class:`~packshot.score.similarity.ProductView`."""
        import torch

        from ..segment.text import masked_crops

        crop = masked_crops(view.rgb, view.mask[None].astype(np.float32))[0]
        pv = self.processor(images=[crop], return_tensors="pt")["pixel_values"].to(self.device, self.dtype)
        with torch.inference_mode():
            out = self.model(pixel_values=pv)
            f = out.pooler_output if self.kind == "dinov2" else out.image_embeds
        v = f[0].float().cpu().numpy().astype(np.float64)
        return v / max(float(np.linalg.norm(v)), 1e-12)


def load_encoder(path: Path, settings: Settings) -> ImageEncoder:
    """Load an encoder folder (local files only). Errors are one-line ModelErrors naming it."""
    import transformers

    from ..errors import ModelError
    from ..models.hf import load_local, model_type, pick_device, pick_dtype, pickle_hint

    kind = model_type(path)
    model_cls, proc_cls = (getattr(transformers, n) for n in ENCODER_TYPES[kind])
    device = pick_device(settings)
    dtype = pick_dtype(settings, device)
    model = load_local(model_cls, path, settings, f"the {kind} similarity model")
    try:
        processor = proc_cls.from_pretrained(str(path), local_files_only=True)
    except Exception as e:
        raise ModelError(f"could not load the {kind} similarity model's image processor from {path}: "
                         f"{type(e).__name__}: {e}{pickle_hint(path, settings)}") from None
    return ImageEncoder(kind=kind, model=model.to(device=device, dtype=dtype).eval(), processor=processor,
                        device=device, dtype=dtype, path=path)


def image_encoder(settings: Settings, models=None) -> ImageEncoder | None:
    """The configured encoder through the (Pipeline's) LRU model cache; None when none is set."""
    from ..models import model_cache

    path = resolve_encoder(settings)
    if path is None:
        return None
    return model_cache(settings, models).get(f"similarity:{path.resolve()}", lambda: load_encoder(path, settings))
