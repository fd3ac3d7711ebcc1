"""Text prompt -> mask ("the bottle"): SAM's automatic masks ranked by a text-image model.

Two rankers, chosen by the text model's own ``config.json`` (``model_type``):

* ``clip`` (``CLIPModel``, default id ``clip-vit-base-patch32``): each SAM mask is cut out of the
  photo (its box, everything outside the mask painted white, padded square) and scored by the
  cosine similarity between CLIP's image embedding of that crop and the text embedding of
  ``"a photo of <text>"``.
* ``clipseg`` (``CLIPSegForImageSegmentation``, id ``clipseg``): CLIPSeg's heat map for the text
  scores each SAM mask by soft Dice overlap ``2 sum(p m) / (sum p + sum m)``.

Both run through transformers with the PIL-backed image processors (``CLIPImageProcessorPil``,
``ViTImageProcessorPil``): the default ones want torchvision, which must not be installed.

Text model resolution (never a download): the ``text_model`` argument, else ``settings.clip_model``
when Settings has that field, else the registry ids ``clip-vit-base-patch32`` then ``clipseg``
(in ``settings.model_dir`` or the Hugging Face cache). Missing -> MissingWeightsError with
``packshot models pull clip-vit-base-patch32``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..errors import InvalidInputError, MissingWeightsError, ModelError, NoProductFoundError
from ..models.hf import load_local, model_type, pick_device, pick_dtype, pickle_hint
from ..types import Box, Photo, ProgressFn, no_progress
from .sam_core import SamPredictor, restrict_to_boxes


DEFAULT_CLIP_MODEL = "clip-vit-base-patch32"
DEFAULT_CLIPSEG_MODEL = "clipseg"
TEXT_MODEL_TYPES = ("clip", "clipseg")
WORK_SIDE = 512          # masks are ranked at this size (longest side); the winners are upsampled
PROMPT_TEMPLATE = "a photo of {}"


def resolve_text_model(settings: Settings, ref: str | None = None) -> Path:
    """Text model reference -> local folder (CLIP or CLIPSeg). Never downloads."""
    from ..models import resolve

    ref = ref or getattr(settings, "clip_model", None)
    if ref:
        path = resolve(ref, settings, kinds=TEXT_MODEL_TYPES)
        kind = model_type(path)
        if kind not in TEXT_MODEL_TYPES:
            raise ModelError(f"text model {ref!r} ({path}) is {f'a {kind!r} checkpoint' if kind else 'not a transformers model folder'}; "
                             f"text prompts need a CLIP or CLIPSeg checkpoint (model_type 'clip' or 'clipseg')")
        return path
    for default in (DEFAULT_CLIP_MODEL, DEFAULT_CLIPSEG_MODEL):
        try:
            path = resolve(default, settings, kinds=TEXT_MODEL_TYPES)
        except MissingWeightsError:
            continue
        if model_type(path) in TEXT_MODEL_TYPES:
            return path
    raise MissingWeightsError(
        f"text prompts need a CLIP (or CLIPSeg) model and none is present locally (looked in "
        f"{settings.model_dir} and the Hugging Face cache); fetch it with: packshot models pull {DEFAULT_CLIP_MODEL}")


@dataclass
class TextBundle:
    kind: str            # "clip" | "clipseg"
    model: Any
    image_processor: Any
    tokenizer: Any
    device: str
    dtype: Any
    path: Path


def load_text_model(path: Path, settings: Settings) -> TextBundle:
    """Load a CLIP or CLIPSeg folder with PIL-backed processors. Errors are one-line ModelErrors."""
    kind = model_type(path)
    try:
        import torch  # noqa: F401
        from transformers import CLIPTokenizer
        if kind == "clip":
            from transformers import CLIPImageProcessorPil as Proc
            from transformers import CLIPModel as Model
        elif kind == "clipseg":
            from transformers import CLIPSegForImageSegmentation as Model
            from transformers import ViTImageProcessorPil as Proc
        else:
            raise ModelError(f"text model {path} is a {kind!r} checkpoint; text prompts need 'clip' or 'clipseg'")
    except ImportError as e:  # pragma: no cover - the ai extra is installed in dev/CI
        from ..errors import DependencyMissingError
        raise DependencyMissingError(f"text prompts ({e.name})", "ai") from None
    device = pick_device(settings)
    dtype = pick_dtype(settings, device)
    model = load_local(Model, path, settings, f"the {kind} model")
    try:
        processor = Proc.from_pretrained(str(path), local_files_only=True)
        tokenizer = CLIPTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as e:
        raise ModelError(f"could not load the {kind} model from {path}: {type(e).__name__}: {e}"
                         f"{pickle_hint(path, settings)}") from None
    return TextBundle(kind=kind, model=model.to(device=device, dtype=dtype).eval(), image_processor=processor,
                      tokenizer=tokenizer, device=device, dtype=dtype, path=path)


def text_bundle(settings: Settings, ref: str | None = None) -> TextBundle:
    """Resolve + load through the shared LRU model cache."""
    from ..models import model_cache

    path = resolve_text_model(settings, ref)
    return model_cache(settings).get(f"text:{path.resolve()}", lambda: load_text_model(path, settings))


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
def _tokens(b: TextBundle, text: str):
    enc = b.tokenizer([PROMPT_TEMPLATE.format(text)], padding=True, truncation=True, return_tensors="pt")
    return {k: v.to(b.device) for k, v in enc.items()}


def masked_crops(rgb: np.ndarray, alphas: np.ndarray, margin: float = 0.05) -> list[np.ndarray]:
    """For each alpha (N x H x W, same size as ``rgb``): its box (+margin), the pixels outside the
    mask painted white, padded to a white square. Returns N uint8 RGB squares."""
    H, W = rgb.shape[:2]
    crops = []
    for a in alphas:
        ys, xs = np.nonzero(a >= 0.5)
        if len(xs) == 0:
            x0, y0, x1, y1 = 0, 0, W, H
        else:
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            mx, my = int((x1 - x0) * margin) + 1, int((y1 - y0) * margin) + 1
            x0, y0, x1, y1 = max(0, x0 - mx), max(0, y0 - my), min(W, x1 + mx), min(H, y1 + my)
        c = rgb[y0:y1, x0:x1].astype(np.float32)
        m = a[y0:y1, x0:x1, None]
        c = c * m + 255.0 * (1 - m)
        h, w = c.shape[:2]
        s = max(h, w)
        sq = np.full((s, s, 3), 255.0, np.float32)
        sq[(s - h) // 2:(s - h) // 2 + h, (s - w) // 2:(s - w) // 2 + w] = c
        crops.append(np.clip(sq + 0.5, 0, 255).astype(np.uint8))
    return crops


def clip_scores(b: TextBundle, crops: list[np.ndarray], text: str, batch: int = 32) -> np.ndarray:
    """Cosine similarity between each crop and the text, in [-1, 1] (CLIP embeddings)."""
    import torch

    with torch.inference_mode():
        t = b.model.get_text_features(**_tokens(b, text))
        t = getattr(t, "pooler_output", t)
        t = torch.nn.functional.normalize(t.float(), dim=-1)
        out = []
        for i in range(0, len(crops), batch):
            pv = b.image_processor(images=crops[i:i + batch], return_tensors="pt")["pixel_values"]
            f = b.model.get_image_features(pixel_values=pv.to(b.device, b.dtype))
            f = getattr(f, "pooler_output", f)
            out.append(torch.nn.functional.normalize(f.float(), dim=-1) @ t[0])
    return torch.cat(out).cpu().numpy().astype(np.float64)


def clipseg_heatmap(b: TextBundle, rgb: np.ndarray, text: str) -> np.ndarray:
    """CLIPSeg probability that each pixel is ``text``: float32 HxW in [0, 1], ``rgb``'s size."""
    import torch

    pv = b.image_processor(images=[rgb], return_tensors="pt")["pixel_values"].to(b.device, b.dtype)
    with torch.inference_mode():
        logits = b.model(pixel_values=pv, **_tokens(b, text)).logits
    logits = logits.reshape(1, 1, *logits.shape[-2:]).float()
    up = torch.nn.functional.interpolate(logits, size=rgb.shape[:2], mode="bilinear", align_corners=False)
    return torch.sigmoid(up)[0, 0].cpu().numpy().astype(np.float32)


def soft_dice(heat: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Soft Dice overlap of each alpha (N x H x W) with a heat map (H x W); in [0, 1]."""
    m = (alphas >= 0.5).astype(np.float32)
    inter = (m * heat[None]).reshape(len(m), -1).sum(1)
    return (2 * inter / (heat.sum() + m.reshape(len(m), -1).sum(1) + 1e-6)).astype(np.float64)


# --------------------------------------------------------------------------------------------
# the public function
# --------------------------------------------------------------------------------------------
def text_candidates(photo: Photo, text: str, k: int = 5, *, settings: Settings | None = None,
                    segmenter: SamPredictor | None = None, sam_model: str | None = None,
                    text_model: str | None = None, region: Box | None = None,
                    progress: ProgressFn = no_progress) -> list[tuple[np.ndarray, float]]:
    """Masks for ``text`` in ``photo``: up to ``k`` ``(alpha, score)`` pairs, best first.

    ``alpha`` is float32 HxW in [0, 1] at the photo's size; ``score`` is the ranker's (CLIP
    cosine similarity, or CLIPSeg soft Dice), scores descend. ``region`` (XYXY photo pixels)
    limits the automatic masks to a box. The SAM embedding comes from ``segmenter``'s cache.
    """
    text = " ".join(str(text or "").split())
    if not text:
        raise InvalidInputError("text prompt is empty: name the object, e.g. 'the bottle'")
    if k < 1:
        raise InvalidInputError(f"k must be >= 1, got {k}")
    if segmenter is None:
        segmenter = SamPredictor(settings, sam_model, text_model=text_model)
    settings = segmenter.settings
    tb = text_bundle(settings, text_model or segmenter.text_model)  # fail early, before SAM work
    t0 = time.perf_counter()
    emb = segmenter.embed(photo)
    props = segmenter.automatic_masks(emb, region=region, keep=max(24, 4 * k), progress=progress)
    if not props:
        raise NoProductFoundError(f"{photo.source}: SAM proposed no mask for {text!r}")
    # rank at a working size
    import torch
    from PIL import Image

    W, H = photo.size
    s = min(1.0, WORK_SIDE / max(W, H))
    work = (max(1, round(W * s)), max(1, round(H * s)))
    work_rgb = photo.rgb if s == 1.0 else np.asarray(Image.fromarray(photo.rgb).resize(work, Image.BILINEAR))
    logits = torch.stack([p.logits for p in props])
    small = segmenter.upsample(emb, logits, work)                  # (N, h, w)
    progress("segment", 0.7, f"ranking {len(props)} masks for {text!r}")
    if tb.kind == "clip":
        scores = clip_scores(tb, masked_crops(work_rgb, small), text)
    else:
        scores = soft_dice(clipseg_heatmap(tb, work_rgb, text), small)
    order = np.argsort(-scores, kind="stable")[:k]
    full = segmenter.upsample(emb, logits[torch.as_tensor(order.copy(), device=logits.device)])  # (k, H, W)
    if region is not None:
        full = np.stack([restrict_to_boxes(a, (region,)) for a in full])
    progress("segment", 0.9, f"text ranked in {time.perf_counter() - t0:.1f}s")
    return [(full[i], float(scores[j])) for i, j in enumerate(order)]
