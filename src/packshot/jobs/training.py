"""Run one claimed training job (``kind = 'train'``): the product's photos and their committed
cut-outs -> :func:`packshot.train.train` -> the adapter folder ``<data_dir>/adapters/<id>/``.

Called by :class:`~packshot.jobs.runner.JobRunner` for training jobs, so they run wherever
generation jobs run (the in-process queue, or a ``packshot worker`` that shares the server's
database and data dir) and get the same claim, heartbeat, cancel and redelivery.

* Progress: every step's (step, total, loss) goes through the job's Reporter (heartbeat, cancel
  flag, graceful stop, the test step delay) and, throttled, into the adapter row (``step``,
  ``total``, ``loss``) that the API streams over SSE.
* Cancel: a cancel request (DB flag or this process's event) sets the ``cancel`` event that
  ``train()`` watches; it stops at the end of its step. A cancelled or failed run leaves nothing:
  the folder (checkpoints included) is removed and no metadata is recorded.
* Resume: ``train()`` saves a checkpoint every ``checkpoint_every`` steps in the adapter folder.
  When the job runs again (its worker was killed -9 and the job was redelivered or re-queued, or the
  server stopped gracefully), the newest checkpoint there is found and training continues from it
  (``resume=True``); the step it resumed from is recorded.
* Remote ``--api`` workers (:mod:`packshot.jobs.remote_training`) train in a folder of their own:
  the store gives them ``training`` (the same calls as :class:`LocalAdapters`, over HTTP), which
  downloads the last uploaded checkpoint first, uploads each new one, and uploads the finished
  adapter folder for the server to unpack into ``<data_dir>/adapters/<id>/``.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ..errors import CancelledError, NotFoundError, PackshotError
from ..store.adapters import adapter_folder, finish_training, get_adapter, remove_folder, set_progress

log = logging.getLogger("packshot.jobs")

class LocalAdapters:
    """Where a worker that shares the server's database and data dir keeps a training job's adapter:
    its row and ``<data_dir>/adapters/<id>/``."""

    def __init__(self, store, settings):
        self.store, self.settings = store, settings

    def row(self, job):
        return get_adapter(self.store, None, job.id)

    def folder(self, job, row) -> Path:
        return adapter_folder(self.settings, row)

    def set_progress(self, job_id: str, step: int, total: int, loss: float | None,
                     resumed_from: int | None = None) -> None:
        set_progress(self.store, job_id, step, total, loss, resumed_from=resumed_from)

    def checkpoint_saved(self, job_id: str, worker: str, folder: Path) -> None:
        """Nothing to do: the checkpoint is in the shared folder already."""

    def finish(self, job, worker: str, folder: Path, meta: dict, steps: int, loss: float | None,
               resumed_from: int | None) -> bool:
        return finish_training(self.store, job.id, worker, meta, steps, loss, resumed_from)

    def remove(self, job, row) -> None:
        remove_folder(self.settings, row)


def last_checkpoint(folder: Path) -> int | None:
    """The step of the newest whole checkpoint in ``folder/checkpoints`` (None when there is none)."""
    from ..train.checkpoint import latest

    newest = latest(folder)
    return int(newest.name.split("-")[1]) if newest is not None else None


class _Progress:
    """``progress(step, total, loss)`` for ``train()``: the job's Reporter, and the adapter row at
    most every ``interval_s`` (and at the last step). An exception the Reporter raises (cancelled,
    job lost, process stopping) is kept and turned into the ``cancel`` event, so ``train()`` stops
    the way it is meant to (checkpoint saved, CancelledError); the runner then sees the real cause."""

    def __init__(self, ops, adapter_id: str, reporter, cancel: threading.Event, interval_s: float = 0.3,
                 worker: str = "", folder: Path | None = None):
        self.ops, self.adapter_id, self.reporter, self.cancel = ops, adapter_id, reporter, cancel
        self.interval_s, self.worker, self.folder = interval_s, worker, folder
        self.stopped: BaseException | None = None
        self._last = 0.0

    def __call__(self, step: int, total: int, loss: float) -> None:
        now = time.monotonic()
        if step >= total or now - self._last >= self.interval_s:
            self._last = now
            self.ops.set_progress(self.adapter_id, step, total, loss)
        if self.stopped is not None:
            return
        if self.folder is not None:  # a remote worker uploads each new checkpoint (saved after the step before)
            self.ops.checkpoint_saved(self.adapter_id, self.worker, self.folder)
        try:
            self.reporter("train", step / max(1, total), f"step {step}/{total}, loss {loss:.4f}")
        except Exception as e:  # CancelledError, JobLost, JobStopping: stop at the end of this step
            self.stopped = e
            self.cancel.set()


def _cutouts(runner, photo_ids: list[str], job_id: str):
    """The training photos' cut-outs: the committed (or automatic) one where there is one, else
    packshot's own cut-out, made now."""
    from ..io import load_image
    from ..schema import GenerateRequest
    from ..types import Cutout

    out = []
    plain = GenerateRequest()  # no cut-out hints of its own: the committed cut-out is used
    for pid in photo_ids:
        photo = runner.store.photo_by_id(pid)
        if photo is None:  # deleted with its product meanwhile (its job row went too: nothing to record)
            raise NotFoundError(f"photo {pid!r} of training job {job_id} was deleted")
        cut = runner.cutout_for(photo, plain)
        if not isinstance(cut, Cutout):
            cut = runner.pipeline.cutout(load_image(cut, max_pixels=runner.settings.max_pixels))
        out.append(cut)
    return out


def train_job(runner, job, worker: str, reporter, cancel: threading.Event) -> str:
    """Train the adapter of ``job``; returns "succeeded" or "lost". Cancel, lost, stopping and
    errors are raised for the runner's handlers (after a cancelled or failed run is cleaned up)."""
    from ..schema import TrainRequest, build

    store, settings = runner.store, runner.settings
    ops = getattr(store, "training", None) or LocalAdapters(store, settings)  # remote: jobs/remote_training.py
    row = ops.row(job)
    folder = ops.folder(job, row)
    request = build(TrainRequest, dict(job.request))
    resume_at = last_checkpoint(folder)
    if resume_at is not None:
        ops.set_progress(row.id, resume_at, row.total, None, resumed_from=resume_at)
        log.warning("training job %s: resuming from the checkpoint at step %d", job.id, resume_at)
    progress = _Progress(ops, row.id, reporter, cancel, worker=worker, folder=folder)
    try:
        reporter("train", 0.0, "preparing the photos")
        cutouts = _cutouts(runner, row.photo_ids, job.id)
        from ..train import train

        folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        result = train([c.photo for c in cutouts], request, folder, settings=settings, progress=progress,
                       cancel=cancel, resume=resume_at is not None, cutouts=cutouts)
    except CancelledError:
        if progress.stopped is not None and not isinstance(progress.stopped, CancelledError):
            raise progress.stopped from None  # lost or stopping: the checkpoints stay for the next run
        ops.remove(job, row)
        raise
    except PackshotError:
        ops.remove(job, row)
        raise
    if progress.stopped is not None:  # asked to stop while the last step ran: it finished anyway
        if not isinstance(progress.stopped, CancelledError):
            raise progress.stopped
    meta = dict(result.adapter.meta)
    meta["resumed_from"] = result.resumed_from
    if ops.finish(job, worker, folder, meta, result.steps, result.final_loss, result.resumed_from):
        return "succeeded"
    return "lost"
