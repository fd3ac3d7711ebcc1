"""Content-addressed blob store on disk: ``ROOT/ab/cd/abcdef...`` where the name is the sha256 hex
of the bytes.

* Writes are atomic (temp file in the same folder + rename): a blob either exists whole or not at
  all, and two writers of the same bytes produce the same file.
* Paths are built only from a validated 64-char hex digest: client file names never reach the disk.
* A photo's normalised working copy (8-bit sRGB PNG, decoded once at upload) lives next to its
  original as ``<sha>.work``: it is kept and removed together with the original.
* Rows refer to blobs by digest; which blobs are still used is the database's business
  (:meth:`packshot.store.Store.collect_garbage`, which deletes a file only under the same lock that
  every reference-taking transaction holds while it makes sure its files exist).
* File modes: blobs are 0600 and their folders 0700 whatever the umask (the data dir holds users'
  photos; only the server's user reads it). See ``benchmarks/README-api.md`` ("File modes").
"""
from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

from ..errors import NotFoundError

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^([0-9a-f]{64})(\.work)?$")
WORK_SUFFIX = ".work"
# temp files carry their writer's host and pid: a restart removes those of dead writers at once
_HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BlobStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.mkdir(exist_ok=True, mode=0o700)

    def path(self, sha: str) -> Path:
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            raise NotFoundError(f"blob {sha!r} is not a sha256 hex digest")
        return self.root / sha[:2] / sha[2:4] / sha

    def work_path(self, sha: str) -> Path:
        p = self.path(sha)
        return p.with_name(p.name + WORK_SUFFIX)

    def _write(self, path: Path, data: bytes) -> None:
        """Atomic write, mode 0600 (mkstemp), folders 0700; the temp name says who writes it."""
        for folder in (path.parent.parent, path.parent):  # each level 0700 (parents=True would not)
            folder.mkdir(exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST_TAG}-{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def put(self, data: bytes) -> str:
        """Store ``data``; return its sha256 hex. Idempotent."""
        sha = sha256_hex(data)
        self.ensure(self.path(sha), data)
        return sha

    def put_work(self, sha: str, data: bytes) -> None:
        """Store the working copy of blob ``sha``."""
        self.ensure(self.work_path(sha), data)

    def ensure(self, path: Path, data: bytes) -> None:
        """Make sure ``path`` holds ``data`` (written again if a collection removed it)."""
        try:
            os.utime(path)
            return
        except FileNotFoundError:
            pass
        self._write(path, data)

    def get(self, sha: str) -> bytes:
        try:
            return self.path(sha).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {sha} is missing from the store") from None

    def get_work(self, sha: str) -> bytes | None:
        """The working copy of blob ``sha``, or None when the original is its own working copy."""
        try:
            return self.work_path(sha).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, sha: str) -> bool:
        return self.path(sha).exists()

    def delete(self, sha: str, *, older_than: float | None = None) -> bool:
        """Remove a blob and its working copy; with ``older_than`` (epoch seconds) only if its mtime
        is older. True when a file was removed."""
        path = self.path(sha)
        removed = False
        for p in (path, self.work_path(sha)):
            try:
                if older_than is not None and p.stat().st_mtime >= older_than:
                    continue
                p.unlink()
                removed = True
            except FileNotFoundError:
                pass
        return removed

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for path in self.root.glob("??/??/*"):
            m = _NAME_RE.match(path.name)
            if m and m.group(1) not in seen:
                seen.add(m.group(1))
                yield m.group(1)

    def files(self) -> list[Path]:
        """Every file under the root (blobs, working copies, temp files)."""
        return [p for p in self.root.rglob("*") if p.is_file()]

    def sweep_temp(self, max_age_s: float = 3600) -> int:
        """Remove temp files left by writers that died mid-write: at once when the writer was a
        process of this host that no longer exists, else after ``max_age_s``."""
        n, now = 0, time.time()
        for path in self.root.glob("??/??/.*.tmp"):
            try:
                tag = path.name.rsplit(".", 3)[-3] if path.name.count(".") >= 3 else ""
                host, _, pid = tag.partition("-")
                dead = host == _HOST_TAG and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid))
                if dead or now - path.stat().st_mtime > max_age_s:
                    path.unlink()
                    n += 1
            except FileNotFoundError:
                pass
        return n
