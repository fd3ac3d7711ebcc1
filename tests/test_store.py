"""Store: migrations, blobs, ownership, the jobs table as a queue. On SQLite and on PostgreSQL."""
from __future__ import annotations

import os
import threading
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text, update

from packshot.config import Settings
from packshot.errors import InvalidInputError, NotFoundError
from packshot.store import CANCELLED, QUEUED, RUNNING, SUCCEEDED, BlobStore, Job, NewResult, PhotoUpload, Store, \
    result_id, sha256_hex, worker_name
from packshot.store.models import utcnow
from services import database_url, postgres  # noqa: F401  (fixture)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url(request.param, request))
    s = Store(settings)
    yield s
    s.close()


def upload(data: bytes = b"photo-bytes") -> PhotoUpload:
    return PhotoUpload(data=data, media_type="image/png", width=40, height=30)


def result(rank: int, sha: str) -> NewResult:
    return NewResult(rank=rank, seed=2**32 - rank, engine="studio", prompt="p", parameters={"Seed": rank},
                     scores={"overall": 0.5}, generated=False, blob_sha=sha, width=8, height=8,
                     output_format="png")


# -- blobs --------------------------------------------------------------------------------------
def test_blob_store_is_content_addressed_atomic_and_never_uses_names(tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    sha = blobs.put(b"hello")
    assert sha == sha256_hex(b"hello")
    path = blobs.path(sha)
    assert path == tmp_path / "blobs" / sha[:2] / sha[2:4] / sha and path.read_bytes() == b"hello"
    assert blobs.put(b"hello") == sha and blobs.get(sha) == b"hello"
    assert list(blobs) == [sha]
    assert not list((tmp_path / "blobs").rglob("*.tmp"))  # no temp file left behind
    for bad in ("../../etc/passwd", "photo.jpg", sha[:-1], sha.upper() + "/x"):
        with pytest.raises(NotFoundError):
            blobs.path(bad)
    assert blobs.delete(sha) and not blobs.exists(sha)
    with pytest.raises(NotFoundError, match="missing"):
        blobs.get(sha)


# -- schema -------------------------------------------------------------------------------------
def test_migrations_create_the_models_schema_and_rerun_as_no_op(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from packshot.store.db import migrate
    from packshot.store.models import Base

    names = set(inspect(store.engine).get_table_names())
    assert {"products", "photos", "jobs", "results", "alembic_version"} <= names
    migrate(store.engine)  # second run: nothing to do, no error
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


# -- products and ownership ----------------------------------------------------------------------
def test_products_are_scoped_by_owner(store):
    a = store.create_product("owner-a", "  Blue   mug ", [upload(b"1"), upload(b"2")])
    assert a.name == "Blue mug" and [p.position for p in a.photos] == [0, 1]
    store.create_product("owner-b", "vase", [upload(b"3")])
    items, count = store.list_products("owner-a")
    assert count == 1 and [p.id for p in items] == [a.id]
    with pytest.raises(NotFoundError, match=a.id):
        store.get_product("owner-b", a.id)
    with pytest.raises(NotFoundError):
        store.get_photo("owner-b", a.photos[0].id)
    with pytest.raises(NotFoundError):
        store.delete_product("owner-b", a.id)
    with pytest.raises(InvalidInputError, match="empty"):
        store.create_product("owner-a", "   ", [upload()])
    with pytest.raises(InvalidInputError, match="photo"):
        store.create_product("owner-a", "x", [])


def test_deleting_a_product_removes_only_the_blobs_no_one_else_uses(store):
    shared, own = b"same photo in two products", b"only in the first"
    p1 = store.create_product("o", "one", [upload(shared), upload(own)])
    p2 = store.create_product("o", "two", [upload(shared)])
    job = store.create_job("o", p1.id, None, {"n": 1})
    worker = worker_name("t")
    assert store.claim(worker).id == job.id
    res_sha = store.blobs.put(b"result image")
    assert store.finish(job.id, worker, [result(1, res_sha)])
    removed = store.delete_product("o", p1.id)
    assert removed == 2  # its own photo and its result; the shared photo stays for p2
    assert store.blobs.exists(sha256_hex(shared))
    assert not store.blobs.exists(sha256_hex(own)) and not store.blobs.exists(res_sha)
    with pytest.raises(NotFoundError):
        store.get_job("o", job.id)
    store.delete_product("o", p2.id)
    assert list(store.blobs) == []


# -- the queue ----------------------------------------------------------------------------------
def test_claim_is_atomic_under_concurrency(store):
    p = store.create_product("o", "mug", [upload()])
    jobs = {store.create_job("o", p.id, None, {"n": 1}).id for _ in range(12)}
    claimed: list[str] = []
    lock = threading.Lock()

    def work(n):
        while True:
            job = store.claim(worker_name(n))
            if job is None:
                return
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(jobs)  # every job once, none twice


def test_results_are_written_once_even_if_a_job_runs_twice(store):
    p = store.create_product("o", "mug", [upload()])
    job = store.create_job("o", p.id, None, {"n": 2})
    first, second = worker_name("first"), worker_name("second")
    assert store.claim(first).id == job.id
    # the first holder goes silent: a second worker takes the job over
    with store.write() as s:
        s.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    assert store.claim(second, job.id, stale_after_s=60).id == job.id
    shas = [store.blobs.put(b"a"), store.blobs.put(b"b")]
    assert store.finish(job.id, second, [result(1, shas[0]), result(2, shas[1])])
    # the first one wakes up and tries to write its (identical) results: refused, nothing added
    assert not store.finish(job.id, first, [result(1, shas[0]), result(2, shas[1])])
    assert not store.finish(job.id, second, [result(1, shas[0])])  # finished jobs take no more results
    done = store.get_job("o", job.id)
    assert done.status == SUCCEEDED and done.attempts == 2
    assert done.result_ids == [result_id(job.id, 1), result_id(job.id, 2)]
    items, count = store.history("o", p.id)
    assert count == 2 and sorted(r.rank for r in items) == [1, 2]
    assert items[0].seed == 2**32 - 1  # seeds use the full 32-bit range (BIGINT on PostgreSQL)


def test_interrupted_jobs_are_requeued_and_live_ones_are_not(store):
    p = store.create_product("o", "mug", [upload()])
    dead, live, silent = (store.create_job("o", p.id, None, {"n": 1}) for _ in range(3))
    dead_worker = f"{worker_name().split(':')[0]}:999999999:0"  # this host, a pid that cannot exist
    for job, holder in ((dead, dead_worker), (live, worker_name("live")), (silent, "other-host:1:0")):
        assert store.claim(holder, job.id) is not None
    with store.write() as s:
        s.execute(update(Job).where(Job.id == silent.id).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    requeued = store.requeue_interrupted(stale_after_s=60)
    assert sorted(requeued) == sorted([dead.id, silent.id])
    assert store.get_job("o", live.id).status == RUNNING
    assert store.get_job("o", dead.id).status == QUEUED
    assert set(store.queued_ids()) == {dead.id, silent.id}


def test_cancel_queued_at_once_and_running_by_flag(store):
    p = store.create_product("o", "mug", [upload()])
    queued = store.create_job("o", p.id, None, {"n": 1})
    running = store.create_job("o", p.id, None, {"n": 1})
    w = worker_name("w")
    assert store.claim(w, running.id) is not None
    assert store.cancel_job("o", queued.id).status == CANCELLED
    assert store.claim(w, queued.id) is None  # a cancelled job is never picked up
    assert store.cancel_job("o", running.id).status == RUNNING
    held, cancel = store.report(running.id, w, 0.5, "background", "step")
    assert held and cancel
    with pytest.raises(NotFoundError):
        store.cancel_job("someone-else", running.id)


def test_store_uses_wal_and_immediate_writes_on_sqlite(tmp_path):
    store = Store(Settings(data_dir=tmp_path))
    with store.write() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert (tmp_path / "packshot.db").exists() and os.path.getsize(tmp_path / "packshot.db") > 0
    store.close()


def test_sweep_removes_every_orphan_blob_at_once_and_spares_referenced_ones(store):
    used = store.create_product("o", "mug", [upload(b"kept photo")]).photos[0].blob_sha
    orphan = store.blobs.put(b"left by a job killed while saving")
    store.blobs.put_work(orphan, b"its working copy")
    dead_tmp = store.blobs.path(used).parent / f".{used}.{__import__('packshot.store.blobs', fromlist=['x'])._HOST_TAG}-999999.x_1.tmp"
    dead_tmp.write_bytes(b"half-written by a dead process")
    assert store.sweep_blobs() == 1
    assert store.blobs.exists(used) and not store.blobs.exists(orphan)
    assert not store.blobs.work_path(orphan).exists() and not dead_tmp.exists()


def test_a_delete_racing_an_identical_upload_never_loses_the_upload(store):
    """Blobs are shared by content across owners: A deletes a product while B uploads the same
    bytes. Whatever the interleaving, every row B holds names a file that exists."""
    rounds, lost = 60, []
    for i in range(rounds):
        data = f"shared photo {i}".encode()
        a = store.create_product("owner-a", "a", [upload(data)])
        barrier = threading.Barrier(2)
        out = {}

        def delete():
            barrier.wait()
            store.delete_product("owner-a", a.id)

        def create():
            barrier.wait()
            out["b"] = store.create_product("owner-b", "b", [upload(data)])

        threads = [threading.Thread(target=delete), threading.Thread(target=create)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sha = out["b"].photos[0].blob_sha
        if not store.blobs.exists(sha):
            lost.append(i)
        store.delete_product("owner-b", out["b"].id)
        assert not store.blobs.exists(sha)  # the last reference gone: removed at once
    assert lost == [], f"B's photo blob was lost in rounds {lost}"
