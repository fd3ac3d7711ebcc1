"""Worker routes for blobs: the inputs a remote worker downloads and the results it uploads.

Split out of :mod:`packshot.api.routes.workers` (which includes this router); the worker-key
dependency lives here so both modules share it without an import cycle.

A worker may download only the inputs of a **running** job: its photo (or working copy) and
cut-outs, and, when it names the job (``?job=<id>``), that job's uploaded background photo and the
bundles of that job's trained adapters (:func:`packshot.store.adapters.adapter_bundle`: a tar of
the adapter folder without its checkpoints, put in the blob store by content hash on first claim).

Uploads are resumable, in the manner of the tus protocol: ``GET /worker/uploads/{sha}?size=N``
says how many bytes the server already has (``offset``; ``size`` when the blob exists), ``PATCH``
with ``Upload-Offset: k`` appends one chunk. A chunk is kept only once it arrived whole, so after a
dropped connection the worker asks for the offset and sends the rest. The last chunk verifies the
sha256 and puts the blob in the store atomically. Partial uploads live in ``<data_dir>/uploads``.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path as PathParam, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInputError, NotFoundError, PackshotError
from ..deps import StateDep
from ..schemas import ERRORS

router = APIRouter(tags=["workers"], responses=ERRORS)   # /api/v1/worker/...: worker keys only

SHA = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$", description="sha256 hex of the blob")]
_PARTIAL_MAX_AGE_S = 24 * 3600.0
MAX_CHUNK = 16 * 1024 * 1024


class WorkerAuthError(PackshotError):
    http_status = 401


class Conflict(PackshotError):
    http_status = 409


async def worker_key(request: Request, state: StateDep,
                     x_worker_key: Annotated[str | None, Header(include_in_schema=False)] = None):
    """The caller's live worker key row, else 401."""
    if not x_worker_key:
        has_api_key = "x-api-key" in request.headers or "authorization" in request.headers
        raise WorkerAuthError("worker routes need a worker key in X-Worker-Key"
                              + (" (an API key is not valid here)" if has_api_key else ""))
    row = await run_in_threadpool(_registry(state).check_key, x_worker_key.strip())
    if row is None:
        raise WorkerAuthError("invalid or revoked worker key")
    return row


WorkerKeyDep = Annotated[Any, Depends(worker_key)]


def _registry(state):
    reg = getattr(state, "_workers", None)
    if reg is None:
        from ...store.workers import WorkerRegistry
        reg = state._workers = WorkerRegistry(state.store)
    return reg


def job_inputs(store, job) -> dict[str, Any]:
    """What a remote worker needs beyond the photo to run ``job``: its uploaded background
    (``{"id", "blob_sha"}``) and its adapters (``[{"id", "sha", "weight"}]``, each a bundle in the
    blob store). An adapter that is not this owner's or not done -> InvalidInputError naming it."""
    from ...schema import parse_adapter
    from ...store.adapters import adapter_bundle, get_adapter
    from ...store.backgrounds import get_background

    req = job.request or {}
    out: dict[str, Any] = {"background": None, "adapters": []}
    if getattr(job, "kind", "generate") == "train":
        out["training"] = training_inputs(store, job)
        return out
    if req.get("background_id"):
        bg = get_background(store, job.owner, req["background_id"])
        out["background"] = {"id": bg.id, "blob_sha": bg.blob_sha}
    for text in req.get("adapters") or ():
        ref, weight = parse_adapter(text)
        try:
            row = get_adapter(store, job.owner, ref)
        except NotFoundError:
            raise InvalidInputError(f"adapter {ref!r} not found (deleted since the job was queued?)") from None
        if row.status != "done":
            raise InvalidInputError(f"adapter {ref!r} is {row.status}: only a finished adapter can be used")
        out["adapters"].append({"id": row.id, "sha": adapter_bundle(store, row), "weight": weight})
    return out


def training_inputs(store, job) -> dict[str, Any]:
    """A training job's photos (with their cut-outs) and its newest uploaded checkpoint (a bundle put
    in the blob store; ``None`` before the first one)."""
    from ...store.adapters import checkpoint_blob, get_adapter

    row = get_adapter(store, None, job.id)
    photos = []
    for pid in row.photo_ids:
        ph = store.photo_by_id(pid)
        if ph is None:
            raise NotFoundError(f"photo {pid!r} of training job {job.id} was deleted")
        photos.append({"id": ph.id, "blob_sha": ph.blob_sha, "width": ph.width, "height": ph.height,
                       "cutout_sha": ph.cutout_sha, "cutout_engine": ph.cutout_engine,
                       "auto_cutout_sha": ph.auto_cutout_sha})
    return {"total": row.total, "photos": photos, "checkpoint": checkpoint_blob(store, row)}


def _job_may_read(store, job_id: str, sha: str) -> bool:
    """``sha`` is the background or an adapter bundle of running job ``job_id``."""
    from ...store import RUNNING

    try:
        job = store.get_job(None, job_id)
        if job.status != RUNNING:
            return False
        extra = job_inputs(store, job)
    except (NotFoundError, InvalidInputError):
        return False
    shas = {a["sha"] for a in extra["adapters"]}
    if extra["background"]:
        shas.add(extra["background"]["blob_sha"])
    train = extra.get("training")
    if train:
        shas.update(p[k] for p in train["photos"] for k in ("blob_sha", "cutout_sha", "auto_cutout_sha") if p[k])
        if train["checkpoint"]:
            shas.add(train["checkpoint"]["sha"])
    return sha in shas


# -- blobs ----------------------------------------------------------------------------------------
@router.get("/worker/blobs/{sha}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def get_blob(sha: SHA, state: StateDep, key: WorkerKeyDep,
             work: Annotated[bool, Query(description="the photo's normalised working copy")] = False,
             job: Annotated[str | None, Query(pattern=r"^[0-9a-f]{32}$", description=(
                 "the running job asking: its background photo and adapter bundles are served too"))] = None
             ) -> Response:
    """An input of a running job: its photo (or working copy) or the photo's cutout; with ``job``,
    that job's background photo and adapter bundles. Other blobs are not served to workers."""
    from sqlalchemy import or_, select

    from ...store import RUNNING, Job, Photo

    store = state.store
    with store.read() as s:
        found = s.scalar(select(Photo.id).join(Job, Job.photo_id == Photo.id).where(
            Job.status == RUNNING,
            or_(Photo.blob_sha == sha, Photo.cutout_sha == sha, Photo.auto_cutout_sha == sha)).limit(1))
    if found is None and not (job and _job_may_read(store, job, sha)):
        raise NotFoundError(f"blob {sha} is not an input of a running job")
    data = store.blobs.get_work(sha) if work and hasattr(store.blobs, "get_work") else store.blobs.get(sha)
    if data is None:
        raise NotFoundError(f"blob {sha} has no working copy")
    return Response(data, media_type="application/octet-stream")


class CollectIn(BaseModel):
    shas: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(max_length=1000)


class CollectOut(BaseModel):
    removed: int


@router.post("/worker/blobs/collect", response_model=CollectOut)
def collect(body: CollectIn, state: StateDep, key: WorkerKeyDep) -> CollectOut:
    """Remove, among ``shas``, the blobs no row refers to (a cancelled job's partial outputs)."""
    return CollectOut(removed=state.store.collect_garbage(body.shas))


# -- resumable uploads ----------------------------------------------------------------------------
class UploadState(BaseModel):
    sha: str
    offset: int
    size: int
    complete: bool


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_swept: set[str] = set()


def _lock(sha: str) -> threading.Lock:
    with _locks_guard:
        if len(_locks) > 10_000:
            for k in [k for k, v in _locks.items() if not v.locked()]:
                del _locks[k]
        return _locks.setdefault(sha, threading.Lock())


def _uploads_dir(settings) -> Path:
    d = Path(settings.data_dir) / "uploads"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    if str(d) not in _swept:  # once per process: partial uploads abandoned for a day
        _swept.add(str(d))
        now = time.time()
        for p in d.glob("*.part"):
            try:
                if now - p.stat().st_mtime > _PARTIAL_MAX_AGE_S:
                    p.unlink()
            except FileNotFoundError:
                pass
    return d


def _max_size(settings) -> int:
    """Largest upload: an RGBA image at the pixel limit, uncompressed, plus headers; or an adapter or
    checkpoint bundle of remote training (2 GiB: LoRA checkpoints are MBs, full fine-tunes are not
    trained remotely this way)."""
    return max(settings.max_pixels * 4 + 1024 * 1024, 2 * 1024**3)


def _check_size(size: int, settings) -> None:
    if not 0 < size <= _max_size(settings):
        raise InvalidInputError(f"upload size {size} is not in 1..{_max_size(settings)} bytes")


def _offset(state, sha: str, size: int) -> UploadState:
    if state.store.blobs.exists(sha):
        return UploadState(sha=sha, offset=size, size=size, complete=True)
    part = _uploads_dir(state.settings) / f"{sha}.part"
    try:
        n = part.stat().st_size
    except FileNotFoundError:
        n = 0
    if n > size:  # a different size was announced before: start again
        part.unlink(missing_ok=True)
        n = 0
    return UploadState(sha=sha, offset=n, size=size, complete=False)


@router.get("/worker/uploads/{sha}", response_model=UploadState)
def upload_offset(sha: SHA, state: StateDep, key: WorkerKeyDep,
                  size: Annotated[int, Query(ge=1, description="total size of the blob in bytes")]) -> UploadState:
    """How many bytes of blob ``sha`` the server has: resume from ``offset``."""
    _check_size(size, state.settings)
    return _offset(state, sha, size)


@router.patch("/worker/uploads/{sha}", response_model=UploadState)
async def upload_chunk(sha: SHA, request: Request, state: StateDep, key: WorkerKeyDep,
                       upload_offset: Annotated[int, Header(ge=0)],
                       upload_length: Annotated[int, Header(ge=1)]) -> UploadState:
    """Append one chunk at ``Upload-Offset`` of a blob of ``Upload-Length`` bytes. A chunk cut
    short by a dropped connection is not kept. 409 with the server's offset if they differ."""
    _check_size(upload_length, state.settings)
    from starlette.requests import ClientDisconnect

    chunk = bytearray()
    try:
        async for part in request.stream():  # bounded: the guard middleware does not see these routes
            chunk += part
            if len(chunk) > MAX_CHUNK:
                raise InvalidInputError(f"an upload chunk may be at most {MAX_CHUNK} bytes")
    except ClientDisconnect:  # the connection dropped mid-chunk: nothing kept, the worker resumes
        raise InvalidInputError(f"upload of {sha}: the connection dropped mid-chunk; nothing kept") from None
    chunk = bytes(chunk)
    if upload_offset + len(chunk) > upload_length:
        raise InvalidInputError(f"chunk at {upload_offset} of {len(chunk)} bytes runs past Upload-Length "
                                f"{upload_length}")
    return await run_in_threadpool(_append, state, sha, upload_offset, upload_length, chunk)


def _append(state, sha: str, offset: int, size: int, chunk: bytes) -> UploadState:
    with _lock(sha):
        cur = _offset(state, sha, size)
        if cur.complete:
            return cur
        if cur.offset != offset:
            raise Conflict(f"upload of {sha} is at offset {cur.offset}, not {offset}")
        part = _uploads_dir(state.settings) / f"{sha}.part"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        offset += len(chunk)
        if offset < size:
            return UploadState(sha=sha, offset=offset, size=size, complete=False)
        data = part.read_bytes()
        part.unlink(missing_ok=True)
        if hashlib.sha256(data).hexdigest() != sha:
            raise InvalidInputError(f"the {size} bytes uploaded for {sha} do not match that sha256; send them again")
        state.store.blobs.put(data)
        return UploadState(sha=sha, offset=size, size=size, complete=True)
