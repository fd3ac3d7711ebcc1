"""The app factory: ``create_app(settings) -> FastAPI``. Nothing is built at import time.

Start-up (lifespan): open the Store (migrations run: ``alembic upgrade head``), sweep (in the
background) blobs left by dead jobs, start the job queue (in-process workers, or the Celery dispatcher), which first puts
interrupted jobs back in the queue. Shut-down: running local jobs go back to the queue.

Errors: every ``PackshotError`` becomes ``{"detail": message}`` with its ``http_status`` (server
paths in the message replaced by labels, :mod:`packshot.redact`; 503s carry ``Retry-After``);
request validation errors become 422 with a one-line detail naming the field and the value;
anything unexpected is a 500 (a database that cannot be reached, 503) whose detail is only a
request id: the exception, its SQL and its traceback go to the server log under that id.
"""
from __future__ import annotations

import logging
import threading
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import Settings
from ..errors import PackshotError
from .errors import _one_line, validation_detail

log = logging.getLogger("packshot.api")


def create_app(settings: Settings | None = None, *, queue_options=None, start_queue: bool = True) -> FastAPI:
    """Build the app for ``settings``. ``queue_options``: :class:`packshot.jobs.QueueOptions`."""
    from ..jobs import QueueOptions, make_queue
    from ..store import Store
    from .cutouts import CutoutSessions
    from .deps import AppState
    from .metrics import Metrics
    from ..io import DecodeBudget
    from .middleware import GuardMiddleware, MetricsMiddleware, WebSafetyMiddleware, key_hashes
    from .routes import jobs, meta, products, results, workers
    from .routes import looks as looks_routes

    settings = settings or Settings()
    queue_options = queue_options or QueueOptions()
    hashes = key_hashes(settings.api_keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import anyio.to_thread
        from starlette.concurrency import run_in_threadpool

        anyio.to_thread.current_default_thread_limiter().total_tokens = 64
        store = await run_in_threadpool(Store, settings)
        state: AppState | None = None
        try:
            metrics = Metrics(store.job_counts)
            queue = make_queue(settings, store, queue_options, on_finish=metrics.observe_job)
            runner = getattr(queue, "runner", None)
            if runner is not None:
                metrics.slots = lambda: (runner.slots.busy, runner.slots.n)
            state = AppState(settings=settings, store=store, queue=queue, metrics=metrics, key_hashes=hashes)
            workers.register_metrics(metrics, queue, store)  # per-queue counts and live workers
            state.cutouts = CutoutSessions(lambda: state.pipeline)
            state.decode_budget = DecodeBudget(settings.decode_budget_bytes)
            app.state.packshot = state
            app.state.guard_metrics = metrics
            # blobs no row names (a crash between writing a job's images and committing them): swept
            # in the background (a big store takes a while); safe while jobs run (see store.repo)
            threading.Thread(target=_sweep, args=(store,), name="packshot-blob-sweep", daemon=True).start()
            if start_queue:
                await run_in_threadpool(queue.start)
            yield
        finally:
            if state is not None:
                await run_in_threadpool(state.queue.stop)
            store.close()

    app = FastAPI(title="packshot", version=__version__, lifespan=lifespan,
                  description="Product photo studio: cut a product out of a photo and place it in new "
                              "scenes described in words. Errors are `{\"detail\": \"one line\"}`.")

    _install_error_handlers(app, settings)

    app.include_router(meta.router)
    for r in (meta.api, products.router, jobs.router, results.router, workers.router, workers.listing):
        app.include_router(r, prefix="/api/v1")
    app.include_router(looks_routes.router, prefix="/api/v1")
    from .routes import batches, check
    app.include_router(batches.router, prefix="/api/v1")
    app.include_router(check.router, prefix="/api/v1")
    from .routes import backgrounds
    app.include_router(backgrounds.router, prefix="/api/v1")
    from .routes import adapters
    app.include_router(adapters.router, prefix="/api/v1")

    # middleware: metrics outermost (sees 401/429/413 too), then the guard
    app.add_middleware(GuardMiddleware, key_hashes=hashes, per_minute=settings.rate_limit_per_minute,
                       max_body=settings.max_upload_bytes + 1024 * 1024)
    app.add_middleware(MetricsMiddleware, metrics=_LazyMetrics(app))
    app.add_middleware(WebSafetyMiddleware, settings=settings, key_hashes=hashes)  # outermost: headers on every answer

    from ..web import mount  # part of the package: a broken web module must raise, not vanish
    mount(app)
    return app


def _install_error_handlers(app: FastAPI, settings: Settings) -> None:
    """PackshotError -> its status; validation -> 422; HTTP errors one line; anything else a
    request id only (see the module docstring)."""
    from ..redact import redact

    @app.exception_handler(PackshotError)
    async def _packshot_error(request: Request, exc: PackshotError):
        headers = None
        if exc.http_status == 503:
            headers = {"Retry-After": str(getattr(exc, "retry_after_s", 2))}
        return JSONResponse({"detail": redact(exc.message, settings)}, status_code=exc.http_status,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": validation_detail(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's body parse
            return JSONResponse({"detail": "the request body is not valid UTF-8"}, status_code=422)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
        return JSONResponse({"detail": _one_line(detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        rid = uuid.uuid4().hex[:16]
        log.error("internal error %s on %s %s", rid, request.method, request.url.path, exc_info=exc)
        status, what = 500, "internal error"
        if _is_db_unavailable(exc):
            status, what = 503, "the database is unavailable"
        return JSONResponse({"detail": f"{what} (request id {rid}); the server log has the details"},
                            status_code=status, headers={"X-Request-ID": rid, **({"Retry-After": "5"} if status == 503 else {})})


def _is_db_unavailable(exc: Exception) -> bool:
    try:
        from sqlalchemy.exc import DisconnectionError, OperationalError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (OperationalError, DisconnectionError))


def _sweep(store) -> None:
    try:
        n = store.sweep_blobs()
        if n:
            log.warning("removed %d unreferenced blob(s)", n)
    except Exception:  # the store may be closing; next start sweeps again
        log.warning("blob sweep failed", exc_info=True)


class _LazyMetrics:
    """The metrics object exists once the lifespan ran; requests before that are not counted."""

    def __init__(self, app: FastAPI):
        self.app = app

    def observe_request(self, *args) -> None:
        m = getattr(self.app.state, "guard_metrics", None)
        if m is not None:
            m.observe_request(*args)
