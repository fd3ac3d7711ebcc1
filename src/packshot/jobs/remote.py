"""Remote workers: run Celery jobs with nothing shared but the broker and the API.

``packshot worker --broker redis://… --api https://server --worker-key KEY`` takes job ids from the
broker like any worker, but it has no database URL and no shared disk. :class:`RemoteStore` stands
in for :class:`~packshot.store.Store` in the :class:`~packshot.jobs.runner.JobRunner` (the same
runner, so a job behaves the same wherever it runs) and does each store call over HTTP on the
worker routes (:mod:`packshot.api.routes.workers`):

* claim the job (one conditional UPDATE on the server, as for a local worker), download its photo
  and cutout, its uploaded background photo and its trained adapters (checked against their
  sha256; kept in ``<data_dir>/cache``; every download names the job, and the server serves only
  that job's inputs). An adapter comes as a bundle (a tar of its folder without checkpoints),
  unpacked whole into ``<model_dir>/adapters/.remote/<sha256>/`` once and reused;
* training jobs: :mod:`packshot.jobs.remote_training` (photos down, checkpoints and the finished
  adapter folder up; a job taken over resumes from the last uploaded checkpoint);
* report progress (the answer carries the cancel flag) and heartbeats (device, free memory, current
  jobs, models loaded);
* upload each result image **resumably** (:meth:`RemoteBlobs.put`: the server says how much it
  has, the worker sends the rest in chunks; a dropped connection costs at most one chunk), then
  commit all results in one call that writes only if this worker still holds the job: a job
  redelivered after a worker died is written once.

Every call is retried on a dropped connection, a timeout or a 5xx for ``retry_for_s`` (the server
may be restarting); every call is safe to repeat. A refused worker key (401) stops the worker.
The worker's model cache and its resident-model limit are the same as a local worker's.
"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable

from .. import __version__
from ..config import Settings
from ..errors import NotFoundError, PackshotError

log = logging.getLogger("packshot.jobs")

CHUNK = 4 * 1024 * 1024


class ApiError(PackshotError):
    """The API answered with an error the worker cannot retry."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class WorkerKeyRefused(ApiError):
    """401 from the server: the worker key is unknown or revoked."""


def _detail(r) -> str:
    try:
        return str(r.json().get("detail", r.text))[:300]
    except Exception:
        return r.text[:300]


class WorkerApi:
    """An HTTP client for the worker routes, retrying what can be retried."""

    def __init__(self, api_url: str, worker_key: str, *, timeout: float = 60.0, retry_for_s: float = 120.0,
                 transport=None):
        import httpx

        self.httpx = httpx
        self.base = api_url.rstrip("/")
        self.retry_for_s = retry_for_s
        self.client = httpx.Client(base_url=self.base, headers={"X-Worker-Key": worker_key},
                                   timeout=httpx.Timeout(timeout, connect=10.0), transport=transport)

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, *, allow: tuple[int, ...] = (), **kw):
        """One request, retried on transport errors, 429 and 5xx until ``retry_for_s`` passed.
        4xx other than ``allow`` raise ApiError (401: WorkerKeyRefused)."""
        deadline, pause = time.monotonic() + self.retry_for_s, 0.2
        while True:
            try:
                r = self.client.request(method, "/api/v1" + path, **kw)
            except self.httpx.TransportError as e:
                problem = f"{type(e).__name__}: {e}"
            else:
                if r.status_code < 400 or r.status_code in allow:
                    return r
                if r.status_code == 401:
                    raise WorkerKeyRefused(f"the server refused the worker key: {_detail(r)}", 401)
                if r.status_code != 429 and r.status_code < 500:
                    raise ApiError(f"{method} {path}: {r.status_code} {_detail(r)}", r.status_code)
                problem = f"{r.status_code} {_detail(r)}"
            if time.monotonic() > deadline:
                raise ApiError(f"{method} {path}: gave up after {self.retry_for_s:.0f} s ({problem})")
            log.warning("%s %s: %s; retrying", method, path, problem)
            time.sleep(pause)
            pause = min(5.0, pause * 2)


class RemoteBlobs:
    """Blobs over HTTP: inputs downloaded (and cached), results uploaded resumably."""

    def __init__(self, api: WorkerApi, cache_dir: Path, *, chunk_size: int = CHUNK):
        from ..store.blobs import BlobStore

        self.api = api
        self.cache = BlobStore(cache_dir)
        self.chunk_size = chunk_size
        self.resumed = 0  # uploads that continued after a dropped connection (for tests and logs)
        self.local = threading.local()  # .job: the job this thread runs, named in every download

    def get(self, sha: str, job: str | None = None, *, cache: bool = True) -> bytes:
        """Blob ``sha`` (checked against it). ``job``: the running job asking, for inputs only its
        own (background, adapter bundles); ``cache=False``: not kept in the input cache."""
        try:
            return self.cache.get(sha)
        except NotFoundError:
            pass
        job = job or getattr(self.local, "job", None)
        r = self.api.call("GET", f"/worker/blobs/{sha}", params={"job": job} if job else None, allow=(404,))
        if r.status_code == 404:
            raise NotFoundError(f"blob {sha} is not available from the server: {_detail(r)}")
        if hashlib.sha256(r.content).hexdigest() != sha:
            raise ApiError(f"blob {sha} arrived damaged (sha256 mismatch)")
        if cache:
            self.cache.put(r.content)
        return r.content

    def get_work(self, sha: str, job: str | None = None) -> bytes | None:
        """The photo's normalised working copy, or None when the original is its own."""
        job = job or getattr(self.local, "job", None)
        params = {"work": "true", **({"job": job} if job else {})}
        r = self.api.call("GET", f"/worker/blobs/{sha}", params=params, allow=(404,))
        return None if r.status_code == 404 else r.content

    def put(self, data: bytes) -> str:
        """Upload ``data`` (resumable); returns its sha256 hex once the server has it whole."""
        sha = hashlib.sha256(data).hexdigest()
        size = len(data)
        offset = self._offset(sha, size)
        deadline = time.monotonic() + self.api.retry_for_s
        conflicts = 0
        while offset < size:
            end = min(size, offset + self.chunk_size)
            try:
                r = self.api.client.patch(f"/api/v1/worker/uploads/{sha}", content=data[offset:end],
                                          headers={"Upload-Offset": str(offset), "Upload-Length": str(size)})
            except self.api.httpx.TransportError as e:
                if time.monotonic() > deadline:
                    raise ApiError(f"upload of {sha} gave up at {offset}/{size} bytes ({e})") from None
                offset = self._offset(sha, size)  # what did the server keep?
                self.resumed += 1
                log.warning("upload %s: connection dropped (%s); resuming at byte %d of %d",
                            sha[:12], type(e).__name__, offset, size)
                continue
            if r.status_code == 401:
                raise WorkerKeyRefused(f"the server refused the worker key: {_detail(r)}", 401)
            if r.status_code == 409 or r.status_code >= 500:  # offsets differ, or the server hiccuped
                conflicts += 1
                if conflicts > 20:
                    raise ApiError(f"upload of {sha}: {r.status_code} {_detail(r)} (20 times in a row)")
                offset = self._offset(sha, size)
                continue
            conflicts = 0
            if r.status_code >= 400:
                raise ApiError(f"upload of {sha}: {r.status_code} {_detail(r)}", r.status_code)
            offset = int(r.json()["offset"])
        return sha

    def _offset(self, sha: str, size: int) -> int:
        return int(self.api.call("GET", f"/worker/uploads/{sha}", params={"size": size}).json()["offset"])


@dataclass
class RemoteJob:
    """What the runner reads from a claimed job."""

    id: str
    product_id: str
    photo_id: str
    request: dict[str, Any]
    attempts: int
    status: str = "running"
    kind: str = "generate"
    background: dict[str, str] | None = None  # {"id", "blob_sha"}: the uploaded background photo
    adapters: list[dict[str, Any]] = field(default_factory=list)  # [{"id", "sha", "weight"}]: bundles
    training: dict[str, Any] | None = None  # {"total", "photos", "checkpoint"}: a training job's inputs


class RemoteStore:
    """The subset of :class:`~packshot.store.Store` a worker uses, over the worker routes."""

    def __init__(self, api: WorkerApi, cache_dir: Path, *, describe: Callable[[], dict] = dict,
                 chunk_size: int = CHUNK, adapter_dir: Path | None = None, training_dir: Path | None = None):
        from .remote_training import RemoteTraining

        self.api = api
        self.adapter_dir = adapter_dir or Path(cache_dir) / "adapters"  # bundles unpacked, by sha256
        self.training = RemoteTraining(self, training_dir or Path(cache_dir).parent / "training")
        self._train_fields: dict[str, dict] = {}  # job id -> step/total/loss for its next report
        self.blobs = RemoteBlobs(api, cache_dir, chunk_size=chunk_size)
        self.describe = describe  # () -> heartbeat fields (device, memory, models, queues, name)
        self._photos: dict[str, SimpleNamespace] = {}
        self.on_cancel: Callable[[str], None] | None = None
        self._reports_cv = threading.Condition()
        self._pending_reports: dict[str, dict] = {}
        self._report_state: dict[str, tuple[bool, bool]] = {}
        threading.Thread(target=self._send_reports, name="packshot-progress", daemon=True).start()

    def close(self) -> None:
        self.api.close()

    def claim(self, worker: str, job_id: str | None = None, stale_after_s: float | None = None) -> RemoteJob | None:
        if job_id is None:
            raise ValueError("a remote worker claims the job its message names")
        body = {"worker": worker, "stale_after_s": stale_after_s}
        r = self.api.call("POST", f"/worker/jobs/{job_id}/claim", json=body, allow=(404,))
        if r.status_code == 404:
            return None
        d = r.json()
        if not d["claimed"]:
            return None
        training = d.get("training")
        if len(self._photos) > 1000:
            self._photos.clear()
        for p in ([d["photo"]] if d.get("photo") else []) + (training["photos"] if training else []):
            self._photos[p["id"]] = SimpleNamespace(**p)  # the route's PhotoInfo fields
        with self._reports_cv:  # a job taken again starts from a clean slate
            self._report_state.pop(job_id, None)
        self.blobs.local.job = job_id  # this thread runs it: its downloads name it
        return RemoteJob(id=d["id"], product_id=d["product_id"], photo_id=d["photo_id"], request=d["request"],
                         attempts=d["attempts"], background=d.get("background"), adapters=d.get("adapters") or [],
                         training=training, kind="train" if training else "generate")

    def job_holder(self, job_id: str) -> tuple[str, str | None, datetime | None] | None:
        r = self.api.call("GET", f"/worker/jobs/{job_id}", allow=(404,))
        if r.status_code == 404:
            return None
        d = r.json()
        beat = datetime.fromisoformat(d["heartbeat_at"]) if d.get("heartbeat_at") else None
        return d["status"], d.get("worker"), beat

    def photo_by_id(self, photo_id: str) -> SimpleNamespace | None:
        return self._photos.get(photo_id)

    def photo_bytes(self, photo: SimpleNamespace) -> bytes:
        work = self.blobs.get_work(photo.blob_sha)
        return work if work is not None else self.blobs.get(photo.blob_sha)

    def background_photo(self, job: RemoteJob, max_pixels: int | None = None):
        """The job's uploaded background photo, decoded (its working copy when it has one), as
        :func:`packshot.store.backgrounds.background_photo` reads it on the server."""
        from ..io import load_image

        if not job.background:
            raise NotFoundError(f"job {job.id}: the server named no background photo")
        sha = job.background["blob_sha"]
        data = self.blobs.get_work(sha, job.id) or self.blobs.get(sha, job.id)
        return load_image(data, **({"max_pixels": max_pixels} if max_pixels else {}))

    def adapter_refs(self, job: RemoteJob) -> list[str]:
        """The job's adapters as ``["<local folder>:<weight>", ...]``: each bundle downloaded once
        (sha256 checked), unpacked whole into ``<adapter_dir>/<sha256>/`` and reused by later jobs."""
        from ..store.adapters import unpack_bundle

        out = []
        for a in job.adapters:
            folder = self.adapter_dir / a["sha"]
            if not folder.is_dir():
                self.adapter_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                unpack_bundle(self.blobs.get(a["sha"], job.id, cache=False), folder)
                prune_adapter_cache(self.adapter_dir)
            os.utime(folder)  # last used: the cache keeps the most recently used
            out.append(f"{folder}:{float(a['weight']):g}")
        return out

    def report(self, job_id: str, worker: str, progress: float | None = None, stage: str | None = None,
               message: str | None = None) -> tuple[bool, bool]:
        """Queue a progress report; returns (held, cancelled) as of the last answer. The reports go
        out from a background thread, newest only: a job never waits for a round trip to the
        server (tens of ms each, dozens per job), and a cancel is seen one report later."""
        body = {"worker": worker, "progress": progress, "stage": stage and stage[:40],
                "message": message and message[:500]}
        with self._reports_cv:
            body.update(self._train_fields.get(job_id, {}))
            self._pending_reports[job_id] = body
            self._reports_cv.notify()
            return self._report_state.get(job_id, (True, False))

    def train_fields(self, job_id: str, fields: dict) -> None:
        """A training job's step/total/loss, sent with its next progress report."""
        with self._reports_cv:
            self._train_fields[job_id] = {**self._train_fields.get(job_id, {}), **fields}

    def _send_reports(self) -> None:
        while True:
            with self._reports_cv:
                while not self._pending_reports:
                    self._reports_cv.wait()
                job_id, body = self._pending_reports.popitem()
            try:
                d = self.api.call("POST", f"/worker/jobs/{job_id}/progress", json=body).json()
            except WorkerKeyRefused:
                raise
            except Exception as e:  # the next report, or the heartbeat, tries again
                log.warning("progress of job %s: %s", job_id, e)
                continue
            with self._reports_cv:
                self._report_state[job_id] = (bool(d["held"]), bool(d["cancel"]))

    def beat(self, jobs: dict[str, str]) -> None:
        """One heartbeat: what this worker serves, and the jobs it holds (job id -> worker)."""
        body = {**self.describe(), "jobs": dict(jobs)}
        d = self.api.call("POST", "/worker/heartbeat", json=body).json()
        for jid in d.get("cancel", ()):
            if self.on_cancel is not None:
                self.on_cancel(jid)

    def heartbeat(self, job_ids: Iterable[str], worker_of: dict[str, str]) -> None:
        self.beat({j: worker_of[j] for j in job_ids})

    def _forget(self, job_id: str) -> None:
        with self._reports_cv:
            self._train_fields.pop(job_id, None)
            self._pending_reports.pop(job_id, None)
            self._report_state.pop(job_id, None)

    def finish(self, job_id: str, worker: str, results: list) -> bool:
        self._forget(job_id)
        body = {"worker": worker, "results": [_result_json(r) for r in results]}
        for attempt in range(3):
            r = self.api.call("POST", f"/worker/jobs/{job_id}/finish", json=body, allow=(409,))
            if r.status_code != 409:
                return bool(r.json()["written"])
            # a result blob went missing on the server (collected meanwhile): upload it again
            for res in results:
                if getattr(res, "data", b""):
                    self.blobs.put(res.data)
        raise ApiError(f"job {job_id}: the server kept refusing its results: {_detail(r)}")

    def fail(self, job_id: str, worker: str | None, status: str, error: str | None, message: str = "") -> bool:
        self._forget(job_id)
        body = {"worker": worker or "", "status": status, "error": error and error[:2000],
                "message": (message or "")[:500]}
        return bool(self.api.call("POST", f"/worker/jobs/{job_id}/fail", json=body).json()["done"])

    def release(self, job_id: str, worker: str) -> bool:
        self._forget(job_id)
        return bool(self.api.call("POST", f"/worker/jobs/{job_id}/release", json={"worker": worker}).json()["done"])

    def collect_garbage(self, shas: Iterable[str], grace_s: float = 0.0) -> int:
        shas = sorted(set(shas))
        if not shas:
            return 0
        return int(self.api.call("POST", "/worker/blobs/collect", json={"shas": shas}).json()["removed"])


def prune_adapter_cache(root: Path, keep: int = 32, min_age_s: float = 3600.0) -> int:
    """Remove unpacked adapter bundles beyond the ``keep`` most recently used, among those unused for
    ``min_age_s`` (a job running now keeps its own). Returns how many were removed."""
    import shutil

    now = time.time()
    folders = sorted((p for p in root.iterdir() if p.is_dir() and len(p.name) == 64),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    old = [p for p in folders[keep:] if now - p.stat().st_mtime > min_age_s]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return len(old)


def _result_json(r) -> dict[str, Any]:
    keys = ("rank", "seed", "engine", "prompt", "parameters", "scores", "generated", "blob_sha", "width", "height",
            "output_format")
    return {k: getattr(r, k) for k in keys}


# -- what the worker tells the operator ------------------------------------------------------------
def device_info(settings: Settings) -> dict[str, Any]:
    """Device name and memory: the GPU's (free/total) when jobs run on CUDA, else the host's."""
    import importlib.util

    device = (settings.device or "auto").lower()
    if device != "cpu" and importlib.util.find_spec("torch") is not None:
        try:
            from ..models.devices import select_device
            device = select_device(settings)
            if device.startswith("cuda"):
                import torch
                d = torch.device(device)
                free, total = torch.cuda.mem_get_info(d)
                return {"device": f"{device} ({torch.cuda.get_device_name(d)})"[:100], "free_memory": int(free),
                        "total_memory": int(total)}
        except Exception as e:  # no usable GPU: say so, run on the CPU
            log.warning("device: %s", e)
            device = "cpu"
    if device == "auto":
        device = "cpu"
    free, total = _host_memory()
    return {"device": device, "free_memory": free, "total_memory": total}


def _host_memory() -> tuple[int | None, int | None]:
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        return int(info["MemAvailable"].split()[0]) * 1024, int(info["MemTotal"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page
        except (ValueError, OSError, AttributeError):
            return None, None


def models_loaded(settings: Settings) -> list[str]:
    """The models resident in this process's model cache, as ``kind:folder``. Cache keys are
    nested tuples and strings holding the model's path, e.g. ``(device, dtype, "sam:/m/sam-vit-base")``
    or ``(device, dtype, ("diffusion", "/m/sd15-inpaint", ...))``."""
    from ..models import model_cache

    def flat(key):
        for part in key if isinstance(key, tuple) else (key,):
            yield from flat(part) if isinstance(part, tuple) else (str(part),)

    out = []
    for key in model_cache(settings).keys():
        parts = list(flat(key))
        i = next((j for j, p in enumerate(parts) if "/" in p or os.sep in p), None)
        if i is None:
            out.append(parts[-1] if parts else "?")
            continue
        kind, path = "", parts[i]
        if ":" in path and not path.startswith(("/", os.sep)):
            kind, path = path.split(":", 1)
        elif i > 0 and parts[i - 1].isidentifier() and parts[i - 1] != "auto":
            kind = parts[i - 1]
        name = Path(path).name or path
        out.append(f"{kind}:{name}" if kind else name)
    return out


class RemoteContext:
    """What a remote worker process keeps for all its tasks (cf. ``celery_app.WorkerContext``):
    the RemoteStore, one JobRunner (one Pipeline, one model cache) and a heartbeat thread."""

    def __init__(self, settings: Settings, *, queues: list[str], step_delay_s: float = 0.0,
                 stale_after_s: float = 60.0, concurrency: int = 1, beat_s: float | None = None,
                 chunk_size: int = CHUNK, name: str | None = None):
        from ..store import worker_name
        from .runner import JobRunner
        from .slots import ModelSlots

        if not settings.api_url or not settings.worker_key:
            raise ValueError("a remote worker needs api_url and worker_key")
        self.settings = settings
        self.stale_after_s = stale_after_s
        self.queues = list(queues)
        self.name = name or worker_name("w").rsplit(":", 1)[0]  # host:pid
        self.info = device_info(settings)
        self.beat_s = beat_s or max(0.5, min(5.0, stale_after_s / 5))
        api = WorkerApi(settings.api_url, settings.worker_key)
        self.store = RemoteStore(api, Path(settings.data_dir) / "cache", describe=self.describe,
                                 chunk_size=chunk_size, adapter_dir=Path(settings.model_dir) / "adapters" / ".remote")
        self.runner = JobRunner(self.store, settings, slots=ModelSlots(max(concurrency, 1)),
                                step_delay_s=step_delay_s, heartbeat_s=self.beat_s)
        self.store.on_cancel = self.runner.cancel
        self.store.beat({})  # checks the key and the URL now: a bad one stops the worker at start
        self._stop = threading.Event()
        threading.Thread(target=self._beat_loop, name="packshot-worker-beat", daemon=True).start()

    def describe(self) -> dict[str, Any]:
        info = dict(self.info)
        if not info["device"].startswith("cuda"):
            info["free_memory"], info["total_memory"] = _host_memory()
        else:
            info.update(device_info(self.settings))
        return {"name": self.name, "queues": self.queues, **info,
                "models_loaded": models_loaded(self.settings), "version": __version__}

    def active_jobs(self) -> dict[str, str]:
        with self.runner._lock:  # the runner's own map of job id -> worker name
            return dict(self.runner._active)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.beat_s):
            try:
                self.store.beat(self.active_jobs())
            except WorkerKeyRefused as e:  # revoked: stop taking jobs (a running one is taken over)
                print(f"packshot: error: {e}; stopping", flush=True)
                os._exit(2)
            except Exception as e:  # the server may be restarting: the next beat tries again
                log.warning("heartbeat failed: %s", e)

    def summary(self) -> str:
        mem = self.info.get("free_memory")
        free = f", {mem / 2**30:.1f} GiB free" if mem else ""
        loaded = models_loaded(self.settings)
        return (f"queues {','.join(self.queues)}; device {self.info['device']}{free}; resident models: "
                f"{', '.join(loaded) if loaded else 'none'} (at most {self.settings.resident_models}); "
                f"api {self.settings.api_url}; host {platform.node()}")


__all__ = ["RemoteStore", "RemoteBlobs", "RemoteContext", "WorkerApi", "ApiError", "WorkerKeyRefused",
           "device_info", "models_loaded"]
