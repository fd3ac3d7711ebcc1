"""The ``packshot`` command: a thin layer over the library API.

Each sub-command lives in its own module with ``register(subparsers)``; modules import only
argparse at start-up, so ``packshot --help`` is instant. Errors the user can fix print one line
``packshot: error: …`` and exit 2; nothing is half-written.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__

# sub-command modules, in --help order; a missing module (optional part not built) is skipped
COMMANDS = ("cutout", "generate", "batch", "check", "presets", "prompt", "looks", "dataset", "train", "models", "serve", "worker")
EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (``packshot generate: error: … (see --help)``), exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_known_args(self, args=None, namespace=None):
        fill = self.__dict__.pop("deferred_fill", None)  # see cli.common.later
        if fill is not None:
            fill(self)
        return super().parse_known_args(args, namespace)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="packshot",
        description="Cut a product out of a photo and place it in a new scene described in words.")
    parser.add_argument("--version", action="version", version=f"packshot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..errors import PackshotError
    try:
        return int(args.func(args) or 0)
    except PackshotError as e:
        print(f"packshot: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("packshot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("PACKSHOT_DEBUG"):
            raise
        print(f"packshot: internal error: {type(e).__name__}: {e} (set PACKSHOT_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
