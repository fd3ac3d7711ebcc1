"""Trained adapters of a product (issue 12): train on the product's photos, watch, cancel, delete,
then generate with ``adapters: ["<adapter id>[:weight]"]`` in ``POST /api/v1/jobs``.

Training runs as a job of the queue (``kind = 'train'``, :mod:`packshot.jobs.training`): in-process
with the local queue, on a ``packshot worker`` serving the "gpu" queue with Celery. Everything that
can be refused is refused here, before anything is queued: the photos (3-20 of this product), the
base model (an id present on the server, a diffusers pipeline of a family that trains) and every
TrainRequest field (422, one line naming the value). Another key's adapter is not found (404).
"""
from __future__ import annotations

import json
import random
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInputError
from ...schema import TrainRequest
from ...store import FINISHED
from ...store.adapters import create_training, delete_adapter, get_adapter, list_adapters
from ...store.models import as_utc
from ..deps import OwnerDep, StateDep, StoreDep
from ..schemas import ERRORS
from ..sse import SSE_RESPONSES, poll_events
from .jobs import _MODEL_REF

router = APIRouter(tags=["adapters"], responses=ERRORS)

MIN_PHOTOS, MAX_PHOTOS = 3, 20
AdapterStatus = Annotated[str, Field(description="queued | running | done | failed | cancelled")]


class AdapterCreate(TrainRequest):
    """A training run: every TrainRequest field, plus which of the product's photos to learn from."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"base": "sd15", "method": "lora", "steps": 400, "photo_ids": None}]})

    photo_ids: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, max_length=MAX_PHOTOS, description=f"Photos of the product to train on ({MIN_PHOTOS}-{MAX_PHOTOS}); "
                                                 "default: all of them.")


class AdapterPublic(BaseModel):
    id: str = Field(description="Use it in POST /api/v1/jobs as adapters: [\"<id>\"] or [\"<id>:0.8\"].")
    product_id: str
    name: str
    method: str
    base: str
    status: AdapterStatus
    step: int
    total: int
    loss: float | None
    resumed_from: int | None = Field(description="The checkpoint step a killed or stopped run continued from.")
    attempts: int
    message: str
    error: str | None
    token: str | None = Field(description="The trigger token ('<product>' in prompts stands for it).")
    photo_ids: list[str]
    request: dict[str, Any] = Field(description="The TrainRequest, with the seed that is used.")
    metadata: dict[str, Any] | None = Field(description="The adapter's packshot_adapter.json, once done.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row, settings) -> "AdapterPublic":
        from ...redact import redact

        job = row.job
        meta = json.loads(redact(json.dumps(row.meta), settings)) if row.meta else None
        return cls(id=row.id, product_id=row.product_id, name=row.name, method=row.method, base=row.base,
                   status=row.status, step=row.step, total=row.total, loss=row.loss, resumed_from=row.resumed_from,
                   attempts=job.attempts if job else 0, message=(job.message or "") if job else "",
                   error=job.error if job else "its training job is gone",
                   token=(meta or {}).get("token") or row.request.get("token"), photo_ids=list(row.photo_ids),
                   request=row.request, metadata=meta, created_at=as_utc(row.created_at),
                   updated_at=as_utc(row.updated_at))


class AdaptersPublic(BaseModel):
    items: list[AdapterPublic]
    count: int


def _check_request(request: TrainRequest, settings) -> None:
    """Everything but the photos, before anything is queued (the training library's own plan: base
    model present and a diffusers SD/SDXL pipeline, method options, token, resolution, device), and
    what only the API refuses: a base must be a model id present on the server, never a server path."""
    from ...train.plan import make_plan

    base = request.base
    if not _MODEL_REF.match(base) or ".." in base:
        raise InvalidInputError(f"base {base!r} must be a model id (see GET /api/v1/models) or an org/name Hub id "
                                "present on the server")
    make_plan(request, settings, Path(settings.data_dir) / "adapters" / "check", resume=False)  # writes nothing


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:50]
    return s or "product"


def _default_name(store, owner: str, product, method: str) -> str:
    """``<product>-<method>``, numbered when the product has one of that name already (the generate
    form lists them by name)."""
    taken = {r.name for r in list_adapters(store, owner, product.id)}
    base = f"{_slug(product.name)}-{method}"
    return next(n for n in (base if i == 1 else f"{base}-{i}" for i in range(1, len(taken) + 2)) if n not in taken)


def _create(state, owner: str, product_id: str, body: AdapterCreate) -> AdapterPublic:
    product = state.store.get_product(owner, product_id)  # 404 for unknown / another key's product
    ids = body.photo_ids if body.photo_ids is not None else [p.id for p in product.photos]
    if not MIN_PHOTOS <= len(ids) <= MAX_PHOTOS:
        raise InvalidInputError(f"{len(ids)} photo(s): training takes {MIN_PHOTOS} to {MAX_PHOTOS} photos of the "
                                "product (add photos to it, or choose them with photo_ids)")
    if len(set(ids)) != len(ids):
        raise InvalidInputError("photo_ids names a photo twice")
    fields = body.model_dump(exclude={"photo_ids"})
    fields["name"] = body.name or _default_name(state.store, owner, product, body.method)
    if fields["seed"] is None:  # fixed now: a run that resumes after a crash continues the same run
        fields["seed"] = random.SystemRandom().randrange(2**32)
    train_request = TrainRequest.model_validate(fields)
    _check_request(train_request, state.settings)
    request = train_request.model_dump(mode="json")
    row = create_training(state.store, owner, product_id, list(ids), request, fields["name"])
    state.queue.submit(row.id)
    return AdapterPublic.of(row, state.settings)


@router.post("/products/{product_id}/adapters", status_code=202, response_model=AdapterPublic)
def train_adapter(product_id: str, body: AdapterCreate, state: StateDep, owner: OwnerDep) -> AdapterPublic:
    """Train an adapter (LoRA, DreamBooth-LoRA or textual inversion) on 3-20 of the product's photos,
    as a job of the queue (a GPU worker with Celery). Watch it with GET /api/v1/adapters/{id}/events."""
    return _create(state, owner, product_id, body)


@router.get("/products/{product_id}/adapters", response_model=AdaptersPublic)
def product_adapters(product_id: str, state: StateDep, owner: OwnerDep) -> AdaptersPublic:
    """The product's trained (and training) adapters, newest first."""
    rows = list_adapters(state.store, owner, product_id)
    return AdaptersPublic(items=[AdapterPublic.of(r, state.settings) for r in rows], count=len(rows))


@router.get("/adapters/{adapter_id}", response_model=AdapterPublic)
def read_adapter(adapter_id: str, state: StateDep, owner: OwnerDep) -> AdapterPublic:
    return AdapterPublic.of(get_adapter(state.store, owner, adapter_id), state.settings)


@router.get("/adapters/{adapter_id}/events", response_class=StreamingResponse, responses=SSE_RESPONSES)
async def adapter_events(adapter_id: str, request: Request, state: StateDep, store: StoreDep,
                         owner: OwnerDep) -> StreamingResponse:
    """Server-sent events: `data: <Adapter JSON>` (step, total, loss, status) on every change until
    the training is finished."""
    row = await run_in_threadpool(get_adapter, store, owner, adapter_id)  # 404 before the stream starts
    return poll_events(request, row, lambda: get_adapter(store, owner, adapter_id),
                       lambda r: AdapterPublic.of(r, state.settings).model_dump_json(),
                       lambda r: r.job is None or r.job.status in FINISHED, f"adapter {adapter_id} was deleted")


def _cancel(state, owner: str, adapter_id: str) -> None:
    from .jobs import cancel_job

    row = get_adapter(state.store, owner, adapter_id)  # 404 for unknown / another key's adapter
    if row.job is not None and row.job.status not in FINISHED:
        cancel_job(adapter_id, state, owner)  # the job route's cancel: queued at once, running at its step


@router.post("/adapters/{adapter_id}/cancel", response_model=AdapterPublic)
def cancel_adapter(adapter_id: str, state: StateDep, owner: OwnerDep) -> AdapterPublic:
    """Cancel the training: a queued one at once, a running one at the end of its step (nothing of it
    is kept: no adapter, no checkpoints). A finished one is returned unchanged."""
    _cancel(state, owner, adapter_id)
    return AdapterPublic.of(get_adapter(state.store, owner, adapter_id), state.settings)


@router.delete("/adapters/{adapter_id}", status_code=204, response_class=Response)
def remove_adapter(adapter_id: str, state: StateDep, owner: OwnerDep) -> Response:
    """Delete the adapter and its files (a running training is cancelled first). Jobs already queued
    with it fail with one line naming it."""
    _cancel(state, owner, adapter_id)
    delete_adapter(state.store, owner, adapter_id)
    return Response(status_code=204)
