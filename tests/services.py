"""Real services for the service tests: redis-server and PostgreSQL on 127.0.0.1 (free ports, temp
dirs), and real ``packshot serve`` / ``packshot worker`` processes.

Import the fixtures into a test module (``from services import postgres, redis_url  # noqa: F401``).
Missing binaries skip the tests that need them, with the reason, except under CI (``CI=true``),
where they fail: CI installs them (``.ci/run``).

PostgreSQL refuses to run as root: as root the cluster is created and started as the ``postgres``
system user (``runuser -u postgres --``) in a temp dir it owns; as any other user it runs as that user.
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def need(ok: bool, reason: str) -> None:
    """Skip (locally) or fail (CI) when a service binary is missing."""
    if ok:
        return
    if under_ci():
        pytest.fail(f"{reason} (CI must install it: see .ci/run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # not up yet
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


# -- redis ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    exe = shutil.which("redis-server")
    need(exe is not None, "redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir), "--protected-mode", "yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        wait_for(client.ping, 20, "redis-server to answer PING")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- PostgreSQL -------------------------------------------------------------------------------
class Postgres:
    """A throw-away PostgreSQL cluster; ``database()`` makes a fresh database and returns its URL."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="packshot-pg-"))
        self.data, self.sock = self.base / "data", self.base / "sock"
        self.sock.mkdir()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
            os.chmod(self.base, 0o755)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        r = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-o", opts, "-w",
                      "-t", "60", "start", check=False)
        if r.returncode != 0:
            log = (self.base / "server.log").read_text(errors="replace") if (self.base / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {r.stderr.strip()} {log[-2000:]}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def database(self) -> str:
        import psycopg

        name = "packshot_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres():
    bindir = next((b for b in PG_BINS if (b / "initdb").exists()), None)
    need(bindir is not None, "PostgreSQL server binaries are not installed (apt-get install postgresql)")
    if os.geteuid() == 0:
        try:
            import pwd
            pwd.getpwnam("postgres")
        except KeyError:
            need(False, "running as root and there is no 'postgres' system user to run PostgreSQL as")
    pg = Postgres(bindir)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def database_url(kind: str, request) -> str | None:
    """``sqlite`` -> None (the server's default SQLite in its data dir); ``postgres`` -> a fresh DB."""
    if kind == "sqlite":
        return None
    return request.getfixturevalue("postgres").database()


# -- packshot processes -----------------------------------------------------------------------
def _env(extra: dict | None) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "PACKSHOT_DEBUG": "1"}
    for k in [k for k in env if k.startswith("PACKSHOT_") and k not in ("PACKSHOT_DEBUG", "PACKSHOT_SHARED")]:
        del env[k]
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


class Process:
    """A ``python -m packshot ...`` child process with its log in a file."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None):
        self.args, self.log_path, self.env = args, log_path, env
        self.proc: subprocess.Popen | None = None

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "packshot", *self.args], stdout=log,
                                     stderr=subprocess.STDOUT, env=_env(self.env), cwd=str(ROOT),
                                     start_new_session=True)
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no clean-up of any kind (what a crash or OOM kill does)."""
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 20) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()


class Server(Process):
    """``packshot serve`` on a free port of 127.0.0.1."""

    def __init__(self, data_dir: Path, *, database_url: str | None = None, queue: str = "local",
                 broker: str | None = None, api_keys: tuple[str, ...] = (), env: dict | None = None,
                 args: tuple[str, ...] = ()):
        self.data_dir, self.port = Path(data_dir), free_port()
        self.api_keys = api_keys
        cmd = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(data_dir),
               "--queue", queue, *args]
        if database_url:
            cmd += ["--database-url", database_url]
        if broker:
            cmd += ["--broker", broker]
        for k in api_keys:
            cmd += ["--api-key", k]
        super().__init__(cmd, self.data_dir.parent / f"{self.data_dir.name}-serve.log", env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> "Server":
        self.spawn()

        def up():
            if not self.alive:
                raise AssertionError(f"packshot serve exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            return httpx.get(self.url + "/health", timeout=2).status_code == 200

        wait_for(up, timeout, f"packshot serve on {self.url}")
        return self

    def restart(self, **kw) -> "Server":
        self.stop()
        return self.start(**kw)

    def client(self, key: str | None = "default", timeout: float = 60) -> httpx.Client:
        """An httpx client; ``key="default"`` sends the server's first key (if any)."""
        if key == "default":
            key = self.api_keys[0] if self.api_keys else None
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                            event_hooks={"response": [self.check_leaks]})

    def check_leaks(self, r: httpx.Response) -> None:
        """No answer of the server ever shows SQL, a traceback or where its data lives."""
        ctype = r.headers.get("content-type", "")
        if not ctype.startswith(("application/json", "text/plain", "text/html")):
            return  # images; and event streams, which are read as they come
        r.read()
        assert_no_leak(r.text, self.data_dir, f"{r.request.method} {r.request.url.path}")


class Worker(Process):
    """``packshot worker`` (Celery, solo pool)."""

    def __init__(self, data_dir: Path, broker: str, *, database_url: str | None = None, env: dict | None = None,
                 args: tuple[str, ...] = (), name: str = "worker"):
        cmd = ["worker", "--broker", broker, "--data-dir", str(data_dir), "--loglevel", "info", *args]
        if database_url:
            cmd += ["--database-url", database_url]
        super().__init__(cmd, Path(data_dir).parent / f"{Path(data_dir).name}-{name}.log", env)

    def start(self, timeout: float = 90) -> "Worker":
        start_at = len(self.log())
        self.spawn()

        def ready():
            if not self.alive:
                raise AssertionError(f"packshot worker exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            return " ready." in self.log()[start_at:]

        wait_for(ready, timeout, "packshot worker to be ready")
        return self


# -- helpers for tests --------------------------------------------------------------------------
def photo_bytes(size=(400, 300), fmt: str = "JPEG", seed: int = 0, color=(180, 40, 40)) -> bytes:
    """A synthetic mug photo (tests/synth.py) encoded as ``fmt``."""
    from PIL import Image
    from synth import mug_photo

    rgb, _ = mug_photo(size, seed=seed, color=color, jpeg_quality=None)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


def create_product(client: httpx.Client, name: str = "mug", photos: list[bytes] | None = None) -> dict:
    photos = photos or [photo_bytes()]
    files = [("photo", (f"p{i}.png", data, "application/octet-stream")) for i, data in enumerate(photos)]
    r = client.post("/api/v1/products", data={"name": name}, files=files)
    assert r.status_code == 201, r.text
    return r.json()


FINISHED = ("succeeded", "failed", "cancelled")


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120, until=FINISHED) -> dict:
    def done():
        j = client.get(f"/api/v1/jobs/{job_id}").json()
        return j if j["status"] in until else None

    return wait_for(done, timeout, f"job {job_id} to reach {'/'.join(until)}", interval=0.2)


LEAKS = ("SELECT ", "INSERT INTO", "Traceback", "psycopg", "sqlalchemy", "sqlite3.")


def assert_no_leak(text: str, data_dir: Path, where: str = "") -> None:
    for needle in (*LEAKS, str(Path(data_dir).resolve()), str(Path(data_dir)), str(Path.home()) + "/"):
        assert needle not in text, f"{where}: answer shows {needle!r}: {text[:300]}"


def assert_error(r: httpx.Response, status: int, *words: str) -> str:
    """A 4xx JSON answer ``{"detail": "<one line naming the problem>"}``."""
    assert r.status_code == status, f"{r.status_code} {r.text[:300]}"
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.strip() and "\n" not in detail, detail
    for w in words:
        assert w.lower() in detail.lower(), f"{w!r} not in {detail!r}"
    return detail
