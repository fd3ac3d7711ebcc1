"""Prometheus metrics, in a registry owned by one app (no process-global state).

* ``packshot_http_requests_total{method,route,status}`` and ``packshot_http_request_seconds{route}``
* ``packshot_jobs{status}``: jobs in the table by status (read at scrape time)
* ``packshot_job_seconds{status}``: wall time of the jobs this process ran
* ``packshot_model_slots{state=busy|total}`` for the in-process queue
"""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _JobCollector:
    def __init__(self, counts: Callable[[], dict[str, int]], metrics: "Metrics"):
        self.counts, self.metrics = counts, metrics

    def collect(self):
        from ..store import JOB_STATUSES

        g = GaugeMetricFamily("packshot_jobs", "Jobs in the queue table by status.", labels=["status"])
        try:
            counts = self.counts()
        except Exception:  # DB unavailable: report nothing rather than fail the scrape
            counts = {}
        for st in JOB_STATUSES:
            g.add_metric([st], counts.get(st, 0))
        yield g
        s = self.metrics.slots()
        if s is not None:
            m = GaugeMetricFamily("packshot_model_slots", "Model slots of this process.", labels=["state"])
            m.add_metric(["busy"], s[0])
            m.add_metric(["total"], s[1])
            yield m


class Metrics:
    def __init__(self, job_counts: Callable[[], dict[str, int]],
                 slots: Callable[[], tuple[int, int] | None] = lambda: None):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("packshot_http_requests", "HTTP requests.", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("packshot_http_request_seconds", "HTTP request latency.", ["route"],
                                 registry=self.registry,
                                 buckets=(.002, .005, .01, .025, .05, .1, .175, .25, .375, .5, .75, 1, 1.5, 2.5, 5, 10))
        self.job_seconds = Histogram("packshot_job_seconds", "Wall time of jobs run in this process.",
                                     ["status"], registry=self.registry,
                                     buckets=(.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
        self.slots = slots  # () -> (busy, total) | None; set once the queue exists
        self.registry.register(_JobCollector(job_counts, self))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        if not route.startswith("/static"):
            self.latency.labels(route).observe(seconds)

    def observe_job(self, job_id: str, status: str, seconds: float) -> None:
        self.job_seconds.labels(status).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
