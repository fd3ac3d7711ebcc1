"""Keep server paths out of what clients read.

Error messages name the bad value, and some name where the server looked ("no weights in
/home/u/.local/share/packshot/models/..."). Clients of the API must not learn the server's file
layout: :func:`redact` replaces the data dir, the model dir, the Hugging Face cache, the Python
prefix and the home directory with short labels. The full text stays in the server's log.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def _forms(path) -> list[str]:
    """A path as it may appear in a message: as given, resolved, and with ~ for the home dir."""
    out = set()
    try:
        p = Path(path).expanduser()
        for q in (p, p.resolve()):
            out.add(str(q))
    except (OSError, RuntimeError, ValueError):
        pass
    home = str(Path.home())
    for q in list(out):
        if q.startswith(home + os.sep):
            out.add("~" + q[len(home):])
    return [q for q in out if len(q) > 1]


def redact(text: str, settings=None) -> str:
    """``text`` with server paths replaced by labels ("<data dir>", "<model dir>", ...)."""
    if not text:
        return text
    pairs: list[tuple[str, str]] = []
    if settings is not None:
        pairs += [(f, "<model dir>") for f in _forms(settings.model_dir)]
        pairs += [(f, "<data dir>") for f in _forms(settings.data_dir)]
    hf = os.environ.get("HF_HOME") or os.environ.get("HF_HUB_CACHE")
    if hf:
        pairs += [(f, "<hf cache>") for f in _forms(hf)]
    pairs += [(f, "<hf cache>") for f in _forms(Path.home() / ".cache" / "huggingface")]
    pairs += [(f, "<python>") for f in _forms(sys.prefix)]
    if len(str(Path.home())) > 1:
        pairs += [(str(Path.home()), "~")]
    for src, label in sorted(pairs, key=lambda p: -len(p[0])):  # the longest (most specific) first
        text = text.replace(src, label)
    return text
