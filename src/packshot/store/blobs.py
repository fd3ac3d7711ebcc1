"""Content-addressed blob store on disk: ``ROOT/ab/cd/abcdef...`` where the name is the sha256 hex
of the bytes.

* Writes are atomic (temp file in the same folder + rename): a blob either exists whole or not at
  all, and two writers of the same bytes produce the same file.
* Paths are built only from a validated 64-char hex digest: client file names never reach the disk.
* Rows refer to blobs by digest; which blobs are still used is the database's business
  (:meth:`packshot.store.Store.collect_garbage`).
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path
from typing import Iterator

from ..errors import NotFoundError
from ..io import write_atomic

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            raise NotFoundError(f"blob {sha!r} is not a sha256 hex digest")
        return self.root / sha[:2] / sha[2:4] / sha

    def put(self, data: bytes) -> str:
        """Store ``data``; return its sha256 hex. Idempotent; refreshes the mtime of an existing
        blob so a concurrent garbage collection (which spares recent files) keeps it."""
        sha = sha256_hex(data)
        path = self.path(sha)
        if path.exists():
            try:
                os.utime(path)
                return sha
            except FileNotFoundError:  # collected in between: write it again
                pass
        write_atomic(path, data)
        return sha

    def get(self, sha: str) -> bytes:
        try:
            return self.path(sha).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {sha} is missing from the store") from None

    def exists(self, sha: str) -> bool:
        return self.path(sha).exists()

    def delete(self, sha: str, *, older_than: float | None = None) -> bool:
        """Remove a blob; with ``older_than`` (epoch seconds) only if its mtime is older."""
        path = self.path(sha)
        try:
            if older_than is not None and path.stat().st_mtime >= older_than:
                return False
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def __iter__(self) -> Iterator[str]:
        for path in self.root.glob("??/??/*"):
            if _SHA_RE.match(path.name):
                yield path.name

    def sweep_temp(self, max_age_s: float = 3600) -> int:
        """Remove temp files left by writers that died mid-write."""
        n, now = 0, time.time()
        for path in self.root.glob("??/??/.*.tmp"):
            try:
                if now - path.stat().st_mtime > max_age_s:
                    path.unlink()
                    n += 1
            except FileNotFoundError:
                pass
        return n
