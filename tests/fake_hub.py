"""A local stand-in for the Hugging Face Hub (test fixture), on 127.0.0.1, speaking enough of its
HTTP API for huggingface_hub's own client code (``HF_ENDPOINT=http://127.0.0.1:PORT``):

* ``GET /api/models/{owner}/{name}[/revision/{rev}]`` -> id, sha and siblings with size, blobId and
  (for weights) lfs.sha256 -- what ``HfApi.model_info(files_metadata=True)`` reads;
* ``HEAD|GET /{owner}/{name}/resolve/{rev}/{path}`` -> the file, with X-Repo-Commit, ETag and
  Content-Length, and HTTP Range (206) for resumed downloads.

Knobs: ``cut_once`` (file names whose first GET sends half the bytes and then fails the
connection; later GETs are answered), ``wrong_sha`` (file names published with a wrong sha256).
``requests`` records (method, path, Range header) of every request.
"""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt")


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self, repo: str, folder: Path):
        self.repo, self.folder = repo, Path(folder)
        self.files = {p.relative_to(self.folder).as_posix(): p for p in sorted(self.folder.rglob("*")) if p.is_file()}
        self.cut_once: set[str] = set()
        self.wrong_sha: set[str] = set()
        self.requests: list[tuple[str, str, str | None]] = []
        self._cut_done: set[str] = set()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_HEAD(self):
                hub._serve(self, head=True)

            def do_GET(self):
                hub._serve(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sibling(self, name: str) -> dict:
        data = self.files[name].read_bytes()
        out = {"rfilename": name, "size": len(data), "blobId": _blob_id(data)}
        if name.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            if name in self.wrong_sha:
                sha = hashlib.sha256(b"not this file").hexdigest()
            out["lfs"] = {"sha256": sha, "size": len(data), "pointerSize": 134}
        return out

    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlparse(h.path).path)
        self.requests.append((h.command, path, h.headers.get("Range")))
        api = f"/api/models/{self.repo}"
        if path == api or path.startswith(api + "/revision/"):
            body = json.dumps({"id": self.repo, "modelId": self.repo, "sha": COMMIT, "private": False,
                               "siblings": [self.sibling(n) for n in self.files]}).encode()
            return self._send(h, 200, body, {"Content-Type": "application/json"}, head)
        prefix = f"/{self.repo}/resolve/"
        if not path.startswith(prefix):
            return self._send(h, 404, b'{"error": "Repository not found"}',
                              {"X-Error-Code": "RepoNotFound", "Content-Type": "application/json"}, head)
        name = path[len(prefix):].split("/", 1)[1]
        if name not in self.files:
            return self._send(h, 404, b'{"error": "Entry not found"}',
                              {"X-Error-Code": "EntryNotFound", "Content-Type": "application/json"}, head)
        data = self.files[name].read_bytes()
        sib = self.sibling(name)
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{sib.get("lfs", {}).get("sha256") or sib["blobId"]}"',
                   "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        rng = h.headers.get("Range")
        if rng and not head:
            start = int(rng.split("=")[1].split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return self._send(h, 206, data[start:], headers, head)
        if not head and name in self.cut_once and name not in self._cut_done:
            self._cut_done.add(name)
            h.send_response(200)
            for k, v in {**headers, "Content-Length": str(len(data))}.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            return None
        return self._send(h, 200, data, headers, head)

    @staticmethod
    def _send(h, code: int, body: bytes, headers: dict, head: bool) -> None:
        h.send_response(code)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)
