"""Training jobs on remote ``--api`` workers: :class:`RemoteTraining` is the remote worker's
``store.training`` (the calls :class:`packshot.jobs.training.LocalAdapters` makes against the shared
database and data dir), done over the worker routes.

* The claim answer names the training photos (with their cut-outs, fetched like a job's photo) and
  the newest checkpoint the server holds; that checkpoint is downloaded (sha256 checked) and unpacked
  whole into the worker's own folder ``<data_dir>/training/<job id>/`` before ``train(..., resume=True)``.
* Step, total and loss ride on the progress reports (``POST /worker/jobs/{id}/progress``).
* Each new checkpoint is uploaded (resumable) as a bundle and kept by the server in the adapter
  folder, so after a kill -9 the worker that takes the job over resumes from the last one uploaded.
* At the end the adapter folder (no checkpoints) is uploaded; the server unpacks it into
  ``<data_dir>/adapters/<id>/`` and marks the job succeeded in one call, only for the job's holder.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

log = logging.getLogger("packshot.jobs")


class RemoteTraining:
    """``store.training`` of a :class:`~packshot.jobs.remote.RemoteStore`."""

    def __init__(self, store, root: Path):
        self.store, self.root = store, Path(root)
        self._uploaded: dict[str, int] = {}  # job id -> step of the last checkpoint the server has

    def row(self, job):
        info = job.training or {}
        return SimpleNamespace(id=job.id, total=int(info.get("total") or 0),
                               photo_ids=[p["id"] for p in info.get("photos", ())])

    def folder(self, job, row) -> Path:
        """The worker's own training folder, holding the server's newest checkpoint when the local
        one is older (or missing)."""
        from ..store.adapters import accept_checkpoint
        from .training import last_checkpoint

        folder = self.root / job.id
        ckpt = (job.training or {}).get("checkpoint")
        have = last_checkpoint(folder)
        if ckpt and (have is None or have < int(ckpt["step"])):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            accept_checkpoint(folder, self.store.blobs.get(ckpt["sha"], job.id, cache=False))
            log.info("training job %s: downloaded the checkpoint at step %d", job.id, ckpt["step"])
        self._uploaded[job.id] = int(ckpt["step"]) if ckpt else -1
        return folder

    def set_progress(self, job_id: str, step: int, total: int, loss: float | None,
                     resumed_from: int | None = None) -> None:
        """Sent with the job's next progress report (the Reporter's call right after this one)."""
        fields = {"step": int(step), "total": int(total), "loss": None if loss is None else float(loss)}
        if resumed_from is not None:
            fields["resumed_from"] = int(resumed_from)
        self.store.train_fields(job_id, fields)

    def checkpoint_saved(self, job_id: str, worker: str, folder: Path) -> None:
        """Upload the newest checkpoint if the server does not have it yet. A failed upload is only
        logged: training goes on, and the next checkpoint tries again."""
        from ..store.adapters import checkpoint_bundle
        from .training import last_checkpoint

        step = last_checkpoint(folder)
        if step is None or step <= self._uploaded.get(job_id, -1):
            return
        try:
            got = checkpoint_bundle(folder)
            if got is None:
                return
            sha = self.store.blobs.put(got[1])
            kept = self.store.api.call("POST", f"/worker/jobs/{job_id}/checkpoint",
                                       json={"worker": worker, "sha": sha}).json()["step"]
            self._uploaded[job_id] = int(kept)
            log.info("training job %s: uploaded the checkpoint at step %d", job_id, kept)
        except Exception as e:  # noqa: BLE001 - the run continues; a lost job shows at the next report
            # a refused worker key (jobs.remote.WorkerKeyRefused, status 401) stops the worker; told
            # apart by its status so that this module does not import jobs.remote (which imports it)
            if getattr(e, "status", None) == 401:
                raise
            log.warning("training job %s: checkpoint at step %d not uploaded: %s", job_id, step, e)

    def finish(self, job, worker: str, folder: Path, meta: dict, steps: int, loss: float | None,
               resumed_from: int | None) -> bool:
        """Upload the adapter folder and commit it; True when this worker's adapter is the one kept."""
        from ..store.adapters import bundle_bytes

        data = bundle_bytes(folder)
        body = {"worker": worker, "metadata": meta, "steps": int(steps),
                "final_loss": None if loss is None else float(loss), "resumed_from": resumed_from}
        for _ in range(3):
            body["sha"] = self.store.blobs.put(data)
            r = self.store.api.call("POST", f"/worker/jobs/{job.id}/adapter", json=body, allow=(409,))
            if r.status_code != 409 or "not held" in r.text:
                break
        self._done(job.id)
        return r.status_code == 200 and bool(r.json()["written"])

    def remove(self, job, row) -> None:
        self._done(job.id)

    def _done(self, job_id: str) -> None:
        self._uploaded.pop(job_id, None)
        shutil.rmtree(self.root / job_id, ignore_errors=True)
