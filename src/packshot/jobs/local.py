"""The built-in queue: worker threads inside the server process, the jobs table as the queue.

* ``model_slots`` worker threads; each takes a model slot, then claims the oldest queued job with
  an atomic conditional UPDATE (so several server processes may share one database), runs it and
  gives the slot back. A thread that finds nothing releases its slot and sleeps until a submission
  wakes it (or ``poll_s`` passes, to see jobs submitted by other processes).
* Nothing is kept only in memory: at start, jobs left ``running`` by a dead process (same host and
  its pid gone, or no heartbeat for ``stale_after_s``) go back to ``queued`` and run again, with
  the queued ones, oldest first. A reaper repeats that check while the server runs.
* On a graceful stop, running jobs are handed back to the queue at their next progress call.
"""
from __future__ import annotations

import logging
import threading

from ..config import Settings
from ..store import Store, worker_name
from .runner import JobRunner

log = logging.getLogger("packshot.jobs")


class LocalQueue:
    kind = "local"

    def __init__(self, store: Store, settings: Settings, runner: JobRunner, *, stale_after_s: float = 60.0,
                 poll_s: float = 1.0):
        self.store, self.settings, self.runner = store, settings, runner
        self.n_workers = runner.slots.n
        self.stale_after_s = stale_after_s
        self.poll_s = poll_s
        self._wake = threading.Condition()
        self._pending = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        requeued = self.store.requeue_interrupted(self.stale_after_s)
        if requeued:
            log.warning("re-queued %d interrupted job(s): %s", len(requeued), ", ".join(requeued))
        for i in range(self.n_workers):
            t = threading.Thread(target=self._work, args=(i,), name=f"packshot-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        reaper = threading.Thread(target=self._reap, name="packshot-reaper", daemon=True)
        reaper.start()
        self._threads.append(reaper)

    def submit(self, job_id: str) -> None:
        with self._wake:
            self._pending += 1
            self._wake.notify()

    def cancel(self, job_id: str) -> None:
        self.runner.cancel(job_id)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.runner.stop_event.set()  # running jobs go back to the queue at their next progress call
        with self._wake:
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout / max(1, len(self._threads)))
        self.runner.close()

    def _work(self, n: int) -> None:
        name = worker_name(n)
        while not self._stop.is_set():
            try:
                with self.runner.slots.hold():
                    job = self.store.claim(name)
                    if job is not None:
                        self.runner.run(job, name, slot_held=True)
                        continue
            except Exception:  # DB hiccup: log, wait, go on (the job stays in the table)
                log.exception("worker %s: claim/run failed", name)
            with self._wake:  # the queue was empty: sleep unless something was submitted meanwhile
                if self._pending == 0 and not self._stop.is_set():
                    self._wake.wait(self.poll_s)
                self._pending = 0

    def _reap(self) -> None:
        while not self._stop.wait(max(1.0, self.stale_after_s / 3)):
            try:
                if self.store.requeue_interrupted(self.stale_after_s):
                    self.submit("")
            except Exception:
                log.exception("reaper failed")
