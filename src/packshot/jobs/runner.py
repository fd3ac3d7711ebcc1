"""Run one claimed job: photo -> Pipeline.generate -> result blobs -> one committing transaction.

Shared by the in-process workers (``jobs.local``) and the Celery task (``jobs.celery_app``), so a
job behaves the same wherever it runs. The ``Pipeline`` is built once per process and reused:
models are loaded once, not per job.

Progress: the pipeline's ``progress(stage, fraction, message)`` calls are mapped onto one overall
0..1 figure (monotonic) and written to the job row at most every ``report_interval_s`` (and on
every stage change); each write also returns the job's cancel flag, and a set flag raises
``packshot.errors.CancelledError`` inside the pipeline, which stops the job.

Test hook: ``step_delay_s`` (the CLI reads it from ``PACKSHOT_TEST_STEP_DELAY``) sleeps that long
in every progress call, so tests can kill a process in the middle of a real job. Nothing about the
result changes; leave it at 0 in production.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..config import Settings
from ..errors import CancelledError, PackshotError
from ..schema import GenerateRequest, SegmentOptions, build
from ..store import CANCELLED, FAILED, Job, NewResult, Store
from .slots import ModelSlots

log = logging.getLogger("packshot.jobs")

# (start, end) of each pipeline stage in the job's overall progress
STAGES: dict[str, tuple[float, float]] = {
    "starting": (0.0, 0.02),
    "segment": (0.02, 0.15),
    "layout": (0.15, 0.17),
    "background": (0.17, 0.80),
    "composite": (0.80, 0.90),
    "score": (0.90, 0.92),
    "save": (0.92, 0.99),
    "train": (0.02, 0.99),  # a training job (jobs/training.py)
}
_OTHER = STAGES["background"]  # engines may name their own sub-stages (e.g. "denoise")


class JobLost(Exception):
    """The job is no longer ours (deleted with its product, or taken over after we looked dead)."""


class JobStopping(Exception):
    """The process is shutting down: give the job back to the queue."""


class Reporter:
    """The ``progress`` callback handed to the pipeline for one job."""

    def __init__(self, store: Store, job_id: str, worker: str, *, interval_s: float = 0.25,
                 step_delay_s: float = 0.0, cancel_event: threading.Event | None = None,
                 stop_event: threading.Event | None = None):
        self.store, self.job_id, self.worker = store, job_id, worker
        self.interval_s, self.step_delay_s = interval_s, step_delay_s
        self.cancel_event, self.stop_event = cancel_event, stop_event
        self.progress = 0.0
        self._stage = ""
        self._last = 0.0

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        if self.step_delay_s > 0:
            time.sleep(self.step_delay_s)
        lo, hi = STAGES.get(stage, _OTHER)
        f = min(1.0, max(0.0, float(fraction)))
        self.progress = max(self.progress, min(0.99, lo + (hi - lo) * f))
        now = time.monotonic()
        if stage != self._stage or now - self._last >= self.interval_s or f >= 1.0:
            self._stage, self._last = stage, now
            held, cancel = self.store.report(self.job_id, self.worker, round(self.progress, 4), stage,
                                             message or stage)
            if not held:
                raise JobLost(self.job_id)
            if cancel:
                raise CancelledError(f"job {self.job_id} was cancelled")
        if self.cancel_event is not None and self.cancel_event.is_set():
            raise CancelledError(f"job {self.job_id} was cancelled")
        if self.stop_event is not None and self.stop_event.is_set():
            raise JobStopping(self.job_id)


class JobRunner:
    """Runs claimed jobs in this process. ``slots`` bounds how many run a model at once."""

    def __init__(self, store: Store, settings: Settings, *, slots: ModelSlots | None = None,
                 pipeline: Any = None, step_delay_s: float = 0.0, heartbeat_s: float = 2.0,
                 on_finish=None):
        self.store, self.settings = store, settings
        self.slots = slots or ModelSlots(settings.model_slots)
        self._pipeline = pipeline
        self._pipeline_lock = threading.Lock()
        self.step_delay_s = step_delay_s
        self.heartbeat_s = heartbeat_s
        self.on_finish = on_finish  # callback(job_id, status, seconds) for metrics
        self._active: dict[str, str] = {}            # job id -> worker name
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.stop_event = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat_loop, name="packshot-heartbeat", daemon=True)
        self._beat.start()

    @property
    def pipeline(self):
        """One Pipeline per process, built on first use and reused by every job."""
        with self._pipeline_lock:
            if self._pipeline is None:
                from ..pipeline import Pipeline
                self._pipeline = Pipeline(self.settings)
            return self._pipeline

    def active(self) -> list[str]:
        with self._lock:
            return list(self._active)

    def cancel(self, job_id: str) -> None:
        """Stop a job running in THIS process at its next progress call (the DB flag does the same
        for jobs running elsewhere)."""
        with self._lock:
            ev = self._cancel.get(job_id)
        if ev is not None:
            ev.set()

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.wait(self.heartbeat_s):
            with self._lock:
                active = dict(self._active)
            if active:
                try:
                    self.store.heartbeat(list(active), active)
                except Exception:  # the DB may be briefly unavailable: try again next beat
                    log.warning("heartbeat failed", exc_info=True)

    # -- one job -----------------------------------------------------------------------------
    def run(self, job: Job, worker: str, *, slot_held: bool = False) -> str:
        """Run a job this worker has claimed; returns its final status (or "lost"/"requeued")."""
        cancel = threading.Event()
        with self._lock:
            self._active[job.id] = worker
            self._cancel[job.id] = cancel
        t0 = time.perf_counter()
        status = "lost"
        try:
            if slot_held:
                status = self._run(job, worker, cancel)
            else:
                with self.slots.hold():
                    status = self._run(job, worker, cancel)
            return status
        finally:
            with self._lock:
                self._active.pop(job.id, None)
                self._cancel.pop(job.id, None)
            if self.on_finish is not None:
                try:
                    self.on_finish(job.id, status, time.perf_counter() - t0)
                except Exception:
                    log.warning("on_finish hook failed", exc_info=True)

    def _run(self, job: Job, worker: str, cancel: threading.Event) -> str:
        reporter = Reporter(self.store, job.id, worker, step_delay_s=self.step_delay_s,
                            cancel_event=cancel, stop_event=self.stop_event)
        written: list[str] = []  # result blobs put so far: removed unless a committed row names them
        try:
            reporter("starting", 0.0, "loading the photo")
            if getattr(job, "kind", "generate") == "train":  # its result is the adapter (jobs/training.py)
                from .training import train_job
                return train_job(self, job, worker, reporter, cancel)
            results = self._generate(job, reporter, written)
            if self.store.finish(job.id, worker, results):
                written.clear()
                return "succeeded"
            return "lost"
        except CancelledError:
            self.store.fail(job.id, worker, CANCELLED, None, "cancelled")
            return CANCELLED
        except JobLost:
            log.info("job %s is no longer held by %s; dropped", job.id, worker)
            return "lost"
        except JobStopping:
            self.store.release(job.id, worker)
            return "requeued"
        except PackshotError as e:
            self.store.fail(job.id, worker, FAILED, e.message)
            return FAILED
        except Exception as e:  # a bug: the job fails with one line, the log has the traceback
            log.exception("job %s failed", job.id)
            self.store.fail(job.id, worker, FAILED, f"internal error ({type(e).__name__}); see the server log")
            return FAILED
        finally:
            if written:  # cancelled, deleted, failed or taken over: its partial outputs go now
                try:
                    self.store.collect_garbage(written)
                except Exception:  # the start-up sweep removes them otherwise
                    log.warning("could not remove the partial outputs of job %s", job.id, exc_info=True)

    def _generate(self, job: Job, progress: Reporter, written: list[str]) -> list[NewResult]:
        from ..output import candidate_bytes

        fields = dict(job.request)
        background_id = fields.pop("background_id", None)  # an uploaded background (api/routes/backgrounds)
        if fields.get("adapters"):  # API adapter ids -> their folders (store/adapters.py)
            if hasattr(self.store, "adapter_refs"):  # a remote worker (jobs.remote): bundles from the server
                fields["adapters"] = self.store.adapter_refs(job)
            else:
                from ..store.adapters import resolve_adapter_refs
                fields["adapters"] = resolve_adapter_refs(self.store, job.owner, fields["adapters"])
        request = build(GenerateRequest, fields)
        photo = self.store.photo_by_id(job.photo_id)
        if photo is None:
            raise JobLost(job.id)
        if background_id is not None:  # decoded from the blob store (local or S3), never a path
            if hasattr(self.store, "background_photo"):  # a remote worker (jobs.remote): over HTTP
                background = self.store.background_photo(job, self.settings.max_pixels)
            else:
                from ..store.backgrounds import background_photo
                background = background_photo(self.store, job.owner, background_id, self.settings.max_pixels)
            request = request.model_copy(update={"background": background})
        # 1. check inputs once, from the photo's stored size, before anything is decoded or cut out
        resolved = self.pipeline.check(request, photo_size=(photo.width, photo.height))
        image = self.cutout_for(photo, request)
        result = self.pipeline.generate(image, resolved, progress)
        if not result.candidates:  # min_similarity dropped them all: fail with the scores, never silently
            raise PackshotError(f"no candidate kept: {'; '.join(n for n in result.notes if n.startswith('dropped'))}")
        out: list[NewResult] = []
        n = len(result.candidates)
        # the candidates min_similarity / keep dropped, recorded with every kept result (no blob of their own)
        dropped = [{"seed": int(c.seed), "reason": c.dropped_reason,
                    "scores": {k: round(float(v), 5) for k, v in c.scores.items()}} for c in result.dropped]
        for rank, cand in enumerate(result.candidates, 1):
            data = candidate_bytes(cand, "png")  # lossless master; other formats encoded on request
            sha = self.store.blobs.put(data)
            written.append(sha)
            h, w = cand.image.shape[:2]
            out.append(NewResult(
                rank=rank, seed=int(cand.seed), engine=cand.engine, prompt=cand.prompt,
                parameters=_jsonable({**cand.parameters, **({"Dropped": dropped} if dropped else {})}),
                scores={k: round(float(v), 5) for k, v in cand.scores.items()},
                generated=bool(cand.scene.generated), blob_sha=sha, width=int(w), height=int(h),
                output_format=request.output_format, data=data))
            progress("save", rank / n, f"saved candidate {rank}/{n}")
        return out

    def cutout_for(self, photo, request: GenerateRequest):
        """The committed cutout when the request asks for no cutout hints of its own, else the
        photo bytes (the pipeline cuts it out with ``request.segment``)."""
        from ..io import load_image
        from ..types import Cutout, Matte

        original = self.store.photo_bytes(photo)  # the working copy (decoded once at upload)
        if request.segment != SegmentOptions():
            return original
        sha = photo.cutout_sha or photo.auto_cutout_sha
        if sha is None:
            return original
        import numpy as np
        base = load_image(original, max_pixels=self.settings.max_pixels)
        cut = load_image(self.store.blobs.get(sha), max_pixels=self.settings.max_pixels)
        if cut.size != base.size:  # should not happen; fall back to cutting out again
            return original
        alpha = cut.alpha if cut.alpha is not None else np.ones(cut.rgb.shape[:2], np.float32)
        engine = photo.cutout_engine if photo.cutout_sha else "auto"
        return Cutout(photo=base, matte=Matte(alpha=alpha, engine=engine or "committed", foreground=cut.rgb,
                                              notes=("used the cutout saved for this photo",)))

    def close(self) -> None:
        self.stop_event.set()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    try:
        import numpy as np
        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover
        pass
    return str(value)
