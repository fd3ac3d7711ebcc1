"""Training-set export: saved and highly rated results -> an image folder with masks and captions.

``export(store, out, owner=..., min_rating=4, products=None)`` writes, for each selected result::

    OUT/<result id>/image.png      the result as stored (PNG master)
    OUT/<result id>/mask.png       the product on that canvas (L, 255 = product), same size
    OUT/<result id>/caption.json   structured caption (surface, surroundings, background, lighting,
                                   mood), prompt, rating, seed, product, engine, parameters
    OUT/metadata.jsonl             one line per row: file_name, mask_file_name, text, the five
                                   fields, rating, seed, product_id, result_id

``metadata.jsonl`` is the layout 🤗 datasets' ``imagefolder`` reads
(``load_dataset("imagefolder", data_dir=OUT)``: columns ``image``, ``mask`` and the rest) and
diffusers' training scripts take (``--train_data_dir OUT --caption_column text``).

Selection: results of ``owner`` only (sha256 of an API key; "" for a server without keys) that
are saved or rated >= ``min_rating``, optionally only of some products. The structured caption
is the prompt read with the studio vocabulary (:func:`packshot.prompts.describe.fields_from_caption`):
scene words only, never the product. The mask is rebuilt from the photo's cutout (the committed
one, else the automatic one, else cut out again with the job's hints) and the job's own layout;
a row whose rebuilt mask does not match the stored image's size is skipped and reported.
Files are written to a temporary folder next to OUT and moved into place at the end, so an
export that fails leaves nothing half-written.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError


def owner_of(api_key: str | None) -> str:
    """What the store keeps for an API key (its sha256 hex); "" without a key."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest() if api_key else ""


@dataclass
class ExportReport:
    out: Path
    rows: int = 0
    skipped: list[str] = field(default_factory=list)


def _select(store, owner: str, min_rating: int, products: list[str] | None):
    from sqlalchemy import or_, select

    from .store.models import Job, Photo, Product, Result

    cond = [Result.owner == owner, or_(Result.saved.is_(True), Result.rating >= min_rating)]
    if products:
        cond.append(Result.product_id.in_(products))
    with store.read() as s:
        if products:
            known = set(s.scalars(select(Product.id).where(Product.owner == owner, Product.id.in_(products))))
            missing = [p for p in products if p not in known]
            if missing:  # unknown, or another key's: never said which
                raise InvalidInputError(f"no product {missing[0]!r} for this API key")
        q = (select(Result, Job.request, Product.name, Photo)
             .join(Job, Job.id == Result.job_id).join(Product, Product.id == Result.product_id)
             .join(Photo, Photo.id == Result.photo_id)
             .where(*cond).order_by(Result.product_id, Result.created_at, Result.rank))
        return list(s.execute(q).all())


def _cutout(store, settings, photo, request, pipelines: dict):
    """The product cut-out the job used (see jobs.runner.cutout_for), from the store."""
    from .io import load_image
    from .schema import SegmentOptions
    from .types import Cutout, Matte

    base = load_image(store.photo_bytes(photo), max_pixels=settings.max_pixels)
    sha = photo.cutout_sha or photo.auto_cutout_sha
    if request.segment == SegmentOptions() and sha is not None:
        cut = load_image(store.blobs.get(sha), max_pixels=settings.max_pixels)
        if cut.size == base.size and cut.alpha is not None:
            return Cutout(photo=base, matte=Matte(alpha=cut.alpha, engine="stored", foreground=cut.rgb))
    if "p" not in pipelines:
        from .pipeline import Pipeline
        pipelines["p"] = Pipeline(settings)
    return pipelines["p"].cutout(base, request.segment)


def _mask(store, settings, photo, request, cache: dict, pipelines: dict) -> np.ndarray:
    from .layout import place, plan

    key = (photo.id, json.dumps(request.segment.model_dump(mode="json"), sort_keys=True))
    if key not in cache:
        cache.clear()  # one photo at a time (rows are ordered by product)
        cache[key] = _cutout(store, settings, photo, request, pipelines)
    cut = cache[key]
    layer = place(cut, plan(cut, request, settings.max_output_side))
    return np.round(np.clip(layer.alpha, 0, 1) * 255).astype(np.uint8)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def _row(result, req_json: dict[str, Any], product_name: str, mask_png: bytes, folder: Path,
         image: bytes) -> dict[str, Any]:
    from .prompts import FIELDS
    from .prompts.describe import fields_from_caption

    fields = {f: fields_from_caption(result.prompt).get(f, "") for f in FIELDS}
    (folder / "image.png").write_bytes(image)
    (folder / "mask.png").write_bytes(mask_png)
    caption = {"fields": fields, "prompt": result.prompt, "rating": result.rating, "saved": bool(result.saved),
               "seed": int(result.seed), "product_id": result.product_id, "product_name": product_name,
               "result_id": result.id, "engine": result.engine, "parameters": result.parameters,
               "request": {k: v for k, v in req_json.items() if k != "segment"}}
    (folder / "caption.json").write_text(json.dumps(caption, indent=2, sort_keys=True), encoding="utf-8")
    return {"file_name": f"{folder.name}/image.png", "mask_file_name": f"{folder.name}/mask.png",
            "text": result.prompt, **fields, "rating": result.rating, "saved": bool(result.saved),
            "seed": int(result.seed), "product_id": result.product_id, "result_id": result.id}


def export(store, out: str | Path, *, owner: str = "", min_rating: int = 4, products: list[str] | None = None,
           settings=None) -> ExportReport:
    """Write the training set (see the module docstring). ``out`` must not exist or be empty."""
    from PIL import Image

    from .schema import GenerateRequest, build

    settings = settings or store.settings
    if not 1 <= int(min_rating) <= 5:
        raise InvalidInputError(f"min rating must be 1..5, got {min_rating!r}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(f"output {str(out)!r} exists and is not an empty folder")
    rows = _select(store, owner, int(min_rating), products)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    report = ExportReport(out=out)
    try:
        lines, cache, pipelines = [], {}, {}
        for result, req_json, product_name, photo in rows:
            request = build(GenerateRequest, req_json)
            image = store.blobs.get(result.blob_sha)
            mask = _mask(store, settings, photo, request, cache, pipelines)
            size = Image.open(io.BytesIO(image)).size
            if (mask.shape[1], mask.shape[0]) != size:
                report.skipped.append(f"{result.id}: rebuilt mask {mask.shape[1]}x{mask.shape[0]} != image "
                                      f"{size[0]}x{size[1]}")
                continue
            folder = tmp / result.id
            folder.mkdir()
            lines.append(_row(result, req_json, product_name, _png(mask), folder, image))
        with open(tmp / "metadata.jsonl", "w", encoding="utf-8") as f:
            for line in lines:
                f.write(json.dumps(line, sort_keys=True) + "\n")
        report.rows = len(lines)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report
