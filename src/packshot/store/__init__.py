"""Storage: SQLAlchemy 2 models, Alembic migrations and a content-addressed blob store on disk.

``Store(settings)`` opens (and migrates) the database named by ``settings.database_url`` (default:
SQLite in WAL mode at ``<data_dir>/packshot.db``) and the blob store at ``<data_dir>/blobs``.
Heavy imports (SQLAlchemy, Alembic) happen when this package is imported: the CLI imports it only
inside ``serve``/``worker``.
"""
from __future__ import annotations

from .blobs import BlobStore, sha256_hex
from .models import CANCELLED, FAILED, FINISHED, JOB_STATUSES, QUEUED, RUNNING, SUCCEEDED, Job, Photo, \
    Product, Result
from .repo import NewResult, PhotoUpload, Store, result_id, worker_is_dead, worker_name

__all__ = ["Store", "BlobStore", "NewResult", "PhotoUpload", "Product", "Photo", "Job", "Result",
           "result_id", "worker_name", "worker_is_dead", "sha256_hex", "JOB_STATUSES",
           "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "FINISHED"]
