"""The REST API (FastAPI): ``create_app(settings) -> FastAPI``. See docs in ``packshot.api.app``.

Importing this package imports FastAPI: only ``packshot serve`` (and tests) do.
"""
from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
