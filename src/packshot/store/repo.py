"""Store: every read and write the API and the workers do, in one place.

All queries are scoped by ``owner`` (sha256 of the caller's API key; "" without keys): another
owner's id is simply not found (NotFoundError -> 404). Objects come back detached with their
columns loaded (``expire_on_commit=False``), ready to be turned into API schemas.

The jobs table is the queue. Claiming is one conditional UPDATE (``... WHERE id=:id AND
status='queued'``) whose row count says who won, on SQLite and PostgreSQL alike. A job's results
and its ``succeeded`` status are written in ONE transaction, conditional on the job still being
held by the writing worker: a job run twice (a worker killed, a message delivered again) can
never leave two sets of results, and result ids are derived from (job id, rank).

Blobs are shared by content, across owners. Taking a reference to a blob and deleting an unused
blob are serialised per blob: every transaction that adds a row naming a blob first takes that
blob's lock (a PostgreSQL transaction-scoped advisory lock; on SQLite the write transaction itself,
which is exclusive) and then makes sure the file exists, writing it again from the bytes it holds
if a collection removed it meanwhile; :meth:`Store.collect_garbage` takes the same lock, looks for
rows and removes the file in one transaction. So a delete racing an identical upload can never
leave a row naming a missing file, and files nothing refers to can be removed at once: no grace
period (the start-up sweep removes whatever a crash left).
"""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import Engine, and_, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..config import Settings
from ..errors import InvalidInputError, NotFoundError
from .blobs import BlobStore, _pid_alive  # noqa: F401  (BlobStore: the default backend)
from .db import make_engine, migrate
from .objects import open_blobs
from .models import BackgroundRow  # the seller's background photos (store/backgrounds.py)
from .models import AdapterRow  # trained adapters (store/adapters.py)
from .models import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, SUCCEEDED, Job, Photo, Product, \
    Result, as_utc, new_id, utcnow

HOST = socket.gethostname()


def result_id(job_id: str, rank: int) -> str:
    """Deterministic id of a job's rank-th result: writing it twice hits the same row."""
    return hashlib.sha256(f"{job_id}:{rank}".encode()).hexdigest()[:32]


def worker_name(n: int | str = 0) -> str:
    """``host:pid:n``: lets a restarted process on the same host see which holders are dead."""
    return f"{HOST}:{os.getpid()}:{n}"


def worker_is_dead(worker: str | None) -> bool:
    """True when ``worker`` names a process on THIS host that no longer exists."""
    if not worker:
        return True
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != HOST or not pid.isdigit():
        return False  # another machine: only its heartbeat can tell
    return int(pid) != os.getpid() and not _pid_alive(int(pid))


@dataclass
class NewResult:
    """A finished candidate, its image already in the blob store."""

    rank: int
    seed: int
    engine: str
    prompt: str
    parameters: dict[str, Any]
    scores: dict[str, float]
    generated: bool
    blob_sha: str
    width: int
    height: int
    output_format: str
    data: bytes = field(default=b"", repr=False)  # the image bytes, to write again if collected


@dataclass
class PhotoUpload:
    data: bytes
    media_type: str
    width: int
    height: int
    work: bytes | None = field(default=None, repr=False)  # normalised 8-bit sRGB PNG, if not the original


def _lock_key(sha: str) -> int:
    """A signed 64-bit advisory-lock key from a blob digest."""
    return int(sha[:16], 16) - (1 << 63)


class Store:
    """Database + blob store for one data dir. Thread-safe (a session per call)."""

    def __init__(self, settings: Settings, engine: Engine | None = None, *, run_migrations: bool = True):
        self.settings = settings
        self.engine = engine or make_engine(settings)
        self._write_engine = self.engine.execution_options(write=True)
        self._volatile_engine = self.engine.execution_options(write=True, durable=False)
        # SQLite has one writer at a time. Threads of this process queue on a Python lock (fair,
        # wakes at once) rather than in SQLite's busy handler (sleeps of up to 100 ms, no order);
        # other processes (Celery workers) still wait in the busy handler.
        self._write_lock = threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext()
        self.blobs = open_blobs(settings)  # the local folder, or S3 with settings.blob_url
        if run_migrations:
            migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[Session]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success. Never nest
        one in another (same thread): keep reads and blob work outside. ``durable=False``: for
        progress and heartbeats, which may be lost in a power cut (SQLite skips the fsync)."""
        engine = self._write_engine if durable else self._volatile_engine
        with self._write_lock, Session(engine, expire_on_commit=False) as s:
            with s.begin():
                yield s

    def ping(self) -> None:
        with self.read() as s:
            s.execute(select(1))

    # -- products ---------------------------------------------------------------------------
    def create_product(self, owner: str, name: str, photos: list[PhotoUpload]) -> Product:
        name = " ".join(str(name).split())
        if not name:
            raise InvalidInputError("name must not be empty")
        if len(name) > 200:
            raise InvalidInputError(f"name is {len(name)} characters long; the limit is 200")
        if not photos:
            raise InvalidInputError("a product needs at least one photo")
        shas = [self.blobs.put(p.data) for p in photos]  # blobs first (outside the lock)
        for p, sha in zip(photos, shas):
            if p.work is not None:
                self.blobs.put_work(sha, p.work)
        with self.write() as s:
            self._hold_blobs(s, shas)
            for p, sha in zip(photos, shas):
                self.blobs.ensure(self.blobs.path(sha), p.data)
                if p.work is not None:
                    self.blobs.put_work(sha, p.work)
            product = Product(id=new_id(), owner=owner, name=name, created_at=utcnow())
            for i, (p, sha) in enumerate(zip(photos, shas)):
                product.photos.append(Photo(id=new_id(), position=i, blob_sha=sha, media_type=p.media_type,
                                            width=p.width, height=p.height, created_at=utcnow()))
            s.add(product)
        return self.get_product(owner, product.id)

    def _result_counts(self, s: Session, product_ids: list[str]) -> dict[str, int]:
        if not product_ids:
            return {}
        rows = s.execute(select(Result.product_id, func.count()).where(Result.product_id.in_(product_ids))
                         .group_by(Result.product_id))
        return {pid: n for pid, n in rows}

    def get_product(self, owner: str, product_id: str) -> Product:
        with self.read() as s:
            product = s.scalar(select(Product).options(selectinload(Product.photos))
                               .where(Product.id == product_id, Product.owner == owner))
            if product is None:
                raise NotFoundError(f"product {product_id!r} not found")
            product.result_count = self._result_counts(s, [product.id]).get(product.id, 0)
            return product

    def list_products(self, owner: str, limit: int = 100, offset: int = 0) -> tuple[list[Product], int]:
        with self.read() as s:
            count = s.scalar(select(func.count()).select_from(Product).where(Product.owner == owner)) or 0
            items = list(s.scalars(select(Product).options(selectinload(Product.photos))
                                   .where(Product.owner == owner)
                                   .order_by(Product.created_at.desc(), Product.id)
                                   .limit(limit).offset(offset)))
            counts = self._result_counts(s, [p.id for p in items])
            for p in items:
                p.result_count = counts.get(p.id, 0)
            return items, count

    def delete_product(self, owner: str, product_id: str) -> int:
        """Delete a product with its photos, jobs and results; remove the blobs nobody else uses.
        Returns the number of blob files removed."""
        with self.write() as s:
            product = s.scalar(select(Product).where(Product.id == product_id, Product.owner == owner))
            if product is None:
                raise NotFoundError(f"product {product_id!r} not found")
            shas: set[str] = set()
            for row in s.execute(select(Photo.blob_sha, Photo.cutout_sha, Photo.auto_cutout_sha)
                                 .where(Photo.product_id == product_id)):
                shas.update(x for x in row if x)
            shas.update(s.scalars(select(Result.blob_sha).where(Result.product_id == product_id)))
            # explicit deletes (children first): no reliance on ON DELETE CASCADE being enforced
            s.execute(delete(Result).where(Result.product_id == product_id))
            s.execute(delete(AdapterRow).where(AdapterRow.product_id == product_id))
            s.execute(delete(Job).where(Job.product_id == product_id))
            s.execute(delete(Photo).where(Photo.product_id == product_id))
            s.execute(delete(Product).where(Product.id == product_id))
        return self.collect_garbage(shas)

    # -- photos -----------------------------------------------------------------------------
    def get_photo(self, owner: str, photo_id: str) -> Photo:
        with self.read() as s:
            photo = s.scalar(select(Photo).join(Product).where(Photo.id == photo_id, Product.owner == owner))
            if photo is None:
                raise NotFoundError(f"photo {photo_id!r} not found")
            return photo

    def photo_bytes(self, photo: Photo) -> bytes:
        """The bytes to decode for a photo: its normalised working copy when the upload needed one
        (float, 16-bit, CMYK, formats a browser cannot show), else the original."""
        work = self.blobs.get_work(photo.blob_sha)
        return work if work is not None else self.blobs.get(photo.blob_sha)

    def photo_by_id(self, photo_id: str) -> Photo | None:
        """Unscoped (workers): the photo or None."""
        with self.read() as s:
            return s.get(Photo, photo_id)

    def set_cutout(self, owner: str, photo_id: str, data: bytes, engine: str, bbox: list[int]) -> Photo:
        sha = self.blobs.put(data)
        with self.write() as s:
            self._hold_blobs(s, [sha])
            photo = s.scalar(select(Photo).join(Product).where(Photo.id == photo_id, Product.owner == owner))
            if photo is None:
                raise NotFoundError(f"photo {photo_id!r} not found")
            self.blobs.ensure(self.blobs.path(sha), data)
            old = photo.cutout_sha
            photo.cutout_sha, photo.cutout_engine, photo.cutout_bbox = sha, engine, list(bbox)
        if old and old != sha:
            self.collect_garbage([old])
        return photo

    def set_auto_cutout(self, photo_id: str, data: bytes) -> str:
        sha = self.blobs.put(data)
        with self.write() as s:
            self._hold_blobs(s, [sha])
            n = s.execute(update(Photo).where(Photo.id == photo_id).values(auto_cutout_sha=sha)).rowcount
            if n:
                self.blobs.ensure(self.blobs.path(sha), data)
        if not n:  # the photo was deleted meanwhile
            self.collect_garbage([sha])
        return sha

    # -- jobs: API side ---------------------------------------------------------------------
    def job_photo(self, owner: str, product_id: str, photo_id: str | None = None) -> Photo:
        """The photo a job on ``product_id`` would use: ``photo_id``, or the product's first one."""
        with self.read() as s:
            q = select(Photo).join(Product).where(Product.id == product_id, Product.owner == owner)
            photo = s.scalar(q.where(Photo.id == photo_id) if photo_id else q.order_by(Photo.position).limit(1))
            if photo is None:
                if photo_id and s.scalar(select(Product.id).where(Product.id == product_id, Product.owner == owner)):
                    raise NotFoundError(f"photo {photo_id!r} not found in product {product_id!r}")
                raise NotFoundError(f"product {product_id!r} not found")
            return photo

    def create_job(self, owner: str, product_id: str, photo_id: str | None, request: dict[str, Any]) -> Job:
        """Queue a job (committed before this returns: a job the API accepted is never lost)."""
        with self.write() as s:
            q = select(Photo.id).join(Product).where(Product.id == product_id, Product.owner == owner)
            found = s.scalar(q.where(Photo.id == photo_id) if photo_id else q.order_by(Photo.position).limit(1))
            if found is None:  # also when the product was deleted meanwhile
                raise NotFoundError(f"product {product_id!r} or its photo {photo_id!r} not found")
            now = utcnow()
            job = Job(id=new_id(), owner=owner, product_id=product_id, photo_id=found, status=QUEUED,
                      progress=0.0, stage="queued", message="waiting for a model slot", request=request,
                      cancel_requested=False, attempts=0, created_at=now, updated_at=now)
            s.add(job)
        job.result_ids = []
        return job

    def _attach_result_ids(self, s: Session, jobs: list[Job]) -> None:
        ids = [j.id for j in jobs]
        by_job: dict[str, list[str]] = {i: [] for i in ids}
        if ids:
            for jid, rid in s.execute(select(Result.job_id, Result.id).where(Result.job_id.in_(ids))
                                      .order_by(Result.job_id, Result.rank)):
                by_job[jid].append(rid)
        for j in jobs:
            j.result_ids = by_job[j.id]

    def get_job(self, owner: str | None, job_id: str) -> Job:
        """``owner=None``: unscoped (workers)."""
        with self.read() as s:
            q = select(Job).where(Job.id == job_id)
            if owner is not None:
                q = q.where(Job.owner == owner)
            job = s.scalar(q)
            if job is None:
                raise NotFoundError(f"job {job_id!r} not found")
            self._attach_result_ids(s, [job])
            return job

    def list_jobs(self, owner: str, product_id: str | None = None, status: str | None = None,
                  limit: int = 100, offset: int = 0, kind: str | None = None) -> tuple[list[Job], int]:
        with self.read() as s:
            cond = [Job.owner == owner] + ([Job.kind == kind] if kind else [])
            if product_id is not None:
                cond.append(Job.product_id == product_id)
            if status is not None:
                cond.append(Job.status == status)
            count = s.scalar(select(func.count()).select_from(Job).where(*cond)) or 0
            jobs = list(s.scalars(select(Job).where(*cond).order_by(Job.created_at.desc(), Job.id)
                                  .limit(limit).offset(offset)))
            self._attach_result_ids(s, jobs)
            return jobs, count

    def cancel_job(self, owner: str, job_id: str) -> Job:
        """Queued: cancelled at once. Running: flagged; the worker stops at its next progress
        report. Finished: unchanged."""
        with self.write() as s:
            job = s.scalar(select(Job).where(Job.id == job_id, Job.owner == owner))
            if job is None:
                raise NotFoundError(f"job {job_id!r} not found")
            now = utcnow()
            done = s.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED).values(
                status=CANCELLED, cancel_requested=True, message="cancelled before it started",
                updated_at=now, finished_at=now)).rowcount
            if not done:
                s.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING).values(
                    cancel_requested=True, message="cancelling", updated_at=now))
        return self.get_job(owner, job_id)

    def job_counts(self) -> dict[str, int]:
        with self.read() as s:
            return {st: n for st, n in s.execute(select(Job.status, func.count()).group_by(Job.status))}

    # -- jobs: worker side ------------------------------------------------------------------
    def claim(self, worker: str, job_id: str | None = None, stale_after_s: float | None = None) -> Job | None:
        """Take a job to run: ``job_id`` (celery) or the oldest queued one (local workers).

        A job can be taken when it is queued, or (with ``stale_after_s``) running under a holder
        that is dead (same host, pid gone) or silent for longer than ``stale_after_s``. One atomic
        conditional UPDATE decides the winner. Returns the job, or None when there is nothing to
        take (unknown, finished, cancelled, or held by a live worker).
        """
        now = utcnow()
        with self.write() as s:
            if job_id is None:
                candidates = list(s.scalars(select(Job.id).where(Job.status == QUEUED)
                                            .order_by(Job.created_at, Job.id).limit(8)))
            else:
                candidates = [job_id]
            for jid in candidates:
                row = s.execute(select(Job.status, Job.worker, Job.heartbeat_at, Job.cancel_requested)
                                .where(Job.id == jid)).first()
                if row is None:
                    continue
                status, holder, beat, cancel = row
                cond = [Job.id == jid]
                if status == QUEUED:
                    cond.append(Job.status == QUEUED)
                elif status == RUNNING and stale_after_s is not None and (
                        worker_is_dead(holder) or beat is None
                        or as_utc(beat) < now - timedelta(seconds=stale_after_s)):
                    cond += [Job.status == RUNNING, Job.worker == holder]
                else:
                    continue
                if cancel:
                    s.execute(update(Job).where(*cond).values(
                        status=CANCELLED, message="cancelled", updated_at=now, finished_at=now))
                    continue
                won = s.execute(update(Job).where(*cond).values(
                    status=RUNNING, worker=worker, attempts=Job.attempts + 1, started_at=now,
                    heartbeat_at=now, updated_at=now, stage="starting", message="starting",
                    error=None)).rowcount
                if won:
                    return s.get(Job, jid)
        return None

    def job_holder(self, job_id: str) -> tuple[str, str | None, datetime | None] | None:
        with self.read() as s:
            row = s.execute(select(Job.status, Job.worker, Job.heartbeat_at).where(Job.id == job_id)).first()
            return None if row is None else (row[0], row[1], as_utc(row[2]))

    def report(self, job_id: str, worker: str, progress: float | None = None, stage: str | None = None,
               message: str | None = None) -> tuple[bool, bool]:
        """Progress + heartbeat from the holder. Returns (still_held, cancel_requested)."""
        now = utcnow()
        values: dict[str, Any] = {"heartbeat_at": now}
        if progress is not None:
            values.update(progress=float(progress), updated_at=now)
        if stage is not None:
            values["stage"] = stage[:40]
        if message is not None:
            values["message"] = message[:500]
        with self.write(durable=False) as s:
            n = s.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == RUNNING)
                          .values(**values)).rowcount
            if not n:
                return False, True
            cancel = bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))
        return True, cancel

    def heartbeat(self, job_ids: Iterable[str], worker_of: dict[str, str]) -> None:
        now = utcnow()
        with self.write(durable=False) as s:
            for jid in job_ids:
                s.execute(update(Job).where(Job.id == jid, Job.worker == worker_of[jid], Job.status == RUNNING)
                          .values(heartbeat_at=now))

    def finish(self, job_id: str, worker: str, results: list[NewResult]) -> bool:
        """Write the results and mark the job succeeded, in one transaction, only if ``worker``
        still holds it. Returns False (nothing written) otherwise."""
        now = utcnow()
        try:
            with self.write() as s:
                job = s.scalar(select(Job).where(Job.id == job_id, Job.worker == worker, Job.status == RUNNING))
                if job is None:
                    return False
                self._hold_blobs(s, [r.blob_sha for r in results])
                for r in results:
                    if r.data:
                        self.blobs.ensure(self.blobs.path(r.blob_sha), r.data)
                existing = set(s.scalars(select(Result.rank).where(Result.job_id == job_id)))
                for r in results:
                    if r.rank in existing:
                        continue
                    s.add(Result(id=result_id(job_id, r.rank), job_id=job_id, product_id=job.product_id,
                                 photo_id=job.photo_id, owner=job.owner, rank=r.rank, seed=r.seed,
                                 engine=r.engine, prompt=r.prompt, parameters=r.parameters, scores=r.scores,
                                 generated=r.generated, blob_sha=r.blob_sha, width=r.width, height=r.height,
                                 output_format=r.output_format, rating=None, saved=False, created_at=now))
                s.flush()
                n = s.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == RUNNING)
                              .values(status=SUCCEEDED, progress=1.0, stage="done",
                                      message=f"{len(results)} result(s)", updated_at=now, finished_at=now,
                                      heartbeat_at=now)).rowcount
                if not n:
                    raise _Abort()
        except _Abort:
            return False
        except IntegrityError:  # another holder wrote them first (cannot happen while held; belt and braces)
            return False
        return True

    def fail(self, job_id: str, worker: str | None, status: str, error: str | None, message: str = "") -> bool:
        assert status in (FAILED, CANCELLED)
        from ..redact import redact  # clients read these: no server paths (the log has them)

        error, message = redact(error, self.settings) if error else error, redact(message, self.settings)
        now = utcnow()
        cond = [Job.id == job_id, Job.status.in_((QUEUED, RUNNING))]
        if worker is not None:
            cond.append(Job.worker == worker)
        with self.write() as s:
            return bool(s.execute(update(Job).where(*cond).values(
                status=status, error=error, message=message or (error or status), updated_at=now,
                finished_at=now)).rowcount)

    def release(self, job_id: str, worker: str) -> bool:
        """Give a running job back to the queue (graceful shutdown)."""
        with self.write() as s:
            return bool(s.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == RUNNING)
                                  .values(status=QUEUED, worker=None, stage="queued",
                                          message="requeued", updated_at=utcnow())).rowcount)

    def requeue_interrupted(self, stale_after_s: float) -> list[str]:
        """Running jobs whose holder is dead (same host) or silent for ``stale_after_s``: back to
        queued. Returns their ids."""
        now = utcnow()
        cutoff = now - timedelta(seconds=stale_after_s)
        out = []
        with self.write() as s:
            rows = s.execute(select(Job.id, Job.worker, Job.heartbeat_at).where(Job.status == RUNNING)).all()
            for jid, holder, beat in rows:
                if worker_is_dead(holder) or beat is None or as_utc(beat) < cutoff:
                    n = s.execute(update(Job).where(Job.id == jid, Job.status == RUNNING, Job.worker == holder)
                                  .values(status=QUEUED, worker=None, stage="queued",
                                          message="interrupted; queued again", updated_at=now)).rowcount
                    if n:
                        out.append(jid)
        return out

    def queued_ids(self) -> list[str]:
        with self.read() as s:
            return list(s.scalars(select(Job.id).where(Job.status == QUEUED).order_by(Job.created_at, Job.id)))

    # -- results ----------------------------------------------------------------------------
    def get_result(self, owner: str, result_id_: str) -> Result:
        with self.read() as s:
            r = s.scalar(select(Result).where(Result.id == result_id_, Result.owner == owner))
            if r is None:
                raise NotFoundError(f"result {result_id_!r} not found")
            return r

    def history(self, owner: str, product_id: str, saved: bool | None = None, min_rating: int | None = None,
                limit: int = 200, offset: int = 0) -> tuple[list[Result], int]:
        self.get_product(owner, product_id)  # 404 for unknown / another key's product
        cond = [Result.product_id == product_id, Result.owner == owner]
        if saved is not None:
            cond.append(Result.saved == saved)
        if min_rating is not None:
            cond.append(and_(Result.rating.is_not(None), Result.rating >= min_rating))
        with self.read() as s:
            count = s.scalar(select(func.count()).select_from(Result).where(*cond)) or 0
            items = list(s.scalars(select(Result).where(*cond)
                                   .order_by(Result.created_at.desc(), Result.job_id, Result.rank)
                                   .limit(limit).offset(offset)))
            return items, count

    def update_result(self, owner: str, result_id_: str, **values: Any) -> Result:
        with self.write() as s:
            n = s.execute(update(Result).where(Result.id == result_id_, Result.owner == owner)
                          .values(**values)).rowcount
            if not n:
                raise NotFoundError(f"result {result_id_!r} not found")
        return self.get_result(owner, result_id_)

    def delete_result(self, owner: str, result_id_: str) -> None:
        with self.write() as s:
            r = s.scalar(select(Result).where(Result.id == result_id_, Result.owner == owner))
            if r is None:
                raise NotFoundError(f"result {result_id_!r} not found")
            sha = r.blob_sha
            s.delete(r)
        self.collect_garbage([sha])

    # -- blobs ------------------------------------------------------------------------------
    def _hold_blobs(self, s: Session, shas: Iterable[str]) -> None:
        """Take the per-blob locks (see the module doc) for the rest of transaction ``s``. On
        SQLite the write transaction is already exclusive."""
        if self.engine.dialect.name == "postgresql":
            for key in sorted({_lock_key(sha) for sha in shas}):  # one order: no deadlock
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def referenced(self, s: Session, shas: Iterable[str]) -> set[str]:
        shas = list(set(shas))
        used: set[str] = set()
        for i in range(0, len(shas), 500):
            chunk = shas[i:i + 500]
            used.update(s.scalars(select(Photo.blob_sha).where(Photo.blob_sha.in_(chunk))))
            used.update(s.scalars(select(Photo.cutout_sha).where(Photo.cutout_sha.in_(chunk))))
            used.update(s.scalars(select(Photo.auto_cutout_sha).where(Photo.auto_cutout_sha.in_(chunk))))
            used.update(s.scalars(select(Result.blob_sha).where(Result.blob_sha.in_(chunk))))
            used.update(s.scalars(select(BackgroundRow.blob_sha).where(BackgroundRow.blob_sha.in_(chunk))))
        return used

    def collect_garbage(self, shas: Iterable[str], grace_s: float = 0.0) -> int:
        """Delete the blobs among ``shas`` that no row refers to (and, with ``grace_s``, that were
        not written in the last ``grace_s`` seconds), each checked and removed under its lock.
        Returns how many blobs were removed."""
        shas = sorted(set(shas))
        removed = 0
        cutoff = time.time() - grace_s if grace_s else None
        for i in range(0, len(shas), 200):  # short transactions: uploads wait at most one chunk
            chunk = shas[i:i + 200]
            with self.write() as s:
                self._hold_blobs(s, chunk)
                unused = set(chunk) - self.referenced(s, chunk)
                removed += sum(self.blobs.delete(sha, older_than=cutoff) for sha in sorted(unused))
        return removed

    def sweep_blobs(self, grace_s: float = 0.0) -> int:
        """Remove blob files no row refers to (left by a crash between writing a job's images and
        committing them, or by a delete cut short), and temp files of dead writers. Safe while
        uploads and jobs run (see the module doc)."""
        self.blobs.sweep_temp()
        candidates: list[str] = []
        every = list(self.blobs)
        for i in range(0, len(every), 2000):
            chunk = every[i:i + 2000]
            with self.read() as s:
                candidates += sorted(set(chunk) - self.referenced(s, chunk))
        return self.collect_garbage(candidates, grace_s=grace_s)


class _Abort(Exception):
    pass


__all__ = ["Store", "NewResult", "PhotoUpload", "result_id", "worker_name", "worker_is_dead",
           "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "FINISHED"]
