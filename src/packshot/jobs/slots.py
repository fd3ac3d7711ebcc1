"""Model slots: how many jobs may run a model at once in this process.

A slot is a ``BoundedSemaphore`` permit held by the code that runs the model, and released only by
that holder in a ``finally``. A caller that gives up waiting (timeout) never held a permit and so
never releases one: the count can neither leak nor grow past ``n`` (a second release would raise).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from ..errors import PackshotError


class SlotsBusyError(PackshotError):
    """Every model slot stayed busy for the whole wait."""

    http_status = 503


class ModelSlots:
    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"model slots must be >= 1, got {n}")
        self.n = n
        self._sem = threading.BoundedSemaphore(n)
        self._lock = threading.Lock()
        self._busy = 0

    @property
    def busy(self) -> int:
        return self._busy

    @contextmanager
    def hold(self, timeout: float | None = None) -> Iterator[None]:
        """Hold one slot for the body. Raises SlotsBusyError after ``timeout`` seconds of waiting
        (``None``: wait as long as it takes) without having taken anything."""
        if not self._sem.acquire(timeout=timeout):
            raise SlotsBusyError(f"all {self.n} model slots are busy; try again in a moment")
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
            self._sem.release()
