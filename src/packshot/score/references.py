"""The reference products a generated candidate is compared with, and their content hashes.

References are the input photo's own cut-out plus each adapter's ``references/*.png`` (RGBA
cut-outs of its training photos, written by ``packshot train``). Each carries the SHA-256 of the
photo it shows: the input photo's file (or its decoded pixels when it came from memory), and for an
adapter reference the training photo's hash recorded in the adapter's metadata (``photos[i]``,
in the same order as ``references/NN-*.png``), else the reference file's own hash.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..config import Settings
from ..types import Cutout, Photo
from .similarity import ProductView


def photo_sha256(photo: Photo) -> str:
    """SHA-256 of the photo's file when it came from one, else of its decoded RGB pixels."""
    from ..models.adapters import sha256_file

    src = Path(photo.source) if photo.source and not photo.source.startswith("<") else None
    if src is not None and src.is_file():
        return sha256_file(src)
    return hashlib.sha256(np.ascontiguousarray(photo.rgb).tobytes()).hexdigest()


def _adapter_views(ref: str, settings: Settings) -> list[ProductView]:
    from ..io import load_image
    from ..models.adapters import find_adapter, sha256_file
    from ..schema import parse_adapter

    info = find_adapter(parse_adapter(ref)[0], settings)
    photos = info.meta.get("photos") or []
    views = []
    for png in info.references:
        img = load_image(png, max_pixels=settings.max_pixels)
        if img.alpha is None or not (img.alpha >= 0.5).any():
            continue  # not a cut-out (no transparency): nothing to compare with
        stem = png.stem.split("-", 1)[0]
        i = int(stem) - 1 if stem.isdigit() else -1
        rec = photos[i] if 0 <= i < len(photos) and isinstance(photos[i], dict) else {}
        views.append(ProductView.from_rgba(img.rgb, img.alpha, name=f"{info.name}/{rec.get('name') or png.name}",
                                           sha256=rec.get("sha256") or sha256_file(png),
                                           source=f"adapter {info.name}"))
    return views


def reference_views(cut: Cutout, adapters: list[str], settings: Settings) -> list[ProductView]:
    """The input photo's cut-out, then every adapter's reference cut-outs."""
    name = Path(cut.photo.source).name if cut.photo.source and not cut.photo.source.startswith("<") else "photo"
    views = [ProductView.from_rgba(cut.photo.rgb, cut.matte.alpha, name=name, sha256=photo_sha256(cut.photo),
                                   source="photo")]
    for ref in adapters:
        views.extend(_adapter_views(ref, settings))
    return views


def hashes_text(views: list[ProductView]) -> str:
    """'name: <sha256>, ...': the references' photos, as recorded in each candidate's parameters."""
    return ", ".join(f"{v.name}: {v.sha256 or '?'}" for v in views)


def candidate_view(segmenter, references: list[ProductView], rgb: np.ndarray, name: str) -> ProductView | None:
    """The generated product of one candidate image, cut out with ``segmenter`` (the pipeline's
    default, ``auto``) with a box hint where a reference is found in the image
    (:func:`.detail.locate`); None when no product is found."""
    from ..errors import NoProductFoundError
    from ..types import Hints
    from .detail import locate

    box = locate(references, rgb)
    try:
        matte = segmenter.segment(Photo(rgb=rgb, source=name), Hints(boxes=(box,)) if box else Hints())
    except NoProductFoundError:
        return None
    if matte.bbox(0.5) is None:
        return None
    return ProductView.from_rgba(rgb, matte.alpha, name=name, source="candidate")
