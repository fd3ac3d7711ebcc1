"""Blob storage behind one small interface, with two real backends.

* :class:`~packshot.store.blobs.BlobStore`: the local content-addressed directory (the default).
* :class:`S3BlobStore`: S3-compatible object storage (AWS S3, MinIO, Cloudflare R2, Backblaze B2,
  Ceph RGW), chosen with ``Settings.blob_url = "s3://bucket/prefix"``.

Both keep the same layout and rules: the key of a blob is the sha256 hex of its bytes
(``PREFIX/ab/cd/<sha>``, a photo's working copy ``<sha>.work`` next to it), keys are built only
from a validated digest (client file names never reach the store), and an upload is atomic: a blob
is either there whole or not at all. Which blobs are still used is the database's business
(:meth:`packshot.store.Store.collect_garbage`); the backends only put, get and delete.

The S3 client is boto3 (the ``server`` extra). Why boto3 rather than fsspec/s3fs or obstore: it is
AWS's own reference client for the S3 wire protocol, it honours the standard configuration every
operator already has (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``,
``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, and ``AWS_ENDPOINT_URL``/
``AWS_ENDPOINT_URL_S3`` for MinIO/R2/B2/Ceph, or ``Settings.s3_endpoint_url``), and a single
``PutObject`` is atomic on every S3-compatible server: the object becomes visible only when its
last byte has arrived and its checksum verified, so a writer killed mid-upload leaves nothing.
Blobs here are at most tens of MB, far under the 5 GB single-PUT limit, so no multipart upload
(whose parts could linger) is ever started.

The tests run against moto's standalone server (``python -m moto.server``) on 127.0.0.1, which
speaks the S3 wire protocol: the client code path is the real one.
"""
from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

from ..config import Settings
from ..errors import InvalidInputError, NotFoundError
from .blobs import BlobStore

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^([0-9a-f]{64})(\.work)?$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
WORK_SUFFIX = ".work"


@runtime_checkable
class BlobBackend(Protocol):
    """What the Store, the API and the job runner use. ``path``/``work_path`` return the backend's
    own address of a blob (a ``Path`` on disk, an object key in a bucket) for :meth:`ensure`."""

    def path(self, sha: str): ...

    def work_path(self, sha: str): ...

    def put(self, data: bytes) -> str: ...

    def put_work(self, sha: str, data: bytes) -> None: ...

    def ensure(self, path, data: bytes) -> None: ...

    def get(self, sha: str) -> bytes: ...

    def get_work(self, sha: str) -> bytes | None: ...

    def exists(self, sha: str) -> bool: ...

    def delete(self, sha: str, *, older_than: float | None = None) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...

    def sweep_temp(self, max_age_s: float = 3600) -> int: ...


def parse_blob_url(url: str) -> tuple[str, str, str]:
    """``s3://bucket/prefix`` -> ("s3", bucket, prefix); ``file:///dir`` or a plain path -> ("file",
    dir, ""). Raises InvalidInputError naming the URL."""
    url = url.strip()
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        if not _BUCKET_RE.match(bucket):
            raise InvalidInputError(f"blob URL {url!r}: {bucket!r} is not a valid S3 bucket name")
        prefix = prefix.strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise InvalidInputError(f"blob URL {url!r}: the prefix {prefix!r} has an empty or dot segment")
        return "s3", bucket, prefix
    if url.startswith("file://"):
        return "file", url[7:], ""
    if "://" in url:
        raise InvalidInputError(f"blob URL {url!r} is not s3://bucket/prefix or file:///folder")
    return "file", url, ""


def open_blobs(settings: Settings) -> BlobBackend:
    """The blob backend named by ``settings.blob_url`` (default: ``<data_dir>/blobs`` on disk)."""
    url = getattr(settings, "blob_url", None)
    if not url:
        return BlobStore(Path(settings.data_dir) / "blobs")
    kind, where, prefix = parse_blob_url(url)
    if kind == "file":
        return BlobStore(Path(where))
    return S3BlobStore(where, prefix, endpoint_url=getattr(settings, "s3_endpoint_url", None))


class S3BlobStore:
    """Content-addressed blobs in an S3 bucket (see the module doc)."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, client=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or _client(endpoint_url)
        self._check_bucket(endpoint_url)

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix})"

    def _check_bucket(self, endpoint_url: str | None) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "?")
            raise InvalidInputError(f"S3 bucket {self.bucket!r} cannot be used (error {code}); create it "
                                    "and check the AWS credentials") from None
        except BotoCoreError as e:
            where = endpoint_url or "the default S3 endpoint"
            raise InvalidInputError(f"S3 bucket {self.bucket!r} at {where}: {_one_line(e)}") from None

    # -- keys --------------------------------------------------------------------------------
    def path(self, sha: str) -> str:
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            raise NotFoundError(f"blob {sha!r} is not a sha256 hex digest")
        key = f"{sha[:2]}/{sha[2:4]}/{sha}"
        return f"{self.prefix}/{key}" if self.prefix else key

    def work_path(self, sha: str) -> str:
        return self.path(sha) + WORK_SUFFIX

    # -- writes ------------------------------------------------------------------------------
    # the same content addressing as the local store: put -> ensure(path(sha)), put_work -> work_path
    put = BlobStore.put
    put_work = BlobStore.put_work

    def ensure(self, key: str, data: bytes) -> None:
        """Make sure object ``key`` holds ``data``: one atomic PutObject unless it is there already
        (the key is the content's hash, so an existing object already holds these bytes)."""
        if self._head(key) is not None:
            return
        import base64

        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # the server verifies the body
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5,
                               ContentType="application/octet-stream")

    # -- reads -------------------------------------------------------------------------------
    def _head(self, key: str):
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def get(self, sha: str) -> bytes:
        data = self._get(self.path(sha))
        if data is None:
            raise NotFoundError(f"blob {sha} is missing from the store")
        return data

    def get_work(self, sha: str) -> bytes | None:
        return self._get(self.work_path(sha))

    def exists(self, sha: str) -> bool:
        return self._head(self.path(sha)) is not None

    # -- deletes -----------------------------------------------------------------------------
    def delete(self, sha: str, *, older_than: float | None = None) -> bool:
        """Remove a blob and its working copy; with ``older_than`` (epoch seconds) only objects
        last written before then. True when an object was removed."""
        removed = False
        for key in (self.path(sha), self.work_path(sha)):
            head = self._head(key)
            if head is None:
                continue
            if older_than is not None and head["LastModified"].timestamp() >= older_than:
                continue
            self.client.delete_object(Bucket=self.bucket, Key=key)
            removed = True
        return removed

    def _keys(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
        for page in pages:
            for obj in page.get("Contents", ()):
                yield obj["Key"]

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key in self._keys():
            m = _NAME_RE.match(key.rsplit("/", 1)[-1])
            if m and m.group(1) not in seen:
                seen.add(m.group(1))
                yield m.group(1)

    def files(self) -> list[str]:
        """Every object key under the prefix (blobs and working copies)."""
        return list(self._keys())

    def sweep_temp(self, max_age_s: float = 3600) -> int:
        """Abort multipart uploads under the prefix older than ``max_age_s`` (packshot starts none;
        another tool writing to the bucket might). A killed PutObject leaves nothing to sweep."""
        n, now = 0, time.time()
        try:
            uploads = self.client.list_multipart_uploads(
                Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "").get("Uploads", ())
        except Exception:  # not every S3-compatible server lists uploads
            return 0
        for u in uploads:
            if now - u["Initiated"].timestamp() > max_age_s:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=u["Key"], UploadId=u["UploadId"])
                n += 1
        return n


def _client(endpoint_url: str | None):
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        from ..errors import DependencyMissingError
        raise DependencyMissingError("S3 blob storage (boto3 is missing)", "server") from None
    # path-style addressing for a custom endpoint (MinIO, Ceph, moto: no wildcard DNS needed)
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=64,
                    connect_timeout=5, read_timeout=60,
                    s3={"addressing_style": "path" if endpoint_url else "auto"})
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())[:200]


__all__ = ["BlobBackend", "S3BlobStore", "BlobStore", "open_blobs", "parse_blob_url"]
