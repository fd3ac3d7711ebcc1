"""The seller's own background photos uploaded over HTTP: add, read, delete (one owner each).

Kept beside :class:`~packshot.store.repo.Store` (not in it: that module is at its size limit) and
written with the same rules: the blob is put first, outside the lock, then the row is added in a
transaction holding the blob's lock after making sure the file is there (a collection racing the
upload can never leave a row naming a missing blob); :meth:`Store.referenced` counts these rows,
so the start-up sweep and deletes never remove a background still in use.
"""
from __future__ import annotations

from sqlalchemy import select

from ..errors import NotFoundError
from .models import BackgroundRow, new_id, utcnow
from .repo import PhotoUpload, Store


def add_background(store: Store, owner: str, up: PhotoUpload) -> BackgroundRow:
    sha = store.blobs.put(up.data)
    if up.work is not None:
        store.blobs.put_work(sha, up.work)
    with store.write() as s:
        store._hold_blobs(s, [sha])
        store.blobs.ensure(store.blobs.path(sha), up.data)
        if up.work is not None:
            store.blobs.put_work(sha, up.work)
        row = BackgroundRow(id=new_id(), owner=owner, blob_sha=sha, media_type=up.media_type,
                            width=up.width, height=up.height, created_at=utcnow())
        s.add(row)
    return row


def get_background(store: Store, owner: str, background_id: str) -> BackgroundRow:
    """This owner's background; another owner's id is not found (404), like every owned row."""
    with store.read() as s:
        row = s.scalar(select(BackgroundRow).where(BackgroundRow.id == background_id,
                                                   BackgroundRow.owner == owner))
    if row is None:
        raise NotFoundError(f"background {background_id!r} not found")
    return row


def delete_background(store: Store, owner: str, background_id: str) -> None:
    row = get_background(store, owner, background_id)
    with store.write() as s:
        s.execute(BackgroundRow.__table__.delete().where(BackgroundRow.id == row.id))
    store.collect_garbage([row.blob_sha])


def background_photo(store: Store, owner: str, background_id: str, max_pixels: int | None = None, budget=None):
    """The decoded background (a :class:`~packshot.types.Photo`), read through the blob API (the
    store may be S3): its working copy when the upload needed one, else the bytes as uploaded."""
    from ..io import load_image

    row = get_background(store, owner, background_id)
    work = store.blobs.get_work(row.blob_sha)
    data = work if work is not None else store.blobs.get(row.blob_sha)
    kw = {"max_pixels": max_pixels} if max_pixels else {}
    return load_image(data, budget=budget, **kw)
