"""Trained adapters of a product (issue 12): the training job and its adapter row, read, progress,
finish, delete, and turning API adapter ids into folders for generation jobs.

Kept beside :class:`~packshot.store.repo.Store` (not in it: that module is at its size limit), with
its rules: every read is scoped by ``owner`` (another key's id is not found, 404), writes are short
transactions. A training job is a row of the jobs table with ``kind = 'train'`` (so the queue's
claim, heartbeat, lease, redelivery and cancel apply unchanged) and an :class:`AdapterRow` with the
same id. The adapter's status is its job's (``succeeded`` reads ``done``).

The adapter folder is ``<data_dir>/adapters/<id>/`` (checkpoints under ``checkpoints/``): a worker
that runs training jobs shares the server's data dir (the shared-disk mode of ``packshot worker``).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from ..config import Settings
from ..errors import InvalidInputError, NotFoundError
from .models import QUEUED, RUNNING, SUCCEEDED, AdapterRow, Job, Photo, Product, new_id, utcnow
from .repo import Store

TRAIN = "train"
STATUS = {SUCCEEDED: "done"}  # job status -> adapter status (the others read the same)


def adapter_folder(settings: Settings, row: AdapterRow) -> Path:
    return Path(settings.data_dir) / row.folder


def _attach(s, rows: list[AdapterRow]) -> list[AdapterRow]:
    """Each row gets ``job`` (its training job) and ``status`` (queued|running|done|failed|cancelled)."""
    jobs = {j.id: j for j in s.scalars(select(Job).where(Job.id.in_([r.id for r in rows])))} if rows else {}
    for r in rows:
        r.job = jobs.get(r.id)
        r.status = STATUS.get(r.job.status, r.job.status) if r.job is not None else "failed"
    return rows


def create_training(store: Store, owner: str, product_id: str, photo_ids: list[str] | None,
                    request: dict[str, Any], name: str) -> AdapterRow:
    """Queue a training job on these photos of the product (default: all of them), committed before
    this returns. Unknown product (or another key's) -> 404; a photo not of this product -> 422."""
    with store.write() as s:
        product = s.scalar(select(Product.id).where(Product.id == product_id, Product.owner == owner))
        if product is None:
            raise NotFoundError(f"product {product_id!r} not found")
        own = list(s.scalars(select(Photo.id).where(Photo.product_id == product_id).order_by(Photo.position)))
        if photo_ids is None:
            photo_ids = own
        stray = [p for p in photo_ids if p not in own]
        if stray:
            raise InvalidInputError(f"photo {stray[0]!r} is not a photo of product {product_id!r}")
        now, aid = utcnow(), new_id()
        s.add(Job(id=aid, owner=owner, product_id=product_id, photo_id=photo_ids[0], status=QUEUED, kind=TRAIN,
                  progress=0.0, stage="queued", message="waiting for a training worker", request=request,
                  cancel_requested=False, attempts=0, created_at=now, updated_at=now))
        s.add(AdapterRow(id=aid, owner=owner, product_id=product_id, name=name, method=request["method"],
                         base=request["base"], step=0, total=int(request["steps"]), loss=None, resumed_from=None,
                         photo_ids=list(photo_ids), request=request, meta=None, folder=f"adapters/{aid}",
                         created_at=now, updated_at=now))
    return get_adapter(store, owner, aid)


def get_adapter(store: Store, owner: str | None, adapter_id: str) -> AdapterRow:
    """``owner=None``: unscoped (the job runner)."""
    with store.read() as s:
        q = select(AdapterRow).where(AdapterRow.id == adapter_id)
        row = s.scalar(q if owner is None else q.where(AdapterRow.owner == owner))
        if row is None:
            raise NotFoundError(f"adapter {adapter_id!r} not found")
        return _attach(s, [row])[0]


def list_adapters(store: Store, owner: str, product_id: str) -> list[AdapterRow]:
    """The product's adapters, newest first (404 for an unknown or another key's product)."""
    store.get_product(owner, product_id)
    with store.read() as s:
        rows = list(s.scalars(select(AdapterRow).where(AdapterRow.product_id == product_id,
                                                       AdapterRow.owner == owner)
                              .order_by(AdapterRow.created_at.desc(), AdapterRow.id)))
        return _attach(s, rows)


def set_progress(store: Store, adapter_id: str, step: int, total: int, loss: float | None,
                 resumed_from: int | None = None) -> None:
    values: dict[str, Any] = {"step": int(step), "total": int(total), "updated_at": utcnow()}
    if loss is not None:
        values["loss"] = float(loss)
    if resumed_from is not None:
        values["resumed_from"] = int(resumed_from)
    with store.write(durable=False) as s:
        s.execute(update(AdapterRow).where(AdapterRow.id == adapter_id).values(**values))


def finish_training(store: Store, adapter_id: str, worker: str, meta: dict[str, Any], step: int,
                    loss: float | None, resumed_from: int | None) -> bool:
    """Mark the training job succeeded and record the adapter's metadata, in one transaction, only
    if ``worker`` still holds the job. Returns False (nothing written) otherwise."""
    now = utcnow()
    with store.write() as s:
        n = s.execute(update(Job).where(Job.id == adapter_id, Job.worker == worker, Job.status == RUNNING)
                      .values(status=SUCCEEDED, progress=1.0, stage="done", message=f"trained {step} step(s)",
                              updated_at=now, finished_at=now, heartbeat_at=now)).rowcount
        if n:
            s.execute(update(AdapterRow).where(AdapterRow.id == adapter_id).values(
                meta=meta, step=int(step), loss=loss, resumed_from=resumed_from, updated_at=now))
    return bool(n)


def delete_adapter(store: Store, owner: str, adapter_id: str) -> None:
    """Delete the adapter's rows (its job too) and its folder."""
    row = get_adapter(store, owner, adapter_id)
    with store.write() as s:
        s.execute(delete(AdapterRow).where(AdapterRow.id == row.id, AdapterRow.owner == owner))
        s.execute(delete(Job).where(Job.id == row.id, Job.owner == owner))
    remove_folder(store.settings, row)


def remove_folder(settings: Settings, row: AdapterRow) -> None:
    folder = adapter_folder(settings, row)
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)


def product_adapters(store: Store, owner: str, product_id: str) -> list[AdapterRow]:
    """Unfiltered by status (deleting a product removes its adapters' folders)."""
    with store.read() as s:
        return list(s.scalars(select(AdapterRow).where(AdapterRow.product_id == product_id,
                                                       AdapterRow.owner == owner)))


def resolve_adapter_refs(store: Store, owner: str, refs: list[str]) -> list[str]:
    """``["<adapter id>[:weight]", ...]`` of this key -> ``["<folder>:<weight>", ...]`` for the
    generation engine. An unknown id, another key's, or one not done -> 422 naming it."""
    from ..schema import parse_adapter

    out = []
    for text in refs:
        ref, weight = parse_adapter(text)
        try:
            row = get_adapter(store, owner, ref)
        except NotFoundError:
            raise InvalidInputError(f"adapter {ref!r} not found: give the id of one of your trained adapters "
                                    "(GET /api/v1/products/{id}/adapters)") from None
        if row.status != "done":
            raise InvalidInputError(f"adapter {ref!r} is {row.status}: only a finished adapter can be used")
        out.append(f"{adapter_folder(store.settings, row)}:{weight:g}")
    return out


# -- bundles: an adapter folder as one blob, for remote workers (jobs/remote.py) -------------------
_BUNDLES: dict[tuple[str, int], str] = {}  # (folder, metadata mtime_ns) -> sha256 of its bundle


def _no_checkpoints(rel: Path) -> bool:
    return rel.parts[0] != "checkpoints"


def bundle_bytes(folder: Path, keep=_no_checkpoints) -> bytes:
    """The adapter folder as an uncompressed tar, checkpoints left out (``keep(relative path)``
    chooses otherwise). Deterministic (sorted names, mtime 0, no owners), so every server process
    gives the same bundle the same sha256. Plain ``tarfile``: the stdlib has the extraction filter
    we rely on (:func:`unpack_bundle`)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if not keep(rel) or path.is_symlink() or any(".part" in x for x in rel.parts):
                continue
            info = tarfile.TarInfo(rel.as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif path.is_file():
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def adapter_bundle(store: Store, row: AdapterRow) -> str:
    """The sha256 of the adapter's bundle, put in the blob store on first use (again if a sweep
    removed it)."""
    from ..models.adapters import META_FILE

    folder = adapter_folder(store.settings, row)
    try:
        key = (str(folder), (folder / META_FILE).stat().st_mtime_ns)
    except FileNotFoundError:
        raise NotFoundError(f"adapter {row.id!r} has no folder on the server") from None
    sha = _BUNDLES.get(key)
    if sha is None or not store.blobs.exists(sha):
        sha = _BUNDLES[key] = store.blobs.put(bundle_bytes(folder))
    return sha


def unpack_bundle(data: bytes, dest: Path) -> Path:
    """Extract a bundle to ``dest`` whole or not at all: into ``dest.part-<pid>`` first, then one
    rename. ``filter="data"`` refuses absolute paths, ``..``, links out of the folder and devices."""
    import io
    import os
    import tarfile

    if dest.is_dir():
        return dest
    part = dest.with_name(f"{dest.name}.part-{os.getpid()}")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True, mode=0o700)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in tar.getmembers():  # the data filter would strip a leading "/": refuse it instead
                if m.name.startswith(("/", "\\")) or ".." in Path(m.name).parts:
                    raise tarfile.TarError(f"member {m.name!r} points out of the folder")
            tar.extractall(part, filter="data")
        os.rename(part, dest)
    except OSError:
        if not dest.is_dir():  # not another process's rename winning the race: a real failure
            raise
    except tarfile.TarError as e:
        raise InvalidInputError(f"adapter bundle for {dest.name}: {e}") from None
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return dest


# -- remote training (jobs/remote.py): checkpoints and the finished folder arrive as bundles ---------
def checkpoint_bundle(folder: Path) -> tuple[int, bytes] | None:
    """(step, bundle) of the newest whole checkpoint in ``folder`` with the run file a resume checks
    (``checkpoints/run.json`` + ``checkpoints/step-NNNNNN/``), or None when there is none."""
    from ..train.checkpoint import REQUEST_FILE, latest

    newest = latest(folder)
    if newest is None:
        return None

    def keep(rel: Path) -> bool:
        return rel.parts[0] == "checkpoints" and (len(rel.parts) == 1 or rel.parts[1] in (REQUEST_FILE, newest.name))

    return int(newest.name.split("-")[1]), bundle_bytes(folder, keep)


def checkpoint_blob(store: Store, row: AdapterRow) -> dict[str, Any] | None:
    """``{"step", "sha"}`` of the adapter's newest checkpoint as a bundle in the blob store (made once
    per checkpoint), or None before the first one."""
    from ..train.checkpoint import latest

    folder = adapter_folder(store.settings, row)
    newest = latest(folder)
    if newest is None:
        return None
    key = (str(newest), (newest / "state.pt").stat().st_mtime_ns)
    sha = _BUNDLES.get(key)
    if sha is None or not store.blobs.exists(sha):
        got = checkpoint_bundle(folder)
        if got is None:
            return None
        sha = _BUNDLES[key] = store.blobs.put(got[1])
    return {"step": int(newest.name.split("-")[1]), "sha": sha}


def accept_checkpoint(folder: Path, data: bytes) -> int:
    """Put a checkpoint bundle (:func:`checkpoint_bundle`) into ``folder/checkpoints`` whole (each
    step folder appears by one rename) and drop the older ones; returns its step."""
    import os

    from ..train.checkpoint import REQUEST_FILE, latest

    tmp = unpack_bundle(data, folder.with_name(f"{folder.name}.ckpt-{os.getpid()}-{new_id()[:8]}"))
    try:
        got = latest(tmp)
        if got is None or not (tmp / "checkpoints" / REQUEST_FILE).is_file():
            raise InvalidInputError("the checkpoint bundle holds no whole checkpoint")
        dest = folder / "checkpoints"
        dest.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(tmp / "checkpoints" / REQUEST_FILE, dest / REQUEST_FILE)
        if not (dest / got.name).exists():
            os.rename(got, dest / got.name)
        for old in dest.iterdir():
            if old.is_dir() and old.name.startswith("step-") and old.name < got.name:
                shutil.rmtree(old, ignore_errors=True)
        return int(got.name.split("-")[1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def accept_adapter(folder: Path, data: bytes) -> None:
    """Replace ``folder`` (the adapter's checkpoints) with the finished adapter bundle, unpacked whole
    beside it first. The job is not marked done yet, so nobody reads the folder meanwhile."""
    import os

    from ..models.adapters import META_FILE

    tmp = unpack_bundle(data, folder.with_name(f"{folder.name}.new-{os.getpid()}-{new_id()[:8]}"))
    if not (tmp / META_FILE).is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise InvalidInputError(f"the adapter bundle holds no {META_FILE}")
    shutil.rmtree(folder, ignore_errors=True)
    os.rename(tmp, folder)
