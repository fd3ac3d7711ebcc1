"""Generation jobs: submit (202), poll, stream progress (SSE), cancel."""
from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInputError
from ...store import FINISHED
from ..deps import OwnerDep, StateDep, StoreDep
from ..sse import SSE_RESPONSES, poll_events
from ..schemas import ERRORS, JobCreate, JobPublic, JobsPublic, JobStatus

router = APIRouter(tags=["jobs"], responses=ERRORS)

# a model reference from a client: a registry id, or a Hub-style "org/name" (looked up in the
# server's model dir and HF cache); never a filesystem path of the server's choosing
_MODEL_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


def _check_request(req: JobCreate, photo_size: tuple[int, int], settings, background=None, adapters=None):
    """Everything that can be checked before queueing, so a bad job fails now (4xx naming the
    value), not later: the library's own check (:func:`packshot.resolve.check_inputs`: engine,
    preset, hints, the engine's check of weights, model kind, mode and reference), then what only
    the API refuses (server paths, canvases over the limits). Returns the Resolved request."""
    from ...resolve import check_inputs

    if req.reference_image is not None:
        raise InvalidInputError("reference_image names a file on the server and is not accepted over the API")
    if getattr(req, "background", None) is not None:
        raise InvalidInputError("background names a file on the server and is not accepted over the API; upload "
                                "the photo with POST /api/v1/backgrounds and give its background_id")
    for name, value in (("model", req.model), ("controlnet", req.controlnet), ("ip_adapter", req.ip_adapter),
                        ("segment.model", req.segment.model), ("upscaler", req.upscaler)):
        if value is not None and (not _MODEL_REF.match(value) or ".." in value):
            raise InvalidInputError(f"{name} {value!r} must be a model id (see GET /api/v1/models) or an "
                                    "org/name Hub id present on the server")
    given = req.generate_request()
    if background is not None:  # the uploaded background (background_id), decoded: it may set the canvas
        given = given.model_copy(update={"background": background})
    if adapters is not None:  # the key's trained adapters (ids), checked as their folders
        given = given.model_copy(update={"adapters": adapters})
    resolved = check_inputs(given, photo_size=photo_size, settings=settings)
    w, h = resolved.canvas_size or photo_size
    if max(w, h) > settings.max_output_side:  # keep_framing takes the photo's size: bounded here too
        raise InvalidInputError(f"canvas {w}x{h} is larger than the limit of {settings.max_output_side} px per "
                                "side" + (" (keep_framing keeps the photo's size)" if req.keep_framing else ""))
    n = resolved.request.n
    if n * w * h > settings.max_job_pixels:
        raise InvalidInputError(f"n={n} candidates of {w}x{h} make {n * w * h} pixels, over the per-job limit "
                                f"of {settings.max_job_pixels}; ask for fewer or smaller candidates")
    return resolved


def _submit(state, owner: str, body: JobCreate) -> JobPublic:
    photo = state.store.job_photo(owner, body.product_id, body.photo_id)
    if body.look:  # this key's saved look, under the fields the body gives (packshot.looks)
        from ...looks import DbLooks, resolve_request
        from ...schema import GenerateRequest
        ids = {"product_id": body.product_id, "photo_id": body.photo_id, "background_id": body.background_id}
        given = GenerateRequest.model_validate(body.model_dump(include=body.model_fields_set - set(ids)))
        resolved = resolve_request(given, DbLooks(state.store, owner)).model_dump()
        body = JobCreate.model_validate({**resolved, **ids})
    background = None
    if body.background_id is not None:  # this key's upload (404 naming it otherwise), decoded once to check
        from ...store.backgrounds import background_photo
        background = background_photo(state.store, owner, body.background_id, state.settings.max_pixels,
                                      state.decode_budget)
    folders = None
    if body.adapters:  # this key's finished adapters by id (store/adapters.py; 422 naming a bad one)
        from ...store.adapters import resolve_adapter_refs
        folders = resolve_adapter_refs(state.store, owner, body.adapters)
    resolved = _check_request(body, (photo.width, photo.height), state.settings, background, folders)
    # the seed is fixed now (drawn once, by check_inputs): a job that runs again makes the same images;
    # adapters stay ids (the runner finds their folders; clients never see server paths)
    request = resolved.request.model_copy(update={"background": None, "adapters": list(body.adapters)}
                                          ).model_dump(mode="json")
    if body.background_id is not None:  # the runner reads it from the blob store (jobs.runner)
        request["background_id"] = body.background_id
    job = state.store.create_job(owner, body.product_id, photo.id, request)
    state.queue.submit(job.id)
    return JobPublic.of(job)


@router.post("/jobs", status_code=202, response_model=JobPublic)
def create_job(body: JobCreate, state: StateDep, owner: OwnerDep) -> JobPublic:
    """Queue a generation job for a product photo. The body is every GenerateRequest field plus
    ``product_id`` (and ``photo_id``, default: the product's first photo)."""
    return _submit(state, owner, body)


@router.get("/jobs", response_model=JobsPublic)
def list_jobs(store: StoreDep, owner: OwnerDep, product_id: Annotated[str | None, Query(max_length=64)] = None,
              status: JobStatus | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> JobsPublic:
    """Jobs, newest first."""
    if product_id is not None:
        store.get_product(owner, product_id)  # 404 for unknown / another key's product
    items, count = store.list_jobs(owner, product_id=product_id, status=status, limit=limit, offset=offset,
                                   kind="generate")  # training jobs: GET /api/v1/products/{id}/adapters
    return JobsPublic(items=[JobPublic.of(j) for j in items], count=count)


@router.get("/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: str, store: StoreDep, owner: OwnerDep) -> JobPublic:
    return JobPublic.of(store.get_job(owner, job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: str, state: StateDep, owner: OwnerDep) -> JobPublic:
    """Cancel: a queued job at once; a running one at its next progress step. A finished job is
    returned unchanged."""
    job = state.store.cancel_job(owner, job_id)
    if job.status == "running":
        from .products import stop_jobs

        state.queue.cancel(job_id)
        stop_jobs(state, [job_id])  # its partial outputs are removed before we answer
        job = state.store.get_job(owner, job_id)
    return JobPublic.of(job)


@router.get("/jobs/{job_id}/events", response_class=StreamingResponse, responses=SSE_RESPONSES)
async def job_events(job_id: str, request: Request, store: StoreDep, owner: OwnerDep) -> StreamingResponse:
    """Server-sent events: `data: <Job JSON>` on every change until the job is finished."""
    job = await run_in_threadpool(store.get_job, owner, job_id)  # 404 before the stream starts
    return poll_events(request, job, lambda: store.get_job(owner, job_id),
                       lambda j: JobPublic.of(j).model_dump_json(), lambda j: j.status in FINISHED,
                       f"job {job_id} was deleted")
