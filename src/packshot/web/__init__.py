"""The packshot web app: plain static files (HTML, CSS, ES modules), no build step, no CDN.

``mount(app)`` adds two things to a FastAPI app built by ``packshot.api.create_app``:

- ``/static/...``: everything under ``web/static`` (index.html, app.css, js/*.js, icons);
- ``GET /``: ``index.html`` (the single page; routing lives in ``location.hash``:
  ``#/``, ``#/product/ID/generate``, ``#/product/ID/history``).

All assets are served from this package, so the app works on a laptop with no internet.
The client talks only to the REST API described in the API docs (``/api/v1/...``).

Design notes (choices a user can see):

- Live mask preview: the client keeps the whole click list (positive points, negative points,
  boxes) and POSTs all of it to ``/api/v1/photos/{id}/cutout/preview`` after each edit
  (debounced, stale answers dropped); the greyscale mask is drawn as a tinted overlay.
  Pressing Generate commits unsaved edits first (``PUT .../cutout``).
- "Variations" of a candidate: a new job with that candidate's own prompt and settings,
  ``seed = candidate seed + 100`` and the current number of candidates, so the new batch is
  reproducible and never repeats a seed of the batch it came from (candidate i of a job uses
  seed + i, and batches are at most 16).
- Images and downloads go through ``fetch`` when an API key is set, so the key travels as the
  ``X-API-Key`` header; progress comes from the SSE stream read with ``fetch`` (same reason),
  falling back to polling ``GET /api/v1/jobs/{id}``.
"""
from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"


def mount(app) -> None:
    """Serve the web app on ``app``: StaticFiles at ``/static`` and ``index.html`` at ``GET /``."""
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    index = STATIC_DIR / "index.html"
    # no-cache: the browser revalidates (ETag) so an upgraded server never runs stale modules
    headers = {"Cache-Control": "no-cache"}

    class _Static(StaticFiles):
        async def get_response(self, path, scope):  # noqa: D401 - starlette hook
            response = await super().get_response(path, scope)
            response.headers.setdefault("Cache-Control", "no-cache")
            return response

    app.mount("/static", _Static(directory=str(STATIC_DIR)), name="static")

    @app.get("/", include_in_schema=False)
    def web_index():
        return FileResponse(index, media_type="text/html", headers=headers)
