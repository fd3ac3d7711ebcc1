"""Bad input at scale: schemathesis, driven by /openapi.json, against a live ``packshot serve``.

Zero 5xx answers allowed. Two independent witnesses: schemathesis' ``not_a_server_error`` check,
and the server's own Prometheus counter of responses by status after the run.

Real ids (products, photos, jobs, results made before the run) are offered to schemathesis through
its config file for 70% of the id parameters, so it reaches past the 404s into the real handlers
(uploads, cutouts, jobs, ratings). DELETE operations run last, in a second pass, so they do not
remove those ids before the other operations had them.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from services import Server, create_product, photo_bytes, wait_job

KEY = "fuzz-key-1"
METRICS_KEY = "schemathesis-operator-key"


def schemathesis_config(ids: dict[str, list[str]]) -> str:
    lines = []
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for where, param, name in [("path", "product_id", "products"), ("path", "photo_id", "photos"),
                               ("path", "job_id", "jobs"), ("path", "result_id", "results"),
                               ("query", "product_id", "products"), ("body", "product_id", "products"),
                               ("body", "photo_id", "photos")]:
        lines.append(f'"{where}.{param}" = {{ dictionary = "{name}", probability = 0.7 }}')
    return "\n".join(lines) + "\n"


def run_schemathesis(server: Server, config: Path, cwd: Path, *extra: str) -> str:
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [str(exe), "--config-file", str(config), "run", f"{server.url}/openapi.json", "-H", f"X-API-Key: {KEY}",
           "--checks", "not_a_server_error,content_type_conformance", "--seed", "20261121",
           # one worker: schemathesis' own coverage phase is not thread-safe here (internal KeyError)
           "--workers", "1", "--request-timeout", "60", "--generation-database", "none", "--no-color",
           "--suppress-health-check", "all", *extra]
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=400)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert "Server error" not in out and re.search(r"\d+ generated, \d+ passed", out), out[-3000:]
    return out


def test_schemathesis_finds_no_server_errors(tmp_path):
    # small canvases only, so that the jobs schemathesis manages to create stay cheap
    server = Server(tmp_path / "data", api_keys=(KEY,), args=("--model-slots", "1"),
                    env={"PACKSHOT_MAX_OUTPUT_SIDE": 512, "PACKSHOT_RATE_LIMIT_PER_MINUTE": 1_000_000,
                         "PACKSHOT_METRICS_KEY": METRICS_KEY}).start()
    try:
        with server.client() as c:
            products = [create_product(c, f"seed {i}", [photo_bytes(seed=i)]) for i in range(2)]
            jobs = [wait_job(c, c.post("/api/v1/jobs", json={"product_id": p["id"], "n": 2, "size": "128x128"}
                                       ).json()["id"]) for p in products]
        ids = {"products": [p["id"] for p in products], "photos": [p["photos"][0]["id"] for p in products],
               "jobs": [j["id"] for j in jobs], "results": [r for j in jobs for r in j["result_ids"]]}
        config = tmp_path / "schemathesis.toml"
        config.write_text(schemathesis_config(ids))
        run_schemathesis(server, config, tmp_path, "--exclude-method", "DELETE", "--max-examples", "20",
                         "--phases", "examples,coverage,fuzzing,stateful", "--max-time", "80")
        run_schemathesis(server, config, tmp_path, "--include-method", "DELETE", "--max-examples", "10",
                         "--phases", "examples,coverage,fuzzing", "--max-time", "20")
        with server.client(METRICS_KEY) as c:  # /metrics is for operators only
            metrics = c.get("/metrics").text
        counted = re.findall(r'packshot_http_requests_total\{method="(\w+)",route="([^"]*)",status="(\d+)"\} (\S+)',
                             metrics)
        total = sum(float(n) for *_, n in counted)
        reached = {r for _, r, s, _ in counted if s.startswith("2")}
        server_errors = [(m, r, s, n) for m, r, s, n in counted if s.startswith("5")]
        assert total > 1000, f"schemathesis made only {total:.0f} requests"
        assert not server_errors, server_errors
        # it got past validation and ownership checks into the real handlers
        for route in ("/api/v1/products", "/api/v1/jobs", "/api/v1/photos/{photo_id}/cutout/preview",
                      "/api/v1/results/{result_id}/rating", "/api/v1/products/{product_id}/history"):
            assert route in reached, (route, sorted(reached))
        assert "Traceback" not in server.log(), server.log()[-4000:]
    finally:
        server.stop()
