"""SAM model core: loading, embeddings, prompts -> low-res logits, automatic masks.

Shared by the ``sam`` segmenter (:mod:`packshot.segment.sam`) and text prompts
(:mod:`packshot.segment.text`), which both depend on this module and not on each other.

Geometry, in one place: the processor resizes the photo so its longest side is
``image_size`` (1024 for the real models) and pads bottom/right; prompts in photo pixels are
scaled by ``reshaped / original`` per axis (:class:`Embedding.to_model`); the decoder's low-res
logits (``image_size / 4`` square, padded frame) are upsampled with the processor's own
``post_process_masks`` and turned into a soft matte with a sigmoid.

The PIL-backed ``SamImageProcessorPil`` is used explicitly: the default processor class wants
torchvision, which must not be installed (see the project NOTES). Its NMS helper for automatic
masks needs torchvision too, so :func:`mask_nms` does non-maximum suppression here.

Nothing in this module imports torch at import time.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..errors import InvalidInputError, MissingWeightsError, ModelError, PackshotError
from ..models.hf import load_local, model_type, pick_device, pick_dtype
from ..types import Box, Hints, Photo, Point, ProgressFn, no_progress

DEFAULT_SAM_MODEL = "sam-vit-base"
SAM_MODEL_TYPES = ("sam",)
_SUPPORTED_HINT = "a transformers SAM checkpoint (config.json model_type 'sam'), e.g. sam-vit-base or slimsam"



# --------------------------------------------------------------------------------------------
# model resolution and loading
# --------------------------------------------------------------------------------------------
def resolve_sam(settings: Settings, model: str | None = None) -> Path:
    """Model reference (registry id, HF repo id or folder) -> local SAM folder. Never downloads.

    Raises MissingWeightsError (with the pull command) or ModelError (wrong kind), one line each.
    """
    from ..models import resolve

    ref = model or DEFAULT_SAM_MODEL
    try:
        path = resolve(ref, settings, kinds=("sam",))
    except MissingWeightsError:
        if model is not None:
            raise
        raise MissingWeightsError(
            f"SAM weights {ref!r} are not present locally (looked in {settings.model_dir} and the Hugging Face "
            f"cache); fetch them with: packshot models pull {ref}") from None
    kind = model_type(path)
    if kind not in SAM_MODEL_TYPES:
        what = f"a {kind!r} checkpoint" if kind else ("a single file" if path.is_file() else
                                                      "not a transformers model folder (no config.json)")
        raise ModelError(f"SAM model {ref!r} ({path}) is {what}; the sam engine needs {_SUPPORTED_HINT}")
    return path


def sam_available(settings: Settings | None = None, model: str | None = None) -> bool:
    """True when SAM weights resolve locally (``model`` or the default id). Cheap; never imports
    torch and never downloads. Used by ``--engine auto``."""
    try:
        resolve_sam(settings or Settings(), model)
        return True
    except PackshotError:
        return False


@dataclass
class SamBundle:
    """A loaded SAM: model (eval, no grad), PIL processor, where it runs."""

    model: Any
    processor: Any
    device: str
    dtype: Any
    path: Path

    @property
    def image_size(self) -> int:
        return int(self.processor.size["longest_edge"])


def load_sam(path: Path, settings: Settings) -> SamBundle:
    """Load a SAM folder (``resolve_sam`` output). Errors become one-line ModelErrors."""
    try:
        import torch  # noqa: F401
        from transformers import SamImageProcessorPil, SamModel
    except ImportError as e:  # pragma: no cover - the ai extra is installed in dev/CI
        from ..errors import DependencyMissingError
        raise DependencyMissingError(f"the sam engine ({e.name})", "ai") from None
    device = pick_device(settings)
    dtype = pick_dtype(settings, device)
    model = load_local(SamModel, path, settings, "SAM weights")
    model = model.to(device=device, dtype=dtype).eval()
    size = int(model.config.vision_config.image_size)
    if (path / "preprocessor_config.json").is_file():
        processor = SamImageProcessorPil.from_pretrained(str(path), local_files_only=True)
    else:  # a bare checkpoint: the processor follows the model's own input size
        low = size // 4
        processor = SamImageProcessorPil(size={"longest_edge": size}, pad_size={"height": size, "width": size},
                                         mask_size={"longest_edge": low},
                                         mask_pad_size={"height": low, "width": low})
    if int(processor.size["longest_edge"]) != size or int(processor.pad_size["height"]) != size:
        raise ModelError(f"SAM folder {path}: preprocessor size {processor.size} does not match the model's "
                         f"image_size {size}")
    return SamBundle(model=model, processor=processor, device=device, dtype=dtype, path=path)


# --------------------------------------------------------------------------------------------
# embeddings and geometry
# --------------------------------------------------------------------------------------------
def photo_key(photo: Photo) -> str:
    """Content hash of the photo's pixels (same pixels -> same key, whatever the source)."""
    rgb = np.ascontiguousarray(photo.rgb)
    h = hashlib.blake2b(rgb.data, digest_size=16)
    h.update(repr(rgb.shape).encode())
    return h.hexdigest()


@dataclass(eq=False)
class Embedding:
    """One photo's SAM image embedding and the geometry that maps prompts into the model's frame.

    ``original`` and ``reshaped`` are (height, width): the photo, and the photo resized so its
    longest side is the model's ``image_size`` (before bottom/right padding).
    """

    tensor: Any                     # torch (1, C, h, w) on the model's device
    original: tuple[int, int]
    reshaped: tuple[int, int]
    key: str
    seconds: float = 0.0

    def to_model(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) photo pixel (x, y) -> model-frame (x, y), float32."""
        sx = self.reshaped[1] / self.original[1]
        sy = self.reshaped[0] / self.original[0]
        out = np.asarray(xy, np.float32).copy()
        out[..., 0] *= sx
        out[..., 1] *= sy
        return out


@dataclass(eq=False)
class Prediction:
    """Best low-res mask logits per prompt (``(n, h, w)`` torch, padded frame) and their scores."""

    logits: Any
    iou: np.ndarray                 # (n,) predicted IoU of the chosen mask per prompt
    seconds: float = 0.0


@dataclass(eq=False)
class MaskProposal:
    """One automatic mask: low-res logits (padded frame, ``(h, w)`` torch), SAM's predicted IoU,
    stability score, the grid point (photo pixels) that produced it and its area fraction."""

    logits: Any
    iou: float
    stability: float
    point: Point
    area: float
    box: Box = (0, 0, 0, 0)   # photo pixels, XYXY exclusive

    @property
    def quality(self) -> float:
        return float(self.iou * self.stability)


def mask_nms(masks: Any, scores: Any, iou_threshold: float = 0.7) -> list[int]:
    """Greedy non-maximum suppression on binary masks ``(n, h, w)`` by mask IoU (torch tensors).

    Returns the kept indices, best score first. Replaces ``post_process_for_mask_generation``,
    whose box NMS needs torchvision.
    """
    import torch

    n = int(masks.shape[0])
    if n == 0:
        return []
    flat = masks.reshape(n, -1).to(torch.float32)
    inter = flat @ flat.T
    area = flat.sum(1)
    union = area[:, None] + area[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter)).cpu()
    scores = torch.as_tensor(scores, dtype=torch.float32).cpu()
    order = torch.argsort(scores, descending=True, stable=True).tolist()
    kept: list[int] = []
    suppressed = torch.zeros(n, dtype=torch.bool)
    for i in order:
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed |= iou[i] > iou_threshold
    return kept


# --------------------------------------------------------------------------------------------
# the segmenter
# --------------------------------------------------------------------------------------------
class SamPredictor:
    """A SAM checkpoint with an LRU of photo embeddings: ``embed`` once, ``predict`` many times,
    ``automatic_masks`` for a grid of point prompts. Thread-safe (the embedding cache is locked)."""

    def __init__(self, settings: Settings | None = None, model: str | None = None, *,
                 text_model: str | None = None, refine: bool = True, embed_cache: int = 4):
        self.settings = settings or Settings()
        self.model_ref = model or DEFAULT_SAM_MODEL
        self.text_model = text_model
        self.refine = refine
        self._path = resolve_sam(self.settings, model)  # fail early: missing weights / wrong kind
        self._embeddings: OrderedDict[str, Embedding] = OrderedDict()
        self._capacity = max(1, embed_cache)
        self._lock = threading.Lock()
        self.stats = {"embeddings": 0, "embedding_hits": 0, "decodes": 0}

    # -- model -------------------------------------------------------------------------------
    def bundle(self) -> SamBundle:
        """The loaded model, shared through the process-wide LRU model cache."""
        from ..models import model_cache

        return model_cache(self.settings).get(f"sam:{self._path.resolve()}",
                                              lambda: load_sam(self._path, self.settings))

    # -- 1. embed once -----------------------------------------------------------------------
    def embed(self, photo: Photo) -> Embedding:
        """The photo's image embedding: computed once, then served from this instance's LRU."""
        key = photo_key(photo)
        with self._lock:
            if key in self._embeddings:
                self._embeddings.move_to_end(key)
                self.stats["embedding_hits"] += 1
                return self._embeddings[key]
        emb = self._compute_embedding(photo, key)
        with self._lock:
            self._embeddings[key] = emb
            self._embeddings.move_to_end(key)
            while len(self._embeddings) > self._capacity:
                self._embeddings.popitem(last=False)
        return emb

    def _compute_embedding(self, photo: Photo, key: str) -> Embedding:
        import torch

        b = self.bundle()
        t0 = time.perf_counter()
        enc = b.processor(images=photo.rgb, return_tensors="pt")
        pixel_values = enc["pixel_values"].to(device=b.device, dtype=b.dtype)
        with torch.inference_mode():
            tensor = b.model.get_image_embeddings(pixel_values)
        original = tuple(int(v) for v in enc["original_sizes"][0])
        reshaped = tuple(int(v) for v in enc["reshaped_input_sizes"][0])
        with self._lock:
            self.stats["embeddings"] += 1
        return Embedding(tensor=tensor, original=original, reshaped=reshaped, key=key,
                         seconds=time.perf_counter() - t0)

    # -- 2. prompt many times ----------------------------------------------------------------
    def predict(self, emb: Embedding, hints: Hints, multimask: bool | None = None) -> Prediction:
        """Points / negative points / boxes -> best low-res mask logits per box (one if no box).

        Points (positive label 1, negative label 0) go with every box. ``multimask`` None follows
        SAM's advice: three candidate masks for a lone click (ambiguous), one otherwise; of the
        candidates, the one with the highest predicted IoU is kept.
        """
        import torch

        pts = [*hints.points, *hints.neg_points]
        if not pts and not hints.boxes:
            raise InvalidInputError("SAM needs at least one point or box prompt")
        check_hints(hints, emb.original)
        b = self.bundle()
        t0 = time.perf_counter()
        n = max(1, len(hints.boxes))
        kwargs: dict[str, Any] = {}
        if pts:
            xy = emb.to_model(np.array(pts, np.float32))                           # (P, 2)
            labels = np.array([1] * len(hints.points) + [0] * len(hints.neg_points), np.int64)
            kwargs["input_points"] = torch.from_numpy(np.broadcast_to(xy, (1, n, *xy.shape)).copy()) \
                .to(b.device, b.dtype)                                            # (1, n, P, 2)
            kwargs["input_labels"] = torch.from_numpy(np.broadcast_to(labels, (1, n, len(labels))).copy()) \
                .to(b.device)                                                      # (1, n, P)
        if hints.boxes:
            boxes = emb.to_model(np.array(hints.boxes, np.float32).reshape(-1, 2, 2)).reshape(1, -1, 4)
            kwargs["input_boxes"] = torch.from_numpy(boxes).to(b.device, b.dtype)  # (1, n, 4)
        if multimask is None:
            multimask = len(pts) == 1 and not hints.boxes
        with torch.inference_mode():
            out = b.model(image_embeddings=emb.tensor, multimask_output=multimask, **kwargs)
        iou = out.iou_scores[0].float()                      # (n, m)
        best = iou.argmax(dim=1)                             # (n,)
        rows = torch.arange(n, device=iou.device)
        logits = out.pred_masks[0].float()[rows, best]       # (n, h, w)
        with self._lock:
            self.stats["decodes"] += 1
        return Prediction(logits=logits, iou=iou[rows, best].cpu().numpy(),
                          seconds=time.perf_counter() - t0)

    def upsample(self, emb: Embedding, logits: Any, size: tuple[int, int] | None = None) -> np.ndarray:
        """Low-res logits ``(n, h, w)`` -> soft alpha ``(n, H, W)`` float32 in [0, 1] at ``size``
        (width, height; default the photo's size), via the processor's ``post_process_masks``."""
        import torch

        b = self.bundle()
        hw = emb.original if size is None else (int(size[1]), int(size[0]))
        masks = b.processor.post_process_masks([logits[:, None].float()], [hw], [emb.reshaped],
                                               binarize=False)[0][:, 0]
        return torch.sigmoid(masks).cpu().numpy().astype(np.float32)

    def automatic_masks(self, emb: Embedding, *, points_per_side: int = 16, region: Box | None = None,
                        batch: int = 64, pred_iou_thresh: float = 0.88, stability_thresh: float = 0.92,
                        nms_thresh: float = 0.7, min_area: float = 0.001, keep: int = 32, min_good: int = 8,
                        progress: ProgressFn = no_progress) -> list[MaskProposal]:
        """SAM's automatic mask generator, on the cached embedding: a grid of single-point prompts
        (inside ``region`` when given), three masks each, filtered by predicted IoU and stability,
        then mask-IoU NMS (:func:`mask_nms`). Best quality first, at most ``keep``.

        When fewer than ``min_good`` pass the thresholds (small or untrained models, plain photos),
        the best of the rest (by predicted IoU x stability) fill in up to ``keep``, so a ranking
        always has candidates to rank; NMS still removes duplicates.
        """
        import torch

        b = self.bundle()
        H, W = emb.original
        x0, y0, x1, y1 = region or (0, 0, W, H)
        g = max(1, int(points_per_side))
        xs = x0 + (np.arange(g) + 0.5) * (x1 - x0) / g
        ys = y0 + (np.arange(g) + 0.5) * (y1 - y0) / g
        grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)   # (G, 2) photo px
        logits_all, iou_all, pts_all = [], [], []
        for i in range(0, len(grid), batch):
            chunk = grid[i:i + batch]
            pts = torch.from_numpy(emb.to_model(chunk)[None, :, None, :]).to(b.device, b.dtype)  # (1,B,1,2)
            labels = torch.ones(pts.shape[:3], dtype=torch.int64, device=b.device)
            with torch.inference_mode():
                out = b.model(image_embeddings=emb.tensor, input_points=pts, input_labels=labels,
                              multimask_output=True)
            m = out.pred_masks[0].float()                  # (B, 3, h, w)
            logits_all.append(m.reshape(-1, *m.shape[-2:]))
            iou_all.append(out.iou_scores[0].float().reshape(-1))
            pts_all.extend(p for p in chunk for _ in range(m.shape[1]))
            progress("segment", min(1.0, (i + batch) / len(grid)) * 0.5, "automatic masks")
        with self._lock:
            self.stats["decodes"] += 1
        logits = torch.cat(logits_all)                     # (N, h, w), padded frame
        ious = torch.cat(iou_all)
        # valid (unpadded) part of the low-res frame
        lh, lw = logits.shape[-2:]
        pad = int(b.processor.pad_size["height"])
        vh = max(1, round(emb.reshaped[0] * lh / pad))
        vw = max(1, round(emb.reshaped[1] * lw / pad))
        valid = logits[:, :vh, :vw]
        binary = valid > 0
        # stability: the mask barely changes when the threshold moves by +-1 logit
        hi = (valid > 1.0).flatten(1).sum(1).float()
        lo = (valid > -1.0).flatten(1).sum(1).float()
        stability = torch.where(lo > 0, hi / lo.clamp(min=1), torch.zeros_like(lo))
        area = binary.flatten(1).float().mean(1)
        if region is not None:  # the part of each mask inside the region counts
            rx0, ry0 = int(x0 * vw / W), int(y0 * vh / H)
            rx1, ry1 = max(rx0 + 1, int(np.ceil(x1 * vw / W))), max(ry0 + 1, int(np.ceil(y1 * vh / H)))
            inside = torch.zeros_like(binary[0])
            inside[ry0:ry1, rx0:rx1] = True
            binary = binary & inside
            area = binary.flatten(1).float().mean(1)
        nonempty = (area >= min_area) & (area <= 0.98)
        quality = ious * stability
        good = nonempty & (ious > pred_iou_thresh) & (stability > stability_thresh)
        want = min(int(nonempty.sum()), max(8, keep))
        if int(good.sum()) < min_good:  # fill in with the best of the rest
            rest = torch.nonzero(nonempty & ~good).flatten()
            extra = rest[torch.argsort(quality[rest], descending=True, stable=True)][: want - int(good.sum())]
            good[extra] = True
        idx = torch.nonzero(good).flatten()
        kept = [int(idx[k]) for k in mask_nms(binary[idx], quality[idx], nms_thresh)][:keep]
        proposals = []
        for k in kept:
            ys_, xs_ = torch.nonzero(binary[k], as_tuple=True)
            box = (int(xs_.min()) * W // vw, int(ys_.min()) * H // vh,
                   min(W, -(-(int(xs_.max()) + 1) * W // vw)), min(H, -(-(int(ys_.max()) + 1) * H // vh)))
            px, py = pts_all[k]
            proposals.append(MaskProposal(logits=logits[k], iou=float(ious[k]), stability=float(stability[k]),
                                          point=(int(px), int(py)), area=float(area[k]), box=box))
        return proposals


def check_hints(hints: Hints, original: tuple[int, int]) -> None:
    h, w = original
    for x, y in [*hints.points, *hints.neg_points]:
        if not (0 <= x < w and 0 <= y < h):
            raise InvalidInputError(f"point {x},{y} is outside the {w}x{h} photo")
    for b in hints.boxes:
        if b[0] < 0 or b[1] < 0 or b[2] > w or b[3] > h or b[2] <= b[0] or b[3] <= b[1]:
            raise InvalidInputError(f"box {','.join(map(str, b))} is not a box inside the {w}x{h} photo")


def union_box(boxes: tuple[Box, ...]) -> Box | None:
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def restrict_to_boxes(alpha: np.ndarray, boxes: tuple[Box, ...]) -> np.ndarray:
    """A box says "the product is in here": zero the matte outside the union of the boxes."""
    if not boxes:
        return alpha
    keep = np.zeros(alpha.shape, bool)
    for x0, y0, x1, y1 in boxes:
        keep[y0:y1, x0:x1] = True
    return np.where(keep, alpha, np.float32(0)).astype(np.float32)
