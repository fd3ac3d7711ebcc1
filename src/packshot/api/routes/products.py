"""Products, their photos, and interactive cutouts."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from ...errors import ImageTooLargeError, InvalidInputError, NoProductFoundError
from ...redact import redact
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
        uploads.append(await run_in_threadpool(_decode, data, settings.max_pixels, i + 1, state.decode_budget))
    product = await run_in_threadpool(state.store.create_product, owner, name, uploads)
    return ProductPublic.of(product)


def _decode(data: bytes, max_pixels: int, n: int, budget=None, name: str | None = None) -> PhotoUpload:
    """Decode an upload once, under the server's decode budget (raises ImageLoadError 400 /
    ImageTooLargeError 413, naming it; DecodeBusyError 503): its size and its working copy."""
    from ...io import normalise_upload

    up = normalise_upload(data, max_pixels=max_pixels, name=name or f"photo {n}", budget=budget)
    fmt = up.format or "x"
    return PhotoUpload(data=data, media_type=WEB_TYPES.get(fmt, f"image/{fmt.lower()}"), width=up.width,
                       height=up.height, work=up.work)


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
    running = _running_jobs(state, owner, product_id)
    for job_id in running:
        state.queue.cancel(job_id)
    stop_jobs(state, running)  # their partial outputs are gone before we answer
    from ...store.adapters import product_adapters, remove_folder
    adapters = product_adapters(state.store, owner, product_id)  # trained adapters' folders go too
    state.store.delete_product(owner, product_id)
    for row in adapters:
        remove_folder(state.settings, row)
    if state.cutouts is not None:
        for p in product.photos:
            state.cutouts.forget_photo(p.id)
    return Response(status_code=204)


def stop_jobs(state, job_ids: list[str], timeout_s: float = 15.0) -> None:
    """Wait (bounded) until these jobs no longer run in this process, or, run elsewhere, are no
    longer marked running: a cancelled job removes its partial outputs as it stops."""
    import time

    deadline = time.monotonic() + timeout_s
    runner = getattr(state.queue, "runner", None)
    pending = set(job_ids)
    while pending and time.monotonic() < deadline:
        if runner is not None:
            pending &= set(runner.active())
        else:
            pending = {j for j in pending if _status(state.store, j) == "running"}
        if pending:
            time.sleep(0.02)


def _status(store, job_id: str) -> str:
    from ...errors import NotFoundError
    try:
        return store.get_job(None, job_id).status
    except NotFoundError:
        return "deleted"


def _running_jobs(state, owner: str, product_id: str) -> list[str]:
    jobs, _ = state.store.list_jobs(owner, product_id=product_id, status="running", limit=1000)
    return [j.id for j in jobs]


# -- photos -----------------------------------------------------------------------------------
@router.get("/photos/{photo_id}/image", response_class=Response, responses=IMAGE_RESPONSES)
def photo_image(photo_id: str, state: StateDep, owner: OwnerDep) -> Response:
    """The photo as uploaded; formats a browser cannot show (TIFF, BMP, float, 16-bit, CMYK) are
    sent as their PNG working copy, made once at upload: nothing is decoded here."""
    store = state.store
    photo = store.get_photo(owner, photo_id)
    if photo.media_type in WEB_TYPES.values():
        data, media_type = store.blobs.get(photo.blob_sha), photo.media_type
    else:
        data, media_type = store.blobs.get_work(photo.blob_sha), "image/png"
        if data is None:  # a photo stored before working copies existed: make it once
            data = _decode(store.blobs.get(photo.blob_sha), state.settings.max_pixels, 1, state.decode_budget).work
            if data is None:
                data, media_type = store.blobs.get(photo.blob_sha), photo.media_type
            else:
                store.blobs.put_work(photo.blob_sha, data)
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=86400"})


def _load_photo(state, photo):
    from ...io import load_image
    return load_image(state.store.photo_bytes(photo), max_pixels=state.settings.max_pixels,
                      budget=state.decode_budget)


def _hints(body: CutoutHints, w: int, h: int) -> Hints:
    """Client coordinates (original photo pixels, may be fractional) -> checked integer Hints.
    Out-of-photo values are refused (422 naming them), never clamped: the same rule as jobs."""
    def pt(p):
        x, y = int(p[0]), int(p[1])
        if not (0 <= p[0] < w and 0 <= p[1] < h):
            raise InvalidInputError(f"point {p[0]:g},{p[1]:g} is outside the {w}x{h} photo")
        return x, y

    boxes = []
    for b in body.boxes:
        x0, y0, x1, y1 = (int(round(v)) for v in b)
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            raise InvalidInputError(f"box {','.join(f'{v:g}' for v in b)} is outside the {w}x{h} photo")
        if x1 <= x0 or y1 <= y0:
            raise InvalidInputError(f"box {','.join(f'{v:g}' for v in b)} must have x1 > x0 and y1 > y0")
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
        headers["X-Cutout-Note"] = redact(note, state.settings).encode("ascii", "replace").decode()[:200]
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
    if matte.confidence is None:
        from ...segment.confidence import with_confidence
        matte = with_confidence(matte, boxed=bool(hints.boxes))
    return CutoutPublic(photo_id=photo_id, bbox=bbox, engine=matte.engine, cutout_url=photo_cutout_url(photo_id),
                        confidence=matte.confidence, reasons=list(matte.reasons))


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
