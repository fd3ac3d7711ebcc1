"""Catalog runs: a folder or CSV of products -> per SKU a main image + lifestyle images, a
contact-sheet report and a summary (:mod:`.inputs`, :mod:`.runner`, :mod:`.report`)."""
from __future__ import annotations

from .inputs import Row, read_rows
from .report import write_reports
from .runner import BatchOptions, run_rows

__all__ = ["BatchOptions", "Row", "read_rows", "run_rows", "write_reports"]
