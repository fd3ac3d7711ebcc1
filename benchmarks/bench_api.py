"""Load benchmark of the REST API on loopback: N concurrent job submissions + M clients polling.

Starts a real ``packshot serve`` (local queue, SQLite in a temp dir unless --database-url), uploads
one product, then at once: ``--jobs`` job submissions all in flight together (httpx async, one
connection each) and ``--pollers`` clients polling ``GET /api/v1/jobs/{id}`` of submitted jobs
every ``--poll-interval`` s until every job has finished. Prints a table of request latencies
(p50/p95/p99/max) and errors (any non-2xx answer or transport error), and how long the queue took
to run all the jobs. Exit status 1 if there was any error.

    .venv/bin/python benchmarks/bench_api.py [--jobs 200] [--pollers 50] [--database-url URL]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FINISHED = {"succeeded", "failed", "cancelled"}
METRICS_KEY = "bench-metrics-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo() -> bytes:
    sys.path.insert(0, str(ROOT / "tests"))
    from PIL import Image
    from synth import mug_photo

    rgb, _ = mug_photo((400, 300), jpeg_quality=None)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def server_side(metrics: str) -> dict[str, tuple[int, float, float]]:
    """Server-measured latency per route from the Prometheus histogram: (count, p50, p99) in ms,
    interpolated within buckets as Prometheus' histogram_quantile does."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for m in re.finditer(r'packshot_http_request_seconds_bucket\{le="([^"]+)",route="([^"]+)"\} (\S+)', metrics):
        le, route, n = m.groups()
        buckets.setdefault(route, []).append((float(le), float(n)))
    out = {}
    for route, bs in buckets.items():
        bs.sort()
        total = bs[-1][1]
        if not total:
            continue

        def q(p):
            rank, prev_le, prev_n = p * total, 0.0, 0.0
            for le, n in bs:
                if n >= rank:
                    if le == float("inf"):
                        return prev_le * 1000
                    return (prev_le + (le - prev_le) * (rank - prev_n) / max(n - prev_n, 1e-9)) * 1000
                prev_le, prev_n = le, n
            return prev_le * 1000

        out[route] = (int(total), q(0.5), q(0.99))
    return out


class Stats:
    def __init__(self):
        self.lat: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}

    def add(self, kind: str, seconds: float, error: str | None = None) -> None:
        self.lat.setdefault(kind, []).append(seconds)
        self.errors.setdefault(kind, [])
        if error:
            self.errors[kind].append(error)


async def timed(stats: Stats, kind: str, coro, ok=(200, 201, 202)):
    t0 = time.perf_counter()
    try:
        r = await coro
        err = None if r.status_code in ok else f"{r.status_code} {r.text[:120]}"
    except httpx.HTTPError as e:
        r, err = None, f"{type(e).__name__}: {e}"
    stats.add(kind, time.perf_counter() - t0, err)
    return r


async def bench(url: str, key: str, n_jobs: int, n_pollers: int, poll_interval: float, timeout: float,
                poll_for: float | None = None) -> tuple[Stats, dict]:
    stats = Stats()

    def client() -> httpx.AsyncClient:
        """One client = one connection, as separate users would have (a shared pool of hundreds of
        connections costs httpx more CPU than the server spends on a request)."""
        return httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=120,
                                 limits=httpx.Limits(max_connections=1, keepalive_expiry=30))

    async with client() as c:
        r = await c.post("/api/v1/products", data={"name": "bench mug"},
                         files=[("photo", ("mug.jpg", photo(), "image/jpeg"))])
        r.raise_for_status()
        product = r.json()["id"]
        job_ids: list[str] = []
        done: set[str] = set()
        submitted = asyncio.Event()
        t_start = time.perf_counter()

        async def submit(i: int, sc: httpx.AsyncClient):
            async with sc:
                r = await timed(stats, "POST /jobs", sc.post("/api/v1/jobs", json={
                    "product_id": product, "n": 1, "size": "256x256", "seed": i, "prompt": "on a grey stone slab"}))
            if r is not None and r.status_code == 202:
                job_ids.append(r.json()["id"])

        async def poller(k: int):
            async with client() as pc:
                await poll(k, pc)

        async def poll(k: int, pc: httpx.AsyncClient):
            rng = random.Random(k)
            await asyncio.sleep(rng.uniform(0, poll_interval))
            while True:
                pending = [j for j in job_ids if j not in done]
                if submitted.is_set() and not pending:
                    return
                if time.perf_counter() - t_start > (poll_for if poll_for else timeout):
                    return
                if pending:
                    jid = rng.choice(pending)
                    r = await timed(stats, "GET /jobs/{id}", pc.get(f"/api/v1/jobs/{jid}"))
                    if r is not None and r.status_code == 200 and r.json()["status"] in FINISHED:
                        done.add(jid)
                await asyncio.sleep(poll_interval)

        async def submit_all(clients):
            await asyncio.gather(*(submit(i, sc) for i, sc in enumerate(clients)))
            submitted.set()

        clients = [client() for _ in range(n_jobs)]  # (building 200 clients takes seconds: not timed)
        t_start = time.perf_counter()
        pollers = [asyncio.create_task(poller(k)) for k in range(n_pollers)]
        t0 = time.perf_counter()
        await submit_all(clients)
        t_submit = time.perf_counter() - t0
        await asyncio.gather(*pollers)
        t_all = time.perf_counter() - t0
        # the pollers only sample; confirm every job's final state once (not timed)
        statuses: dict[str, int] = {}
        for jid in job_ids:
            st = (await c.get(f"/api/v1/jobs/{jid}")).json()["status"]
            statuses[st] = statuses.get(st, 0) + 1
        metrics = (await c.get("/metrics", headers={"X-API-Key": METRICS_KEY})).text  # operators only
        info = {"submit_wall_s": t_submit, "all_done_s": t_all, "statuses": statuses, "accepted": len(job_ids),
                "server": server_side(metrics)}
        return stats, info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--pollers", type=int, default=50)
    ap.add_argument("--poll-interval", type=float, default=0.2, help="seconds between a poller's requests")
    ap.add_argument("--database-url", default=None, help="default: SQLite in a temp data dir")
    ap.add_argument("--postgres", action="store_true",
                    help="start a throw-away PostgreSQL (as the tests do: tests/services.py) and use it")
    ap.add_argument("--model-slots", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--api-only", action="store_true",
                    help="accept jobs but run none (Celery queue, no worker): the API's own latency, without "
                         "jobs competing for the CPU; pollers then poll for --poll-for seconds")
    ap.add_argument("--poll-for", type=float, default=20.0)
    args = ap.parse_args()

    pg = None
    if args.postgres:
        sys.path.insert(0, str(ROOT / "tests"))
        from services import PG_BINS, Postgres

        bindir = next((b for b in PG_BINS if (b / "initdb").exists()), None)
        if bindir is None:
            print("PostgreSQL binaries not found under /usr/lib/postgresql")
            return 1
        pg = Postgres(bindir)
        pg.start()
        args.database_url = pg.database()
    data = Path(tempfile.mkdtemp(prefix="packshot-bench-"))
    port, key = free_port(), "bench-key"
    cmd = [sys.executable, "-m", "packshot", "serve", "--port", str(port), "--data-dir", str(data / "data"),
           "--api-key", key, "--model-slots", str(args.model_slots), "--rate-limit", "1000000"]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    if args.api_only:  # a broker nobody listens on: jobs are accepted and stay queued
        cmd += ["--queue", "celery", "--broker", f"redis://127.0.0.1:{free_port()}/0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACKSHOT_")}
    env["PACKSHOT_METRICS_KEY"] = METRICS_KEY
    log = open(data / "serve.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                print((data / "serve.log").read_text()[-3000:])
                return 1
            time.sleep(0.2)
        stats, info = asyncio.run(bench(url, key, args.jobs, args.pollers, args.poll_interval, args.timeout,
                                        args.poll_for if args.api_only else None))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if pg is not None:
            pg.stop()

    db = "PostgreSQL" if args.database_url else "SQLite (WAL)"
    mode = ("API only: jobs accepted, none run" if args.api_only
            else f"local queue running the jobs, {args.model_slots} model slots")
    print(f"packshot API load, loopback: {args.jobs} concurrent job submissions + {args.pollers} clients polling "
          f"every {args.poll_interval:g} s; {db}; {mode}; {os.cpu_count()} CPU cores")
    print(f"{'request':<16} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    total_errors = 0
    for kind, lat in stats.lat.items():
        errs = stats.errors[kind]
        total_errors += len(errs)
        ms = [x * 1000 for x in lat]
        print(f"{kind:<16} {len(lat):>6} {len(errs):>6} {pct(ms, 50):>8.1f} {pct(ms, 95):>8.1f} {pct(ms, 99):>8.1f} "
              f"{max(ms):>8.1f}")
        for e in errs[:5]:
            print(f"    error: {e}")
    print("server-side (the app's own Prometheus histogram, request in -> response out):")
    for route in ("/api/v1/jobs", "/api/v1/jobs/{job_id}"):
        if route in info["server"]:
            n, p50, p99 = info["server"][route]
            print(f"  {route:<24} {n:>6} requests  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
    print(f"all {args.jobs} submissions answered in {info['submit_wall_s']:.2f} s; {info['accepted']} accepted (202)")
    if args.api_only:
        ok = total_errors == 0 and info["statuses"].get("queued", 0) == args.jobs
    else:
        print(f"every job finished after {info['all_done_s']:.1f} s ({info['accepted'] / info['all_done_s']:.1f} "
              f"jobs/s); final statuses {info['statuses']}")
        ok = total_errors == 0 and info["statuses"].get("succeeded", 0) == args.jobs
    print("zero errors" if ok else f"ERRORS: {total_errors} failed requests; statuses {info['statuses']}")
    shutil.rmtree(data, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
