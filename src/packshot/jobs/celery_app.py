"""Scale-out: Celery over Redis. ``packshot serve --queue celery`` enqueues, ``packshot worker`` runs.

Delivery guarantees (at least once, results exactly once):

* ``acks_late`` + ``task_reject_on_worker_lost`` + prefetch 1: a message is acknowledged only
  after its job has finished, so the message of a worker killed mid-job is delivered again (Redis
  makes it visible again after ``visibility_timeout``).
* The message carries only the job id; the job row (status, seed, request) is the truth. A task
  claims the job with an atomic UPDATE; a copy of a message whose job is already running under a
  live worker re-schedules itself (``retry``) instead of being dropped, so that if that worker dies
  later someone still takes the job over once its heartbeat goes stale.
* Results and the ``succeeded`` status are committed in one transaction, only by the job's current
  holder, with ids derived from (job id, rank): no duplicates.
* The server also re-dispatches, at start and while running, queued jobs and jobs whose worker went
  silent (``stale_after_s``), in case a message was lost (server killed between commit and send).

Workers either share the server's database URL and blob store (data dir or ``--blob-url``), or,
with ``--api URL --worker-key KEY``, nothing but the broker and the API (:mod:`packshot.jobs.remote`).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from typing import Any

from ..config import Settings
from ..store import FINISHED, Store, worker_name

log = logging.getLogger("packshot.jobs")

TASK_NAME = "packshot.run_job"
QUEUE_NAME = "cpu"  # default queue
# Jobs go to the queue of what they need: "gpu" for a model that wants an accelerator (diffusion,
# SAM/CLIP cutouts, training), "cpu" for the studio engine and classic cutouts. A worker serves the
# queues given by ``--queues`` (default both): a CPU box can take "cpu" only, so GPU work and
# training reach GPU workers only.
QUEUES = ("gpu", "cpu")
GPU_SEGMENTERS = ("sam",)


def queue_for(request: dict[str, Any] | None, kind: str = "generate") -> str:
    """The queue a job goes to, from what it needs."""
    if kind == "train":
        return "gpu"
    request = request or {}
    segment = request.get("segment") or {}
    if request.get("engine") == "diffusion" or segment.get("engine") in GPU_SEGMENTERS or segment.get("text"):
        return "gpu"
    return "cpu"


def make_celery(broker_url: str, *, visibility_timeout_s: float = 600.0):
    """A Celery app configured for at-least-once delivery of slow, memory-hungry jobs."""
    from celery import Celery

    app = Celery("packshot", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=QUEUE_NAME,
        task_serializer="json",
        accept_content=["json"],
        # unacknowledged messages (a killed worker's) come back after visibility_timeout; every
        # worker looks for such messages every few seconds (kombu's default scans ~every 100 s)
        broker_transport_options={"visibility_timeout": visibility_timeout_s,
                                  "unacked_restore_interval": max(1, min(10, int(visibility_timeout_s / 2))),
                                  "unacked_restore_throttle": 1},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5,
                                   "interval_max": 2.0},
    )
    return app


class WorkerContext:
    """What a worker process keeps for all its tasks: Store, JobRunner (one Pipeline)."""

    def __init__(self, settings: Settings, *, step_delay_s: float = 0.0, stale_after_s: float = 60.0,
                 heartbeat_s: float | None = None, concurrency: int = 1):
        from .runner import JobRunner
        from .slots import ModelSlots

        self.settings = settings
        self.stale_after_s = stale_after_s
        self.store = Store(settings)
        self.runner = JobRunner(self.store, settings, slots=ModelSlots(max(concurrency, 1)),
                                step_delay_s=step_delay_s,
                                heartbeat_s=heartbeat_s or max(0.5, min(5.0, stale_after_s / 5)))


def register_task(app, context_factory):
    """Register the job task on ``app``; ``context_factory()`` builds the WorkerContext once."""
    state: dict[str, Any] = {}
    lock = threading.Lock()

    def context() -> WorkerContext:
        with lock:
            if "ctx" not in state:
                state["ctx"] = context_factory()
            return state["ctx"]

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
    def run_job(self, job_id: str) -> str:
        ctx = context()
        worker = worker_name(threading.get_ident() % 100000)
        job = ctx.store.claim(worker, job_id, stale_after_s=ctx.stale_after_s)
        if job is None:
            holder = ctx.store.job_holder(job_id)
            if holder is None or holder[0] in FINISHED:
                return "done"
            # running under another live worker (or just claimed elsewhere): look again later
            raise self.retry(countdown=max(1.0, ctx.stale_after_s))
        return ctx.runner.run(job, worker)

    app.packshot_context = context
    return run_job


class CeleryQueue:
    """Server side of the Celery queue: sends job ids to the broker from a background thread (a
    slow or absent broker never blocks an HTTP request; the job is already safe in the table)."""

    kind = "celery"

    def __init__(self, store: Store, settings: Settings, *, stale_after_s: float = 60.0,
                 visibility_timeout_s: float = 600.0):
        self.store, self.settings = store, settings
        self.stale_after_s = stale_after_s
        self.app = make_celery(settings.broker_url, visibility_timeout_s=visibility_timeout_s)
        self._pending: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.sent = 0
        self.sent_by_queue: dict[str, int] = {q: 0 for q in QUEUES}
        self.runner = None  # no jobs run in this process

    def start(self) -> None:
        for jid in self.store.requeue_interrupted(self.stale_after_s):
            log.warning("job %s was interrupted; queued again", jid)
        for jid in self.store.queued_ids():  # a message may have been lost with a crashed server
            self._pending.put(jid)
        for target, name in ((self._dispatch, "packshot-dispatch"), (self._reap, "packshot-reaper")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def submit(self, job_id: str) -> None:
        self._pending.put(job_id)

    def cancel(self, job_id: str) -> None:
        pass  # the cancel flag in the job row reaches the worker at its next progress report

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._pending.put("")
        for t in self._threads:
            t.join(timeout / max(1, len(self._threads)))

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            jid = self._pending.get()
            if not jid:
                continue
            while not self._stop.is_set():
                try:
                    target = self._queue_of(jid)
                    # task id = job id + a suffix: worker logs name the job
                    self.app.send_task(TASK_NAME, args=[jid], queue=target,
                                       task_id=f"{jid}-{uuid.uuid4().hex[:8]}")
                    self.sent += 1
                    self.sent_by_queue[target] = self.sent_by_queue.get(target, 0) + 1
                    break
                except Exception as e:  # broker down: keep the id and try again
                    log.warning("cannot reach the broker (%s); retrying job %s", e, jid)
                    time.sleep(1.0)

    def _queue_of(self, job_id: str) -> str:
        try:
            job = self.store.get_job(None, job_id)
            return queue_for(job.request, getattr(job, "kind", "generate"))  # training jobs: "gpu"
        except Exception:  # deleted meanwhile (the worker will find nothing to do) or DB hiccup
            return QUEUE_NAME

    def waiting(self) -> dict[str, int]:
        """Messages waiting in the broker per queue (redis: the queue is a list of that name)."""
        out: dict[str, int] = {}
        try:
            with self.app.connection_for_write() as conn:
                client = conn.default_channel.client
                for q in QUEUES:
                    out[q] = int(client.llen(q))
        except Exception:  # broker down or not redis: report nothing
            return {}
        return out

    def _reap(self) -> None:
        while not self._stop.wait(max(1.0, self.stale_after_s / 3)):
            try:
                for jid in self.store.requeue_interrupted(self.stale_after_s):
                    log.warning("job %s: its worker went silent; queued again", jid)
                    self._pending.put(jid)
            except Exception:
                log.exception("reaper failed")
