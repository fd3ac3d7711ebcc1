"""Server-sent events for a row that changes while a worker runs it (a job, a training run):
``data: <JSON>`` on every change until it is finished, a keep-alive comment every 15 s, and
``event: error`` when the row is deleted meanwhile. The row is polled (every 0.25 s): the worker
may be another process, which writes only to the database."""
from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..errors import NotFoundError

SSE_RESPONSES = {200: {"content": {"text/event-stream": {}},
                       "description": "Server-sent events: `data: <JSON>` on every change until it is finished."}}


def poll_events(request: Request, first: Any, load: Callable[[], Any], dump: Callable[[Any], str],
                finished: Callable[[Any], bool], gone: str) -> StreamingResponse:
    """Stream ``dump(row)`` from ``first`` on; ``load()`` reads the row again (NotFoundError: gone)."""

    async def stream():
        current, last, quiet = first, None, 0.0
        while True:
            data = dump(current)
            if data != last:
                yield f"data: {data}\n\n"
                last, quiet = data, 0.0
            if finished(current) or await request.is_disconnected():
                return
            await asyncio.sleep(0.25)
            quiet += 0.25
            if quiet >= 15:
                yield ": keep-alive\n\n"
                quiet = 0.0
            try:
                current = await run_in_threadpool(load)
            except NotFoundError:  # deleted meanwhile
                yield "event: error\ndata: " + json.dumps({"detail": gone}) + "\n\n"
                return

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
