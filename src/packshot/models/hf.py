"""Hugging Face (transformers / diffusers) loading helpers shared by SAM, text prompts and diffusion.

One place for: reading a folder's ``model_type``, picking the torch device and dtype from the
Settings, the hint shown when only pickle weights are present, and quiet loading.

Quiet loading without process-wide changes: transformers draws its "Loading weights" bar through
``transformers.utils.logging.tqdm``, which calls a hook when one is set. We install one hook,
once, that silences bars only for threads currently inside :func:`quiet_loading` (a thread-local
depth counter), and otherwise passes through to whatever hook was there before. Other job threads
keep their bars and log levels; nothing global is toggled on and off.

Nothing here imports torch or transformers at import time.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import Settings
from .devices import select_device, select_dtype

_local = threading.local()
_hook_lock = threading.Lock()
_hook_installed = False


def model_type(path: Path) -> str | None:
    """``model_type`` from a transformers folder's config.json (None when there is none). No torch."""
    cfg = path / "config.json" if path.is_dir() else None
    if cfg is None or not cfg.is_file():
        return None
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def pick_device(settings: Settings) -> str:
    """``settings.device`` resolved (auto: cuda, then mps, then cpu)."""
    return select_device(settings)


def pick_dtype(settings: Settings, device: str) -> Any:
    """torch dtype for ``settings.dtype`` (auto: float32 on cpu, float16 on accelerators)."""
    import torch

    return getattr(torch, select_dtype(settings, device))


def pickle_hint(path: Path, settings: Settings) -> str:
    """Where a folder has only pickle weights (.bin/.pt) and they are not allowed: say how to allow."""
    if settings.allow_pickle_weights or not path.is_dir() or any(path.glob("*.safetensors")):
        return ""
    if any(path.glob("*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.pth")):
        return " (only pickle weights here; set PACKSHOT_ALLOW_PICKLE_WEIGHTS=1 to load them, unsafe)"
    return ""


def _quiet_here() -> bool:
    return getattr(_local, "depth", 0) > 0


def _install_hook() -> None:
    """Install (once) a transformers tqdm hook that silences bars in quiet threads only."""
    global _hook_installed
    with _hook_lock:
        if _hook_installed:
            return
        from transformers.utils import logging as hf_logging

        empty = hf_logging.EmptyTqdm
        previous = None

        def hook(factory, args, kwargs):
            if _quiet_here():
                return empty(*args, **kwargs)
            if previous is not None:
                return previous(factory, args, kwargs)
            return factory(*args, **kwargs)

        previous = hf_logging.set_tqdm_hook(hook)
        _hook_installed = True


@contextmanager
def quiet_loading():
    """No "Loading weights" progress bar in THIS thread while a model loads; other threads are
    untouched (see the module docstring)."""
    _install_hook()
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


def load_local(cls: Any, path: Path, settings: Settings, what: str) -> Any:
    """``cls.from_pretrained(path)`` from local files only, quietly, safetensors unless pickle
    weights are allowed; any failure (corrupt or missing files, wrong shapes, pickle refused) is
    one ModelError naming ``what`` and the folder."""
    from ..errors import ModelError

    try:
        with quiet_loading():
            return cls.from_pretrained(str(path), local_files_only=True,
                                       use_safetensors=None if settings.allow_pickle_weights else True)
    except Exception as e:
        raise ModelError(f"could not load {what} from {path}: {type(e).__name__}: {e}"
                         f"{pickle_hint(path, settings)}") from None
