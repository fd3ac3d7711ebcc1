"""S3-compatible blob storage (issue 15) against a real S3 wire-protocol server on 127.0.0.1: moto's
standalone server (``python -m moto.server``), so boto3's real code path is what is tested.

Round trips, atomicity (a writer killed mid-upload leaves no visible object), deletion by reference
count through real ``packshot serve`` processes, and two API servers sharing one bucket and one
database.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from services import ROOT, Server, _env, create_product, free_port, photo_bytes, wait_for, wait_job
from tcp_proxy import Proxy

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server on a free port of 127.0.0.1; yields its URL."""
    pytest.importorskip("boto3")
    pytest.importorskip("moto.server", reason="moto[server] is not installed (dev extra)")
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **AWS})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(url + "/moto-api/", timeout=2).status_code < 500, 60, "moto's S3 server")
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


@pytest.fixture
def bucket(s3, monkeypatch):
    for k, v in AWS.items():
        monkeypatch.setenv(k, v)
    name = "packshot-" + uuid.uuid4().hex[:12]
    s3_client(s3).create_bucket(Bucket=name)
    return name


def s3_client(s3_url: str):
    import boto3

    return boto3.client("s3", endpoint_url=s3_url, aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"], region_name=AWS["AWS_DEFAULT_REGION"])


def keys(s3_url: str, bucket: str, prefix: str = "") -> list[str]:
    return [o["Key"] for o in s3_client(s3_url).list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_round_trip_keys_and_deletes(s3, bucket):
    from packshot.config import Settings
    from packshot.errors import InvalidInputError, NotFoundError
    from packshot.store.objects import BlobBackend, S3BlobStore, open_blobs

    store = open_blobs(Settings(blob_url=f"s3://{bucket}/run/a", s3_endpoint_url=s3))
    assert isinstance(store, S3BlobStore) and isinstance(store, BlobBackend)
    data = os.urandom(300_000)
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest() and store.put(data) == sha  # idempotent
    assert store.get(sha) == data and store.exists(sha)
    assert keys(s3, bucket) == [f"run/a/{sha[:2]}/{sha[2:4]}/{sha}"]  # content-addressed key under the prefix
    store.put_work(sha, b"working copy")
    assert store.get_work(sha) == b"working copy" and list(store) == [sha]
    assert not store.delete(sha, older_than=time.time() - 3600)  # written just now: kept
    assert store.delete(sha) and not store.exists(sha) and store.get_work(sha) is None
    assert keys(s3, bucket) == [] and not store.delete(sha)
    with pytest.raises(NotFoundError, match="missing from the store"):
        store.get(sha)
    for bad in ("../../etc/passwd", "ABC", "a" * 63):
        with pytest.raises(NotFoundError, match="not a sha256"):
            store.path(bad)
    with pytest.raises(InvalidInputError, match="'no-such-bucket-h15' cannot be used"):
        S3BlobStore("no-such-bucket-h15", endpoint_url=s3)
    for url in ("s3://Bad_Bucket/x", "s3://ok-bucket/a//b", "gs://bucket/x"):
        with pytest.raises(InvalidInputError, match="blob URL"):
            open_blobs(Settings(blob_url=url, s3_endpoint_url=s3))


UPLOAD = """
import os, sys
from packshot.store.objects import S3BlobStore
store = S3BlobStore(sys.argv[1], "killed", endpoint_url=sys.argv[2])
print("uploading", flush=True)
store.put(os.urandom(int(sys.argv[3])))
print("uploaded", flush=True)
"""


def test_a_writer_killed_mid_upload_leaves_no_visible_object(s3, bucket, tmp_path):
    slow = Proxy(int(s3.rsplit(":", 1)[1]), rate=1_000_000)  # 1 MB/s: an 8 MB put takes ~8 s
    env = _env(AWS)
    try:
        proc = subprocess.Popen([sys.executable, "-c", UPLOAD, bucket, slow.url, str(8 * 1024 * 1024)], env=env,
                                cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(lambda: slow.bytes_up > 1_000_000, 60, "the upload to be under way")
        proc.kill()  # SIGKILL in the middle of the PutObject body
        proc.wait(20)
        time.sleep(0.5)
        assert keys(s3, bucket) == []  # no half-object, and no object at all
        assert s3_client(s3).list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        # the same path completes when left alone
        done = subprocess.run([sys.executable, "-c", UPLOAD, bucket, slow.url, "200000"], env=env, cwd=str(ROOT),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "uploaded" in done.stdout, done.stdout + done.stderr
        assert len(keys(s3, bucket, "killed/")) == 1
    finally:
        slow.close()


def _server(tmp_path, name: str, s3: str, bucket: str, db: str) -> Server:
    return Server(tmp_path / name, database_url=db, env=AWS,
                  args=("--blob-url", f"s3://{bucket}/shared", "--s3-endpoint-url", s3))


def test_two_servers_share_bucket_and_database_deletes_count_references(s3, bucket, tmp_path):
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    a = _server(tmp_path, "a", s3, bucket, db).start()
    b = _server(tmp_path, "b", s3, bucket, db).start()
    try:
        ca, cb = a.client(), b.client()
        x, y = photo_bytes(seed=1), photo_bytes(seed=2, color=(40, 90, 200))
        sx, sy = hashlib.sha256(x).hexdigest(), hashlib.sha256(y).hexdigest()
        p1 = create_product(ca, "one", [x])
        p2 = create_product(ca, "two", [x, y])  # shares photo x with p1
        # server b sees server a's photos: same database, same bucket, its own empty data dir
        r = cb.get(f"/api/v1/photos/{p1['photos'][0]['id']}/image")
        assert r.status_code == 200 and r.content == x
        assert cb.get(f"/api/v1/photos/{p2['photos'][1]['id']}/image").content == y
        stored = keys(s3, bucket, "shared/")
        assert f"shared/{sx[:2]}/{sx[2:4]}/{sx}" in stored and f"shared/{sy[:2]}/{sy[2:4]}/{sy}" in stored
        for server in (a, b):
            assert [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()] == []
        # a job run by server a: its result image is in the bucket, server b serves it
        job = ca.post("/api/v1/jobs", json={"product_id": p1["id"], "n": 1, "size": "256x256", "seed": 4}).json()
        done = wait_job(ca, job["id"], 120)
        assert done["status"] == "succeeded", done
        img = cb.get(f"/api/v1/results/{done['result_ids'][0]}/image")
        assert img.status_code == 200 and img.content[:8] == b"\x89PNG\r\n\x1a\n"
        rsha = hashlib.sha256(img.content).hexdigest()
        assert f"shared/{rsha[:2]}/{rsha[2:4]}/{rsha}" in keys(s3, bucket, "shared/")
        # deleting p1 (on b) removes its result but keeps x: p2 still uses it
        assert cb.delete(f"/api/v1/products/{p1['id']}").status_code == 204
        stored = keys(s3, bucket, "shared/")
        assert not any(k.endswith(rsha) for k in stored)
        assert any(k.endswith(sx) for k in stored) and any(k.endswith(sy) for k in stored)
        assert ca.get(f"/api/v1/photos/{p2['photos'][0]['id']}/image").content == x
        # deleting p2 (on a) removes the last references: the bucket is empty
        assert ca.delete(f"/api/v1/products/{p2['id']}").status_code == 204
        assert keys(s3, bucket, "shared/") == []
    finally:
        a.stop()
        b.stop()
    for server in (a, b):
        assert "Traceback" not in server.log(), server.log()[-3000:]


def test_serve_with_a_missing_bucket_says_so_in_one_line(s3, tmp_path):
    r = subprocess.run([sys.executable, "-m", "packshot", "serve", "--port", str(free_port()), "--data-dir",
                        str(tmp_path / "d"), "--blob-url", "s3://no-such-bucket-h15/x", "--s3-endpoint-url", s3],
                       capture_output=True, text=True, env=_env(AWS), cwd=str(ROOT), timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "packshot: error: S3 bucket 'no-such-bucket-h15' cannot be used (error 404); create it and check the "
        "AWS credentials"], r.stderr
