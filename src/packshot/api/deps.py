"""Dependencies as ``Annotated`` type aliases (``def route(store: StoreDep, owner: OwnerDep)``).

They are ``async def`` on purpose: FastAPI runs sync dependencies in the thread pool, and these
only read what the app and the middleware already prepared.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from ..config import Settings
from ..store import Store
from .cutouts import CutoutSessions
from .metrics import Metrics


@dataclass
class AppState:
    """Everything one app instance owns (nothing is global)."""

    settings: Settings
    store: Store
    queue: Any                      # packshot.jobs.JobQueue
    metrics: Metrics
    key_hashes: frozenset[str]
    cutouts: CutoutSessions | None = None
    decode_budget: Any = None       # packshot.io.DecodeBudget: memory of concurrent decodes
    _pipeline: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _engines_cache: tuple[float, Any] | None = None

    @property
    def pipeline(self):
        """The process's one Pipeline: the job runner's when jobs run here (models shared between
        jobs and interactive cutouts), else built on first use."""
        runner = getattr(self.queue, "runner", None)
        if runner is not None:
            return runner.pipeline
        with self._lock:
            if self._pipeline is None:
                from ..pipeline import Pipeline
                self._pipeline = Pipeline(self.settings)
            return self._pipeline


async def get_state(request: Request) -> AppState:
    return request.app.state.packshot


async def get_store(request: Request) -> Store:
    return request.app.state.packshot.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.packshot.settings


async def get_owner(request: Request) -> str:
    """sha256 of the caller's API key, set by GuardMiddleware ("" when no keys are configured)."""
    return request.scope.get("packshot.owner", "")


StateDep = Annotated[AppState, Depends(get_state)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
OwnerDep = Annotated[str, Depends(get_owner)]
