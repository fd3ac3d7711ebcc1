"""The API load benchmark (``bench_api.py``'s load: N concurrent submissions + M pollers) with the
jobs run by REMOTE workers and every image in S3-compatible object storage (issue 15).

Starts, all on 127.0.0.1: moto's S3 server (``python -m moto.server``) with a fresh bucket,
redis-server, ``packshot serve --queue celery --blob-url s3://bucket/bench`` (SQLite, API key on),
two worker keys (``packshot worker --new-key``) and ``--workers`` ``packshot worker --api URL
--worker-key KEY`` processes, each with its own empty data dir and no database URL. Then runs the
same load as ``bench_api.py`` and prints the same table, plus what the workers reported.

    .venv/bin/python benchmarks/bench_remote.py [--jobs 200] [--pollers 50] [--workers 2]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from bench_api import bench, free_port, pct  # noqa: E402  (the same load as the API benchmark)

AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


class Procs:
    def __init__(self, base: Path, env: dict):
        self.base, self.env, self.procs = base, env, []

    def start(self, name: str, cmd: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.base / f"{name}.log"
        with open(log, "wb") as f:
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=self.env, cwd=str(ROOT))
        self.procs.append(p)
        return p, log

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--pollers", type=int, default=50)
    ap.add_argument("--poll-interval", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with the processes' logs")
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (apt-get install redis-server)")
        return 1
    base = Path(tempfile.mkdtemp(prefix="packshot-bench-remote-"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PACKSHOT_")}, **AWS}
    procs = Procs(base, env)
    py = [sys.executable, "-m"]
    try:
        s3_port, redis_port, port = free_port(), free_port(), free_port()
        s3 = f"http://127.0.0.1:{s3_port}"
        p, log = procs.start("moto", [*py, "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)])
        wait_http(s3 + "/moto-api/", p, log)
        import boto3
        bucket = "packshot-bench-" + uuid.uuid4().hex[:8]
        boto3.client("s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench").create_bucket(Bucket=bucket)
        procs.start("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(base)])
        broker = f"redis://127.0.0.1:{redis_port}/0"
        data, key, url = base / "server", "bench-key", f"http://127.0.0.1:{port}"
        keys = []
        for i in range(args.workers):
            out = subprocess.run([*py, "packshot", "worker", "--data-dir", str(data), "--new-key", f"bench-{i}"],
                                 capture_output=True, text=True, env=env, cwd=str(ROOT), check=True)
            keys.append(out.stdout.strip().splitlines()[-1])
        p, log = procs.start("serve", [*py, "packshot", "serve", "--port", str(port), "--data-dir", str(data),
                                       "--api-key", key, "--rate-limit", "1000000", "--queue", "celery",
                                       "--broker", broker, "--blob-url", f"s3://{bucket}/bench",
                                       "--s3-endpoint-url", s3])
        wait_http(url + "/health", p, log)
        for i, k in enumerate(keys):
            own = base / f"worker{i}"
            own.mkdir()
            procs.start(f"worker{i}", [*py, "packshot", "worker", "--broker", broker, "--api", url,
                                       "--worker-key", k, "--data-dir", str(own), "--loglevel", "info"])
        deadline = time.monotonic() + 120
        while sum(" ready." in (base / f"worker{i}.log").read_text() for i in range(len(keys))) < len(keys):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start:\n" + (base / "worker0.log").read_text()[-3000:])
            time.sleep(0.3)
        stats, info = asyncio.run(bench(url, key, args.jobs, args.pollers, args.poll_interval, args.timeout))
        listing = httpx.get(url + "/api/v1/workers", headers={"X-API-Key": key}).json()
        metrics = httpx.get(url + "/metrics").text
        objects = boto3.client("s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="bench",
                               aws_secret_access_key="bench").list_objects_v2(Bucket=bucket, Prefix="bench/")
        local_blobs = [p for p in (data / "blobs").rglob("*") if p.is_file()] if (data / "blobs").exists() else []
    finally:
        procs.stop()

    print(f"packshot API load, loopback: {args.jobs} concurrent job submissions + {args.pollers} clients polling "
          f"every {args.poll_interval:g} s; SQLite (WAL); Celery over redis, {args.workers} REMOTE workers "
          f"(--api + worker key, own empty data dir, no database URL); blobs in S3 (moto server); "
          f"{os.cpu_count()} CPU cores")
    print("\n| request | count | errors | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|")
    errors = {kind: stats.errors[kind] for kind in stats.lat}
    for kind, lat in stats.lat.items():
        ms = [x * 1000 for x in lat]
        cells = [kind, len(lat), len(errors[kind]), *(f"{pct(ms, q):.0f}" for q in (50, 95, 99)), f"{max(ms):.0f}"]
        print("| " + " | ".join(map(str, cells)) + " |")
    for kind, errs in errors.items():
        for e in errs[:5]:
            print(f"error in {kind}: {e}")
    total_errors = sum(map(len, errors.values()))
    print(f"all {args.jobs} submissions answered in {info['submit_wall_s']:.2f} s; {info['accepted']} accepted (202)")
    print(f"every job finished after {info['all_done_s']:.1f} s ({info['accepted'] / info['all_done_s']:.1f} jobs/s); "
          f"final statuses {info['statuses']}")
    for w in listing.get("items", []):
        print(f"worker {w['name']} (key {w['key_name']}): device {w['device']}, queues {','.join(w['queues'])}, "
              f"last seen {w['seconds_since_seen']} s ago")
    for line in metrics.splitlines():
        if line.startswith(("packshot_queue_dispatched_total", "packshot_queue_workers")):
            print("  " + line)
    print(f"objects in the bucket: {objects.get('KeyCount', 0)}; blob files on the server's disk: {len(local_blobs)}")
    ok = total_errors == 0 and info["statuses"].get("succeeded", 0) == args.jobs
    print("zero errors" if ok else f"ERRORS: {total_errors} failed requests; statuses {info['statuses']}")
    if args.keep:
        print(f"logs kept in {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
