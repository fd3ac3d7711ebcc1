"""Argument types and helpers shared by sub-commands (argparse only at import time)."""
from __future__ import annotations

import argparse
import sys
import time


def point(text: str) -> tuple[int, int]:
    try:
        x, y = (int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"point {text!r} is not X,Y (e.g. 120,340)") from None
    return x, y


def box(text: str) -> tuple[int, int, int, int]:
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"box {text!r} is not X0,Y0,X1,Y1 (e.g. 10,20,300,400)") from None
    if x1 <= x0 or y1 <= y0:
        raise argparse.ArgumentTypeError(f"box {text!r} must have X1 > X0 and Y1 > Y0")
    return x0, y0, x1, y1


def later(parser: argparse.ArgumentParser, fill) -> None:
    """Add ``fill(parser)``'s options only when this sub-command is parsed (or its --help shown):
    the schema-generated options import pydantic, which ``packshot --help`` never needs."""
    parser.deferred_fill = fill  # run by packshot.cli.OneLineParser.parse_known_args


class Progress:
    """A one-line progress bar on a terminal; silent when stderr is piped."""

    def __init__(self, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()
        self._last = ""

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(round(max(0.0, min(1.0, fraction)) * width))
        line = f"\r{stage:<10} [{'#' * filled}{'.' * (width - filled)}] {message[:40]:<40} " \
               f"{time.perf_counter() - self.t0:5.1f}s"
        if line != self._last:
            self.stream.write(line)
            self.stream.flush()
            self._last = line

    def done(self) -> None:
        if self.enabled and self._last:
            self.stream.write("\n")
            self.stream.flush()
