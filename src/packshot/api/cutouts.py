"""Interactive cutouts for the API: mask previews on every click, then a full-resolution commit.

The client keeps the click list and sends all of it each time; the server keeps no click state.
What it does cache, per (API key, photo, engine), in a small LRU, is the expensive per-photo state:
the decoded photo and the engine's session (SAM's image embedding, the classic engine's
``InteractiveCutout`` colour models). Sessions are never shared between keys, and each has its
own lock (a session serves one request at a time).

Engines: ``sam`` uses ``SamSegmenter.session``; the others use
``packshot.segment.interactive.InteractiveCutout``; ``auto`` is the pipeline's choice.
"""
from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from ..errors import NoProductFoundError
from ..schema import SegmentOptions
from ..types import Cutout, Matte, Photo

PREVIEW_SIDE = 768


class _Entry:
    def __init__(self, photo: Photo, session: Any):
        self.photo, self.session = photo, session
        self.lock = threading.Lock()


class CutoutSessions:
    """LRU of per-(owner, photo, engine) sessions."""

    def __init__(self, pipeline_getter, capacity: int = 8):
        self._pipeline = pipeline_getter
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[str, str, str], threading.Lock] = {}

    def resolve_engine(self, engine: str) -> str:
        if engine != "auto":
            return engine
        name, _ = self._pipeline().resolve_segmenter(SegmentOptions(engine="auto"))
        return name

    def _new_session(self, engine: str, photo: Photo):
        pipeline = self._pipeline()
        if engine == "sam":
            return pipeline.segmenter("sam").session(photo, preview_side=PREVIEW_SIDE)
        if engine == "learned":
            return pipeline.segmenter("learned").session(photo)
        from ..segment.interactive import InteractiveCutout  # ours: a broken module raises, never hidden
        return InteractiveCutout(photo)

    def get(self, owner: str, photo_id: str, engine: str, load_photo) -> _Entry:
        key = (owner, photo_id, engine)
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
                return entry
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:  # one build per key; concurrent first clicks wait for it
            with self._lock:
                entry = self._items.get(key)
                if entry is not None:
                    return entry
            photo = load_photo()
            entry = _Entry(photo, self._new_session(engine, photo))
            with self._lock:
                self._items[key] = entry
                self._building.pop(key, None)
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            return entry

    def forget_photo(self, photo_id: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[1] == photo_id]:
                del self._items[key]


def as_alpha(out: Any) -> np.ndarray:
    """A session's preview answer (Matte or array) as float32 HxW in [0, 1]."""
    alpha = np.asarray(getattr(out, "alpha", out), dtype=np.float32)
    return np.clip(alpha, 0.0, 1.0)


def mask_png(alpha: np.ndarray) -> bytes:
    """float32 HxW -> 8-bit greyscale (L) PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(alpha * 255).astype(np.uint8), "L").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def cutout_png(photo: Photo, matte: Matte) -> tuple[bytes, list[int]]:
    """Committed matte -> (RGBA PNG bytes with a parameters chunk, bbox). Raises when empty."""
    from ..io import encode_image, format_parameters

    box = matte.bbox(0.5)
    if box is None:
        raise NoProductFoundError("the cutout is empty: add a click on the product or a box around it")
    cut = Cutout(photo=photo, matte=matte)
    data = encode_image(cut.rgba(), "png", parameters=format_parameters("cutout", {"Cutout": matte.engine}))
    return data, list(box)
