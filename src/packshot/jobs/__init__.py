"""Generation jobs: a persistent queue (the jobs table) and who runs it.

* ``local`` (default, :class:`~packshot.jobs.local.LocalQueue`): worker threads inside the server,
  at most ``Settings.model_slots`` running a model at once.
* ``celery`` (:class:`~packshot.jobs.celery_app.CeleryQueue`): the server only enqueues; ``packshot
  worker`` processes (GPU machines) run the jobs.

Both run a job the same way (:class:`~packshot.jobs.runner.JobRunner`), both survive crashes: a job
the API accepted is in the database before the API answers 202, and queued or interrupted jobs are
run again after a restart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..config import Settings


class JobQueue(Protocol):
    kind: str
    runner: object | None  # the JobRunner when jobs run in this process, else None

    def start(self) -> None: ...

    def submit(self, job_id: str) -> None:
        """Tell the runners a job was committed to the table (a hint: the table is the truth)."""

    def cancel(self, job_id: str) -> None:
        """Stop the job fast if it runs here (the DB cancel flag covers every other case)."""

    def stop(self, timeout: float = 10.0) -> None: ...


@dataclass(frozen=True)
class QueueOptions:
    """Timing knobs. ``stale_after_s``: a running job whose worker has not sent a heartbeat for
    this long is taken as interrupted (workers beat every ``stale_after_s / 5``, at most 5 s).
    ``step_delay_s``: test hook, see :mod:`packshot.jobs.runner`."""

    stale_after_s: float = 60.0
    visibility_timeout_s: float = 600.0
    step_delay_s: float = 0.0


def make_queue(settings: Settings, store, options: QueueOptions = QueueOptions(), *, on_finish=None) -> JobQueue:
    if settings.queue == "local":
        from .local import LocalQueue
        from .runner import JobRunner
        from .slots import ModelSlots

        runner = JobRunner(store, settings, slots=ModelSlots(settings.model_slots),
                           step_delay_s=options.step_delay_s,
                           heartbeat_s=max(0.5, min(5.0, options.stale_after_s / 5)), on_finish=on_finish)
        return LocalQueue(store, settings, runner, stale_after_s=options.stale_after_s)
    if settings.queue == "celery":
        from .celery_app import CeleryQueue

        return CeleryQueue(store, settings, stale_after_s=options.stale_after_s,
                           visibility_timeout_s=options.visibility_timeout_s)
    from ..errors import InvalidInputError
    raise InvalidInputError(f"queue {settings.queue!r} is not one of: local, celery")
