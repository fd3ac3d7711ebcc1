"""Results: images, ratings, saved flags, delete; each product's history."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ..deps import OwnerDep, StoreDep
from ..schemas import ERRORS, RatingUpdate, ResultPublic, ResultsPublic, SavedUpdate

router = APIRouter(tags=["results"], responses=ERRORS)

MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXT = {"png": "png", "jpeg": "jpg", "webp": "webp"}


@router.get("/results/{result_id}", response_model=ResultPublic)
def get_result(result_id: str, store: StoreDep, owner: OwnerDep) -> ResultPublic:
    return ResultPublic.of(store.get_result(owner, result_id))


@router.get("/results/{result_id}/image", response_class=Response,
            responses={200: {"content": {m: {} for m in MEDIA.values()}}})
def result_image(result_id: str, store: StoreDep, owner: OwnerDep,
                 fmt: Annotated[Literal["png", "jpeg", "webp"] | None,
                                Query(alias="format", description="Default: the job's output_format.")] = None
                 ) -> Response:
    """The image with its generation parameters (PNG text chunk ``parameters`` / EXIF UserComment
    for JPEG and WebP) and an IPTC DigitalSourceType."""
    r = store.get_result(owner, result_id)
    fmt = fmt or r.output_format
    data = store.blobs.get(r.blob_sha)  # the lossless PNG master
    if fmt != "png":
        data = _reencode(data, fmt, r)
    return Response(data, media_type=MEDIA[fmt], headers={
        "Cache-Control": "private, max-age=31536000, immutable",
        "Content-Disposition": f'inline; filename="packshot-{r.id[:12]}-{r.rank}.{EXT[fmt]}"'})


def _reencode(png: bytes, fmt: str, r) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    from ...io import SOURCE_TYPE_SYNTHETIC, SOURCE_TYPE_TRAINED, encode_image, format_parameters

    with Image.open(io.BytesIO(png)) as im:
        rgb = np.asarray(im.convert("RGB"))
    return encode_image(rgb, fmt, parameters=format_parameters(r.prompt, r.parameters),
                        source_type=SOURCE_TYPE_TRAINED if r.generated else SOURCE_TYPE_SYNTHETIC)


@router.put("/results/{result_id}/rating", response_model=ResultPublic)
def rate_result(result_id: str, body: RatingUpdate, store: StoreDep, owner: OwnerDep) -> ResultPublic:
    return ResultPublic.of(store.update_result(owner, result_id, rating=body.stars))


@router.put("/results/{result_id}/saved", response_model=ResultPublic)
def save_result(result_id: str, body: SavedUpdate, store: StoreDep, owner: OwnerDep) -> ResultPublic:
    return ResultPublic.of(store.update_result(owner, result_id, saved=body.saved))


@router.delete("/results/{result_id}", status_code=204, response_class=Response)
def delete_result(result_id: str, store: StoreDep, owner: OwnerDep) -> Response:
    store.delete_result(owner, result_id)
    return Response(status_code=204)


@router.get("/products/{product_id}/history", response_model=ResultsPublic, tags=["products"])
def history(product_id: str, store: StoreDep, owner: OwnerDep, saved: bool | None = None,
            min_rating: Annotated[int | None, Query(ge=1, le=5)] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 200,
            offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> ResultsPublic:
    """The product's results, newest first (best first within a job)."""
    items, count = store.history(owner, product_id, saved=saved, min_rating=min_rating, limit=limit,
                                 offset=offset)
    return ResultsPublic(items=[ResultPublic.of(r) for r in items], count=count)
