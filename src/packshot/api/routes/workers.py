"""Worker routes: what a remote ``packshot worker --api URL --worker-key KEY`` needs, over HTTP.

A remote worker shares nothing with the server but the broker: it claims its job, downloads the
job's inputs, reports progress, uploads the result images and commits them, all here. These
routes take a **worker key** (``X-Worker-Key``; see :mod:`packshot.store.workers`) and nothing
else: an API key is refused here (401), and a worker key is refused on every other route (the
guard middleware). They mirror the Store calls a local worker makes, with the same guarantees:
claiming is one conditional UPDATE, results are written only by the job's current holder in one
transaction (a redelivered job is written once), and a finished job answers "done".

The claim answer names every input: the photo and its cut-outs, the uploaded background photo,
and the job's trained adapters as blobs (:func:`~packshot.api.routes.worker_blobs.job_inputs`).
Downloads and resumable uploads: :mod:`packshot.api.routes.worker_blobs`.

``GET /api/v1/workers`` (an ordinary API route, for operators) lists the workers' heartbeats.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path as PathParam, Query
from pydantic import BaseModel, Field

from ...errors import InvalidInputError, NotFoundError
from ..deps import StateDep
from ..schemas import ERRORS
from . import worker_blobs
from .worker_blobs import SHA, Conflict, WorkerAuthError, WorkerKeyDep, _registry, job_inputs, worker_key  # noqa: F401

router = APIRouter(tags=["workers"], responses=ERRORS)   # /api/v1/worker/...: worker keys only
router.include_router(worker_blobs.router)  # blobs in and out (downloads, resumable uploads)
listing = APIRouter(tags=["workers"], responses=ERRORS)  # /api/v1/workers: API keys (operators)

WORKER_PREFIX = "/api/v1/worker/"
JOB_ID = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")]
NAME = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]


# -- jobs ---------------------------------------------------------------------------------------
class ClaimIn(BaseModel):
    worker: NAME
    stale_after_s: float | None = Field(60.0, ge=1, le=86400)


class PhotoInfo(BaseModel):
    id: str
    blob_sha: str
    width: int
    height: int
    cutout_sha: str | None = None
    cutout_engine: str | None = None
    auto_cutout_sha: str | None = None


class JobState(BaseModel):
    id: str
    status: str
    worker: str | None = None
    heartbeat_at: datetime | None = None


class BackgroundInfo(BaseModel):
    id: str
    blob_sha: str


class AdapterBlob(BaseModel):
    id: str
    sha: str = Field(description="sha256 of the adapter bundle (a tar of its folder, checkpoints left out)")
    weight: float


class CheckpointInfo(BaseModel):
    step: int
    sha: str = Field(description="sha256 of the checkpoint bundle (checkpoints/run.json + step-NNNNNN/)")


class TrainingInfo(BaseModel):
    total: int
    photos: list[PhotoInfo]
    checkpoint: CheckpointInfo | None = Field(None, description="the newest uploaded checkpoint: resume from it")


class ClaimOut(JobState):
    claimed: bool
    product_id: str | None = None
    photo_id: str | None = None
    attempts: int | None = None
    request: dict[str, Any] | None = None
    photo: PhotoInfo | None = None
    background: BackgroundInfo | None = None
    adapters: list[AdapterBlob] = Field(default_factory=list)
    training: TrainingInfo | None = None


@router.post("/worker/jobs/{job_id}/claim", response_model=ClaimOut)
def claim(job_id: JOB_ID, body: ClaimIn, state: StateDep, key: WorkerKeyDep) -> ClaimOut:
    """Take a job to run (queued, or running under a dead or silent holder). ``claimed`` false:
    someone else holds it, or it is finished (see ``status``)."""
    from ...store import RUNNING

    store = state.store
    holder = store.job_holder(job_id)
    if holder is not None and holder[0] == RUNNING and holder[1] == body.worker:
        job = store.get_job(None, job_id)  # the same worker asking again (its answer was lost)
    else:
        job = store.claim(body.worker, job_id, stale_after_s=body.stale_after_s)
    if job is None:
        return ClaimOut(claimed=False, **_job_state(store, job_id).model_dump())
    try:  # its background and adapters (deleted since it was queued: the job fails with one line)
        extra = job_inputs(store, job)
    except (NotFoundError, InvalidInputError) as e:
        from ...store import FAILED
        store.fail(job.id, body.worker, FAILED, e.message)
        return ClaimOut(claimed=False, **_job_state(store, job_id).model_dump())
    photo = store.photo_by_id(job.photo_id)
    info = None if photo is None else PhotoInfo(
        id=photo.id, blob_sha=photo.blob_sha, width=photo.width, height=photo.height, cutout_sha=photo.cutout_sha,
        cutout_engine=photo.cutout_engine, auto_cutout_sha=photo.auto_cutout_sha)
    return ClaimOut(claimed=True, id=job.id, status=job.status, worker=job.worker, heartbeat_at=job.heartbeat_at,
                    product_id=job.product_id, photo_id=job.photo_id, attempts=job.attempts, request=job.request,
                    photo=info, **extra)


def _job_state(store, job_id: str) -> JobState:
    holder = store.job_holder(job_id)
    if holder is None:
        raise NotFoundError(f"job {job_id!r} not found")
    return JobState(id=job_id, status=holder[0], worker=holder[1], heartbeat_at=holder[2])


@router.get("/worker/jobs/{job_id}", response_model=JobState)
def job_state(job_id: JOB_ID, state: StateDep, key: WorkerKeyDep) -> JobState:
    return _job_state(state.store, job_id)


class ProgressIn(BaseModel):
    worker: NAME
    progress: float | None = Field(None, ge=0, le=1)
    stage: str | None = Field(None, max_length=40)
    message: str | None = Field(None, max_length=500)


    # a training job's step, total and loss (into its adapter row, streamed over SSE)
    step: int | None = Field(None, ge=0, le=10**7)
    total: int | None = Field(None, ge=1, le=10**7)
    loss: float | None = Field(None, allow_inf_nan=False)
    resumed_from: int | None = Field(None, ge=0, le=10**7)


class ProgressOut(BaseModel):
    held: bool
    cancel: bool


@router.post("/worker/jobs/{job_id}/progress", response_model=ProgressOut)
def progress(job_id: JOB_ID, body: ProgressIn, state: StateDep, key: WorkerKeyDep) -> ProgressOut:
    """Progress + heartbeat from the holder; says whether it still holds the job and whether it
    was cancelled."""
    held, cancel = state.store.report(job_id, body.worker, body.progress, body.stage, body.message)
    if held and body.step is not None and body.total is not None:
        from ...store.adapters import set_progress
        set_progress(state.store, job_id, body.step, body.total, body.loss, body.resumed_from)
    return ProgressOut(held=held, cancel=cancel)


class ResultIn(BaseModel):
    rank: int = Field(ge=1, le=1000)
    seed: int = Field(ge=0, le=2**63 - 1)
    engine: str = Field(max_length=40)
    prompt: str = Field(max_length=20_000)
    parameters: dict[str, Any]
    scores: dict[str, float]
    generated: bool
    blob_sha: str = Field(pattern=r"^[0-9a-f]{64}$")
    width: int = Field(ge=1, le=100_000)
    height: int = Field(ge=1, le=100_000)
    output_format: Literal["png", "jpeg", "webp"]


class FinishIn(BaseModel):
    worker: NAME
    results: list[ResultIn] = Field(max_length=1000)


class FinishOut(BaseModel):
    written: bool
    status: str


@router.post("/worker/jobs/{job_id}/finish", response_model=FinishOut)
def finish(job_id: JOB_ID, body: FinishIn, state: StateDep, key: WorkerKeyDep) -> FinishOut:
    """Commit the results (already uploaded) and mark the job succeeded, in one transaction, only
    if ``worker`` still holds it. Sent again after a lost answer: ``written`` is true when this
    worker's results are the committed ones."""
    from ...store import NewResult, SUCCEEDED

    store = state.store
    has_data = "data" in {f.name for f in dataclasses.fields(NewResult)}
    results = []
    for r in body.results:
        try:
            data = store.blobs.get(r.blob_sha)
        except NotFoundError:
            raise Conflict(f"result blob {r.blob_sha} was not uploaded (or was removed): upload it again") from None
        extra = {"data": data} if has_data else {}
        results.append(NewResult(**r.model_dump(), **extra))
    if store.finish(job_id, body.worker, results):
        return FinishOut(written=True, status=SUCCEEDED)
    st = _job_state(store, job_id)
    return FinishOut(written=st.status == SUCCEEDED and st.worker == body.worker, status=st.status)


class FailIn(BaseModel):
    worker: NAME
    status: Literal["failed", "cancelled"]
    error: str | None = Field(None, max_length=2000)
    message: str = Field("", max_length=500)


class DoneOut(BaseModel):
    done: bool


@router.post("/worker/jobs/{job_id}/fail", response_model=DoneOut)
def fail(job_id: JOB_ID, body: FailIn, state: StateDep, key: WorkerKeyDep) -> DoneOut:
    """A failed or cancelled training job leaves nothing: its uploaded checkpoints go too."""
    done = state.store.fail(job_id, body.worker, body.status, body.error, body.message)
    if done:
        from ...store.adapters import get_adapter, remove_folder
        try:
            remove_folder(state.settings, get_adapter(state.store, None, job_id))
        except NotFoundError:  # a generation job: no adapter folder
            pass
    return DoneOut(done=done)


def _held(store, job_id: str, worker: str) -> None:
    from ...store import RUNNING

    st = _job_state(store, job_id)
    if st.status != RUNNING or st.worker != worker:
        raise Conflict(f"job {job_id} is not held by {worker} (it is {st.status})")


def _blob(store, sha: str) -> bytes:
    try:
        return store.blobs.get(sha)
    except NotFoundError:
        raise Conflict(f"blob {sha} was not uploaded (or was removed): upload it again") from None


class CheckpointIn(BaseModel):
    worker: NAME
    sha: str = Field(pattern=r"^[0-9a-f]{64}$", description="the uploaded checkpoint bundle")


class CheckpointOut(BaseModel):
    step: int


@router.post("/worker/jobs/{job_id}/checkpoint", response_model=CheckpointOut)
def checkpoint(job_id: JOB_ID, body: CheckpointIn, state: StateDep, key: WorkerKeyDep) -> CheckpointOut:
    """A remote training job's checkpoint (uploaded first): kept in the adapter folder, so a worker
    that takes the job over resumes from it."""
    from ...store.adapters import accept_checkpoint, adapter_folder, get_adapter

    store = state.store
    _held(store, job_id, body.worker)
    data = _blob(store, body.sha)
    step = accept_checkpoint(adapter_folder(state.settings, get_adapter(store, None, job_id)), data)
    store.collect_garbage([body.sha])
    return CheckpointOut(step=step)


class AdapterIn(BaseModel):
    worker: NAME
    sha: str = Field(pattern=r"^[0-9a-f]{64}$", description="the uploaded adapter bundle")
    metadata: dict[str, Any]
    steps: int = Field(ge=0, le=10**7)
    final_loss: float | None = Field(None, allow_inf_nan=False)
    resumed_from: int | None = Field(None, ge=0, le=10**7)


@router.post("/worker/jobs/{job_id}/adapter", response_model=FinishOut)
def adapter_done(job_id: JOB_ID, body: AdapterIn, state: StateDep, key: WorkerKeyDep) -> FinishOut:
    """A remote training job's result: the adapter bundle (uploaded first) is unpacked into
    ``<data_dir>/adapters/<id>/`` and the job marked succeeded, only if ``worker`` still holds it."""
    from ...store import SUCCEEDED
    from ...store.adapters import accept_adapter, adapter_folder, finish_training, get_adapter

    store = state.store
    st = _job_state(store, job_id)
    if st.status == SUCCEEDED:  # sent again after a lost answer
        return FinishOut(written=st.worker == body.worker, status=st.status)
    _held(store, job_id, body.worker)
    accept_adapter(adapter_folder(state.settings, get_adapter(store, None, job_id)), _blob(store, body.sha))
    store.collect_garbage([body.sha])
    written = finish_training(store, job_id, body.worker, body.metadata, body.steps, body.final_loss,
                              body.resumed_from)
    return FinishOut(written=written, status=_job_state(store, job_id).status)


class WorkerIn(BaseModel):
    worker: NAME


@router.post("/worker/jobs/{job_id}/release", response_model=DoneOut)
def release(job_id: JOB_ID, body: WorkerIn, state: StateDep, key: WorkerKeyDep) -> DoneOut:
    """Give a running job back to the queue (the worker is shutting down)."""
    return DoneOut(done=state.store.release(job_id, body.worker))


# -- heartbeats -----------------------------------------------------------------------------------
class HeartbeatIn(BaseModel):
    name: NAME
    queues: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=20)
    device: str = Field("", max_length=100)
    free_memory: int | None = Field(None, ge=0)
    total_memory: int | None = Field(None, ge=0)
    models_loaded: list[Annotated[str, Field(max_length=300)]] = Field(default_factory=list, max_length=50)
    version: str = Field("", max_length=40)
    jobs: dict[Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")], NAME] = Field(
        default_factory=dict, max_length=100, description="job id -> the worker name holding it")


class HeartbeatOut(BaseModel):
    ok: bool
    cancel: list[str] = Field(default_factory=list, description="held jobs that were cancelled")


@router.post("/worker/heartbeat", response_model=HeartbeatOut)
def heartbeat(body: HeartbeatIn, state: StateDep, key: WorkerKeyDep) -> HeartbeatOut:
    """The worker is alive: record what it serves, and refresh its running jobs' heartbeats."""
    from sqlalchemy import select

    from ...store import Job

    info = body.model_dump(exclude={"name", "jobs"})
    info["current_jobs"] = sorted(body.jobs)
    _registry(state).beat(body.name, key.id, info)
    cancel: list[str] = []
    if body.jobs:
        state.store.heartbeat(list(body.jobs), body.jobs)
        with state.store.read() as s:
            cancel = list(s.scalars(select(Job.id).where(Job.id.in_(list(body.jobs)), Job.cancel_requested)))
    return HeartbeatOut(ok=True, cancel=cancel)


class WorkerPublic(BaseModel):
    name: str
    key_name: str | None
    queues: list[str]
    device: str
    free_memory: int | None
    total_memory: int | None
    current_jobs: list[str]
    models_loaded: list[str]
    version: str
    started_at: datetime
    last_seen: datetime
    seconds_since_seen: float


class WorkersPublic(BaseModel):
    items: list[WorkerPublic]
    count: int


@listing.get("/workers", response_model=WorkersPublic)
def list_workers(state: StateDep, within: Annotated[float, Query(
        ge=1, le=30 * 86400, description="only workers seen in the last this many seconds")] = 3600.0
                 ) -> WorkersPublic:
    """Remote workers and their last heartbeat: device, free memory, current job, models loaded,
    last seen."""
    from ...store.models import as_utc, utcnow

    reg = _registry(state)
    names = {k.id: k.name for k in reg.list_keys()}
    now = utcnow()
    items = [WorkerPublic(name=b.name, key_name=names.get(b.key_id), queues=list(b.queues or []), device=b.device,
                          free_memory=b.free_memory, total_memory=b.total_memory,
                          current_jobs=list(b.current_jobs or []), models_loaded=list(b.models_loaded or []),
                          version=b.version, started_at=as_utc(b.started_at), last_seen=as_utc(b.last_seen),
                          seconds_since_seen=round((now - as_utc(b.last_seen)).total_seconds(), 1))
             for b in reg.beats(within)]
    return WorkersPublic(items=items, count=len(items))



# -- /metrics -------------------------------------------------------------------------------------
class QueueCollector:
    """``packshot_queue_waiting{queue}`` (messages in the broker, or queued jobs for the built-in
    queue), ``packshot_queue_dispatched_total{queue}`` (jobs this server sent to each queue) and
    ``packshot_queue_workers{queue}`` (workers that sent a heartbeat in the last ``live_s``)."""

    def __init__(self, queue, store, live_s: float = 30.0):
        self.queue, self.store, self.live_s = queue, store, live_s

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from ...store.workers import WorkerRegistry

        waiting = GaugeMetricFamily("packshot_queue_waiting", "Jobs waiting per queue.", labels=["queue"])
        try:
            if hasattr(self.queue, "waiting"):
                counts = self.queue.waiting()
            else:
                counts = {"local": self.store.job_counts().get("queued", 0)}
        except Exception:  # broker or DB unavailable: report nothing rather than fail the scrape
            counts = {}
        for q, n in sorted(counts.items()):
            waiting.add_metric([q], n)
        yield waiting
        sent = getattr(self.queue, "sent_by_queue", None)
        if sent is not None:
            c = CounterMetricFamily("packshot_queue_dispatched", "Jobs sent to each queue by this server.",
                                    labels=["queue"])
            for q, n in sorted(sent.items()):
                c.add_metric([q], n)
            yield c
        workers = GaugeMetricFamily("packshot_queue_workers", "Live remote workers serving each queue.",
                                    labels=["queue"])
        try:
            per: dict[str, int] = {}
            for b in WorkerRegistry(self.store).beats(self.live_s):
                for q in b.queues or ():
                    per[q] = per.get(q, 0) + 1
        except Exception:
            per = {}
        for q, n in sorted(per.items()):
            workers.add_metric([q], n)
        yield workers


def register_metrics(metrics, queue, store) -> None:
    metrics.registry.register(QueueCollector(queue, store))
