"""The heavy stack (torch, diffusers, transformers), imported lazily, and quiet loading per thread.

packshot reports its own progress and notes; library chatter on stderr would break the CLI's
one-line error contract. :func:`quiet` silences, for the calling thread only, transformers' and
diffusers' loading bars and their log records below ERROR. Nothing global is toggled on and off
while other job threads run: transformers' bars go through :func:`packshot.models.hf.quiet_loading`
(a tqdm hook), diffusers' bar factory and both libraries' stderr handlers get one filter each,
installed once, that looks at a thread-local depth. Library FutureWarnings/DeprecationWarnings
are ignored by one permanent warnings filter (``catch_warnings`` is not thread-safe).
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

from ...errors import DependencyMissingError

_local = threading.local()
_install_lock = threading.Lock()
_installed = False


def _quiet_here() -> bool:
    return getattr(_local, "depth", 0) > 0


class _ThreadFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not _quiet_here()


class _QuietBars:
    """Stands in for ``diffusers.utils.logging.tqdm``: an empty bar in quiet threads."""

    def __init__(self, original):
        self._original = original

    def __call__(self, *args, **kwargs):
        if _quiet_here():
            kwargs["disable"] = True
        return self._original(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._original, name)


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        import warnings
        for lib in ("diffusers", "transformers", "huggingface_hub", "accelerate"):
            warnings.filterwarnings("ignore", category=FutureWarning, module=lib)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=lib)
        try:
            import diffusers.utils.logging as dlog
            dlog.get_logger("diffusers")                 # configures the library's root handler
            if not isinstance(dlog.tqdm, _QuietBars):
                dlog.tqdm = _QuietBars(dlog.tqdm)
        except ImportError:
            pass
        try:
            import transformers.utils.logging as tlog
            tlog.get_logger("transformers")
        except ImportError:
            pass
        for name in ("diffusers", "transformers"):
            for h in logging.getLogger(name).handlers:
                if not any(isinstance(f, _ThreadFilter) for f in h.filters):
                    h.addFilter(_ThreadFilter())
        _installed = True


@contextmanager
def quiet() -> Iterator[None]:
    """No loading bars and no library warnings from THIS thread while importing/loading/running."""
    from ...models.hf import quiet_loading
    _install()
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        with quiet_loading():
            yield
    finally:
        _local.depth -= 1


def import_stack():
    """(torch, diffusers), or DependencyMissingError naming the extra."""
    try:
        import torch
        import diffusers
        import transformers  # noqa: F401
    except ImportError:
        raise DependencyMissingError("the diffusion engine", "ai") from None
    _install()
    return torch, diffusers
