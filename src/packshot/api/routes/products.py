"""Products, their photos, and interactive cutouts."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from ...errors import ImageTooLargeError, InvalidInputError, NoProductFoundError
from ...store import PhotoUpload
from ...types import Hints
from ..cutouts import as_alpha, cutout_png, mask_png
from ..deps import OwnerDep, StateDep, StoreDep
from ..schemas import ERRORS, CutoutHints, CutoutPublic, ProductPublic, ProductsPublic, photo_cutout_url

router = APIRouter(tags=["products"], responses=ERRORS)

MAX_PHOTOS = 20
WEB_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
IMAGE_RESPONSES = {200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}}
PNG_RESPONSES = {200: {"content": {"image/png": {}}}}


@router.post("/products", status_code=201, response_model=ProductPublic)
async def create_product(
        state: StateDep, owner: OwnerDep,
        name: Annotated[str, Form(min_length=1, max_length=200, description="Product name.")],
        photo: Annotated[list[UploadFile], File(description="One or more photos (JPEG, PNG, WebP, TIFF, BMP).")],
) -> ProductPublic:
    """Create a product from one or more photos. Each is decoded and checked (size, pixels)."""
    settings = state.settings
    if len(photo) > MAX_PHOTOS:
        raise InvalidInputError(f"{len(photo)} photos: a product takes at most {MAX_PHOTOS}")
    uploads = []
    for i, f in enumerate(photo):
        data = await f.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise ImageTooLargeError(f"photo {i + 1} is over the upload limit of {settings.max_upload_bytes} bytes")
        uploads.append(await run_in_threadpool(_decode, data, settings.max_pixels, i + 1))
    product = await run_in_threadpool(state.store.create_product, owner, name, uploads)
    return ProductPublic.of(product)


def _decode(data: bytes, max_pixels: int, n: int) -> PhotoUpload:
    """Check an upload decodes (raises ImageLoadError 400 / ImageTooLargeError 413, naming it)."""
    from ...errors import ImageLoadError
    from ...io import load_image

    try:
        photo = load_image(data, max_pixels=max_pixels)
    except ImageLoadError as e:  # say which upload; the client's file name is never used
        raise type(e)(str(e).replace("<upload>", f"photo {n}")) from None
    w, h = photo.size
    return PhotoUpload(data=data, media_type=WEB_TYPES.get(photo.format or "", f"image/{(photo.format or 'x').lower()}"),
                       width=w, height=h)


@router.get("/products", response_model=ProductsPublic)
def list_products(store: StoreDep, owner: OwnerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> ProductsPublic:
    items, count = store.list_products(owner, limit, offset)
    return ProductsPublic(items=[ProductPublic.of(p) for p in items], count=count)


@router.get("/products/{product_id}", response_model=ProductPublic)
def get_product(product_id: str, store: StoreDep, owner: OwnerDep) -> ProductPublic:
    return ProductPublic.of(store.get_product(owner, product_id))


@router.delete("/products/{product_id}", status_code=204, response_class=Response)
def delete_product(product_id: str, state: StateDep, owner: OwnerDep) -> Response:
    """Delete a product, its photos, jobs and results; blobs no one else uses are removed."""
    product = state.store.get_product(owner, product_id)
    for job_id in _running_jobs(state, owner, product_id):
        state.queue.cancel(job_id)
    state.store.delete_product(owner, product_id)
    if state.cutouts is not None:
        for p in product.photos:
            state.cutouts.forget_photo(p.id)
    return Response(status_code=204)


def _running_jobs(state, owner: str, product_id: str) -> list[str]:
    jobs, _ = state.store.list_jobs(owner, product_id=product_id, status="running", limit=1000)
    return [j.id for j in jobs]


# -- photos -----------------------------------------------------------------------------------
@router.get("/photos/{photo_id}/image", response_class=Response, responses=IMAGE_RESPONSES)
def photo_image(photo_id: str, store: StoreDep, owner: OwnerDep) -> Response:
    """The photo as uploaded (formats a browser cannot show are sent as PNG)."""
    photo = store.get_photo(owner, photo_id)
    data, media_type = store.blobs.get(photo.blob_sha), photo.media_type
    if media_type not in WEB_TYPES.values():
        from ...io import encode_image, load_image
        data, media_type = encode_image(load_image(data).rgb, "png"), "image/png"
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=86400"})


def _load_photo(state, photo):
    from ...io import load_image
    return load_image(state.store.blobs.get(photo.blob_sha), max_pixels=state.settings.max_pixels)


def _hints(body: CutoutHints, w: int, h: int) -> Hints:
    """Client coordinates (original photo pixels, may be fractional) -> checked integer Hints."""
    def pt(p):
        x, y = int(p[0]), int(p[1])
        if not (0 <= p[0] < w and 0 <= p[1] < h):
            raise InvalidInputError(f"point {p[0]:g},{p[1]:g} is outside the {w}x{h} photo")
        return x, y

    boxes = []
    for b in body.boxes:
        x0, y0, x1, y1 = (int(round(v)) for v in b)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            raise InvalidInputError(f"box {','.join(f'{v:g}' for v in b)} has no area inside the {w}x{h} photo")
        boxes.append((x0, y0, x1, y1))
    return Hints(points=tuple(pt(p) for p in body.points), neg_points=tuple(pt(p) for p in body.neg_points),
                 boxes=tuple(boxes))


def _session(state, owner: str, photo_id: str, engine: str):
    photo = state.store.get_photo(owner, photo_id)
    engine = state.cutouts.resolve_engine(engine)
    entry = state.cutouts.get(owner, photo_id, engine, lambda: _load_photo(state, photo))
    return photo, engine, entry


@router.post("/photos/{photo_id}/cutout/preview", response_class=Response, responses=PNG_RESPONSES)
def cutout_preview(photo_id: str, body: CutoutHints, state: StateDep, owner: OwnerDep) -> Response:
    """Mask preview for the clicks so far: an 8-bit greyscale PNG at preview resolution (same aspect
    as the photo). Coordinates are ORIGINAL photo pixels; send the whole click list every time."""
    photo, engine, entry = _session(state, owner, photo_id, body.engine)
    hints = _hints(body, photo.width, photo.height)
    note = ""
    with entry.lock:
        try:
            alpha = as_alpha(entry.session.preview(hints))
        except NoProductFoundError as e:  # nothing found yet: an empty mask is a valid preview
            import numpy as np
            from ..cutouts import PREVIEW_SIDE
            s = min(1.0, PREVIEW_SIDE / max(photo.width, photo.height))
            alpha = np.zeros((max(1, round(photo.height * s)), max(1, round(photo.width * s))), np.float32)
            note = e.message
    h, w = alpha.shape
    headers = {"X-Mask-Width": str(w), "X-Mask-Height": str(h), "X-Photo-Width": str(photo.width),
               "X-Photo-Height": str(photo.height), "X-Cutout-Engine": engine, "Cache-Control": "no-store"}
    if note:
        headers["X-Cutout-Note"] = note.encode("ascii", "replace").decode()[:200]
    return Response(mask_png(alpha), media_type="image/png", headers=headers)


@router.put("/photos/{photo_id}/cutout", response_model=CutoutPublic)
def commit_cutout(photo_id: str, body: CutoutHints, state: StateDep, owner: OwnerDep) -> CutoutPublic:
    """Cut out at full resolution with these hints and keep it: later jobs on this photo use it."""
    photo, engine, entry = _session(state, owner, photo_id, body.engine)
    hints = _hints(body, photo.width, photo.height)
    with entry.lock:
        matte = entry.session.commit(hints)
    data, bbox = cutout_png(entry.photo, matte)
    state.store.set_cutout(owner, photo_id, data, matte.engine, bbox)
    return CutoutPublic(photo_id=photo_id, bbox=bbox, engine=matte.engine, cutout_url=photo_cutout_url(photo_id))


@router.get("/photos/{photo_id}/cutout.png", response_class=Response, responses=PNG_RESPONSES)
def cutout_image(photo_id: str, state: StateDep, owner: OwnerDep) -> Response:
    """RGBA PNG of the committed cutout, or of the automatic one (computed once) if none was."""
    photo = state.store.get_photo(owner, photo_id)
    sha = photo.cutout_sha or photo.auto_cutout_sha
    if sha is None:
        cut = state.pipeline.cutout(_load_photo(state, photo))
        data, _ = cutout_png(cut.photo, cut.matte)
        sha = state.store.set_auto_cutout(photo.id, data)
    return Response(state.store.blobs.get(sha), media_type="image/png", headers={"Cache-Control": "no-cache"})
