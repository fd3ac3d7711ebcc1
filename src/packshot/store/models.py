"""SQLAlchemy 2 models: products, photos, jobs (the persistent queue) and results.

Images never live in rows: ``*_sha`` columns name blobs in the content-addressed
:class:`~packshot.store.blobs.BlobStore`. ``owner`` is the sha256 hex of the API key that created
the row ("" when the server runs without keys); keys themselves are never stored.

Timestamps are UTC (``DateTime(timezone=True)``; SQLite hands them back naive, read them as UTC).
The schema is created and upgraded by the Alembic migrations in ``store/migrations`` only.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, \
    UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Job statuses. queued -> running -> succeeded | failed | cancelled; running -> queued on recovery.
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
JOB_STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: they are UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def new_id() -> str:
    """Opaque id: uuid4 hex (32 chars)."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    photos: Mapped[list["Photo"]] = relationship(
        back_populates="product", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Photo.position")


class Photo(Base):
    """One uploaded photo. ``blob_sha``: the original bytes as uploaded (never re-encoded).

    ``cutout_sha``: the committed cutout (RGBA PNG), set by PUT .../cutout; ``auto_cutout_sha``:
    the automatic cutout, computed once on demand. ``width``/``height`` are after EXIF rotation:
    the pixel space every hint (points, boxes) refers to.
    """

    __tablename__ = "photos"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    blob_sha: Mapped[str] = mapped_column(String(64), index=True)
    media_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    cutout_sha: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    cutout_engine: Mapped[str | None] = mapped_column(String(40), default=None)
    cutout_bbox: Mapped[list | None] = mapped_column(JSON, default=None)
    auto_cutout_sha: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    product: Mapped[Product] = relationship(back_populates="photos")


class Job(Base):
    """A generation job; the table is the queue (claimed with an atomic conditional UPDATE).

    ``request`` is the validated GenerateRequest as JSON with its seed fixed at submission, so a
    job that runs again (after a crash) makes the very same images. ``worker`` names the process
    that holds it (``host:pid:n``); ``heartbeat_at`` is refreshed while it runs, so a job whose
    worker died can be told from one still running elsewhere.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    photo_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(40), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    # "generate", or "train": a training job (request = TrainRequest; its AdapterRow has the same id)
    kind: Mapped[str] = mapped_column(String(16), default="generate", server_default="generate")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)


class Result(Base):
    """One candidate image of a job. ``id`` is derived from (job id, rank), and (job_id, rank) is
    unique: writing a job's results twice can never make duplicates."""

    __tablename__ = "results"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    photo_id: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(64), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)  # 0..2**32-1 does not fit a PostgreSQL INTEGER
    engine: Mapped[str] = mapped_column(String(40))
    prompt: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    generated: Mapped[bool] = mapped_column(Boolean, default=False)
    blob_sha: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    output_format: Mapped[str] = mapped_column(String(8), default="png")
    rating: Mapped[int | None] = mapped_column(Integer, default=None)
    saved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("job_id", "rank", name="uq_results_job_rank"),
                      Index("ix_results_product_created", "product_id", "created_at"))


class WorkerKey(Base):
    """A credential for remote workers (``packshot worker --api URL --worker-key KEY``): separate
    from API keys, valid only on the worker routes. Only its sha256 is stored; ``revoked_at`` set =
    refused from then on."""

    __tablename__ = "worker_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class WorkerBeat(Base):
    """The last heartbeat of one worker process (``/api/v1/workers``)."""

    __tablename__ = "worker_beats"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    queues: Mapped[list | None] = mapped_column(JSON, default=None)
    device: Mapped[str] = mapped_column(String(100), default="")
    free_memory: Mapped[int | None] = mapped_column(BigInteger, default=None)
    total_memory: Mapped[int | None] = mapped_column(BigInteger, default=None)
    current_jobs: Mapped[list | None] = mapped_column(JSON, default=None)
    models_loaded: Mapped[list | None] = mapped_column(JSON, default=None)
    version: Mapped[str] = mapped_column(String(40), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LookRow(Base):
    """A saved look (scene recipe, :mod:`packshot.looks`) of one owner; names are unique per owner."""

    __tablename__ = "looks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(80))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("owner", "name", name="uq_looks_owner_name"),)


class BatchRow(Base):
    """A catalog run over HTTP (:mod:`packshot.api.routes.batches`): per product a main-image job and
    a lifestyle job. ``items``: [{sku, product_id, main_job, lifestyle_job, error}]; the batch's
    status is read from its jobs."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    items: Mapped[list] = mapped_column(JSON)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BackgroundRow(Base):
    """A seller's own background photo uploaded over HTTP (``POST /api/v1/backgrounds``); jobs name
    it with ``background_id``. ``blob_sha``: the bytes as uploaded (a working copy next to it when
    the upload needed one), like :class:`Photo`."""

    __tablename__ = "backgrounds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    blob_sha: Mapped[str] = mapped_column(String(64), index=True)
    media_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdapterRow(Base):
    """A model trained on a product's photos (issue 12; ``POST /api/v1/products/{id}/adapters``).

    Its training job is the jobs row with the same id and ``kind = 'train'`` (the queue, claim,
    heartbeat, cancel and redelivery are the jobs'; the status is read from that job). This row
    keeps the live ``step``/``total``/``loss``, the step a killed run resumed from, the photos it
    learned from and, once done, the adapter folder's metadata (``packshot_adapter.json``).
    ``folder``: relative to the data dir (``adapters/<id>``), never shown to clients."""

    __tablename__ = "adapters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    method: Mapped[str] = mapped_column(String(40))
    base: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    loss: Mapped[float | None] = mapped_column(Float, default=None)
    resumed_from: Mapped[int | None] = mapped_column(Integer, default=None)
    photo_ids: Mapped[list] = mapped_column(JSON)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    folder: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
