"""Worker keys and worker heartbeats (remote workers that talk to the API, issue 15).

* A worker key is a separate kind of credential from an API key: ``pswk_`` + 43 random URL-safe
  characters, shown once when created; only its sha256 is stored. It is valid only on the worker
  routes (``/api/v1/worker/...``) and can be revoked; a revoked key is refused at its next request.
* Each worker process sends a heartbeat every few seconds (device, free memory, the jobs it runs,
  the models it holds); the newest one per worker is kept for ``GET /api/v1/workers`` and for
  /metrics.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from ..errors import InvalidInputError, NotFoundError
from .models import WorkerBeat, WorkerKey, new_id, utcnow

KEY_PREFIX = "pswk_"


def hash_worker_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class WorkerRegistry:
    """Worker keys and heartbeats in a :class:`~packshot.store.Store`'s database."""

    def __init__(self, store):
        self.store = store

    # -- keys --------------------------------------------------------------------------------
    def create_key(self, name: str) -> tuple[WorkerKey, str]:
        """A new key named ``name``: returns (row, the plain key; shown once, never stored)."""
        name = " ".join(str(name).split())
        if not name or len(name) > 100 or "\x00" in name:
            raise InvalidInputError(f"worker key name {name[:40]!r} must be 1-100 printable characters")
        plain = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.store.write() as s:
            row = WorkerKey(id=new_id(), name=name, key_hash=hash_worker_key(plain), created_at=utcnow())
            s.add(row)
        return row, plain

    def revoke_key(self, ref: str) -> WorkerKey:
        """Revoke the key whose id or name is ``ref`` (every live key of that name)."""
        now = utcnow()
        with self.store.write() as s:
            rows = list(s.scalars(select(WorkerKey).where(or_(WorkerKey.id == ref, WorkerKey.name == ref))))
            if not rows:
                raise NotFoundError(f"worker key {ref!r} not found (give its id or name)")
            for row in rows:
                if row.revoked_at is None:
                    row.revoked_at = now
        return rows[0]

    def list_keys(self) -> list[WorkerKey]:
        with self.store.read() as s:
            return list(s.scalars(select(WorkerKey).order_by(WorkerKey.created_at)))

    def check_key(self, plain: str) -> WorkerKey | None:
        """The live key row for ``plain``, or None (unknown or revoked)."""
        if not plain or not plain.startswith(KEY_PREFIX):
            return None
        with self.store.read() as s:
            row = s.scalar(select(WorkerKey).where(WorkerKey.key_hash == hash_worker_key(plain)))
        return row if row is not None and row.revoked_at is None else None

    # -- heartbeats --------------------------------------------------------------------------
    def beat(self, name: str, key_id: str, info: dict[str, Any]) -> None:
        """Record a worker's heartbeat (insert or update its row)."""
        now = utcnow()
        fields = {k: info.get(k) for k in ("queues", "device", "free_memory", "total_memory", "current_jobs",
                                           "models_loaded", "version")}
        fields["device"] = str(fields["device"] or "")[:100]
        fields["version"] = str(fields["version"] or "")[:40]
        with self.store.write(durable=False) as s:
            n = s.execute(update(WorkerBeat).where(WorkerBeat.name == name)
                          .values(key_id=key_id, last_seen=now, **fields)).rowcount
            if not n:
                s.add(WorkerBeat(name=name, key_id=key_id, started_at=now, last_seen=now, **fields))

    def beats(self, within_s: float | None = 3600.0) -> list[WorkerBeat]:
        """Heartbeats, newest first; ``within_s``: only workers seen in the last that many seconds."""
        q = select(WorkerBeat).order_by(WorkerBeat.last_seen.desc(), WorkerBeat.name)
        if within_s is not None:
            q = q.where(WorkerBeat.last_seen >= utcnow() - timedelta(seconds=within_s))
        with self.store.read() as s:
            return list(s.scalars(q))


__all__ = ["WorkerRegistry", "hash_worker_key", "KEY_PREFIX"]
