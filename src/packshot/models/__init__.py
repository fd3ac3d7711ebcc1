"""Model registry: known weights (id, kind, licence, size, where they are looked for), local
resolution (never an implicit download) and an LRU cache of loaded models.

Resolution order for ``resolve(ref)``: an existing local path (diffusers folder, transformers
folder or single ``.safetensors`` file) -> ``settings.model_dir / <id>`` -> the Hugging Face cache
(``local_files_only=True``). Missing weights raise MissingWeightsError naming the exact command that
fetches them: ``packshot models pull ID``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import Settings
from ..errors import MissingWeightsError, UnknownNameError


@dataclass(frozen=True)
class ModelSpec:
    id: str
    kind: str               # sd15-inpaint | sd2-inpaint | sdxl-inpaint | sd15 | sd2 | sdxl | controlnet |
                            # ip-adapter | sam | clip | clipseg
    repo_id: str            # Hugging Face repo id
    licence: str
    commercial_ok: bool
    size_gb: float
    description: str = ""
    files: tuple[str, ...] = ()   # allow_patterns for `models pull` (empty = whole repo)
    extra: dict[str, Any] = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> None:
    MODELS[spec.id] = spec


def get_spec(model_id: str) -> ModelSpec:
    try:
        return MODELS[model_id]
    except KeyError:
        raise UnknownNameError("model", model_id, sorted(MODELS)) from None


def _hf_cached(repo_id: str) -> Path | None:
    """The snapshot folder of ``repo_id`` in the Hugging Face cache, without network."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError and friends)
        return None


def resolve(ref: str, settings: Settings, kinds: tuple[str, ...] | None = None) -> Path:
    """A model reference (registry id, HF repo id or local path) -> local path. Never downloads."""
    path = Path(ref).expanduser()
    if path.exists():
        return path
    spec = MODELS.get(ref)
    repo = spec.repo_id if spec else ref
    if spec and kinds and spec.kind not in kinds:
        from ..errors import ModelError
        raise ModelError(f"model {ref!r} is a {spec.kind} model; this needs one of: {', '.join(kinds)}")
    for candidate in (settings.model_dir / ref, settings.model_dir / repo.replace("/", "--")):
        if candidate.exists():
            return candidate
    cached = _hf_cached(repo)
    if cached is not None:
        return cached
    if spec is None and ("/" not in ref or ref.startswith((".", "/", "~"))):
        raise MissingWeightsError(f"model {ref!r}: no such file or folder, and not a known model id "
                                  f"(see 'packshot models list')")
    raise MissingWeightsError(
        f"weights for {ref!r} are not present locally (looked in {settings.model_dir} and the Hugging Face "
        f"cache); fetch them with: packshot models pull {ref}")


def is_present(ref: str, settings: Settings) -> bool:
    try:
        resolve(ref, settings)
        return True
    except Exception:
        return False


class ModelCache:
    """Loaded models kept resident across calls and jobs; at most ``capacity``, LRU eviction.

    ``get(key, loader)`` returns the cached object or calls ``loader()`` once (concurrent callers
    of the same key wait for the one load). ``stats`` counts loads and hits (for benchmarks/tests).
    """

    def __init__(self, capacity: int = 2):
        self.capacity = max(1, capacity)
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.RLock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.stats = {"loads": 0, "hits": 0, "evictions": 0}

    def get(self, key: str, loader: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.stats["hits"] += 1
                return self._items[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    self.stats["hits"] += 1
                    return self._items[key]
            value = loader()  # errors propagate; nothing is cached on failure
            with self._lock:
                self._items[key] = value
                self.stats["loads"] += 1
                while len(self._items) > self.capacity:
                    old_key, old = self._items.popitem(last=False)
                    self.stats["evictions"] += 1
                    _release(old)
            return value

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            while self._items:
                _release(self._items.popitem()[1])


def _release(obj: Any) -> None:
    """Drop a model; free accelerator memory where torch is loaded."""
    del obj
    import sys
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


_CACHES: dict[str, ModelCache] = {}
_CACHES_LOCK = threading.Lock()


def model_cache(settings: Settings) -> ModelCache:
    """The process-wide cache for these settings (built on first use)."""
    key = f"{settings.resident_models}"
    with _CACHES_LOCK:
        if key not in _CACHES:
            _CACHES[key] = ModelCache(settings.resident_models)
        return _CACHES[key]
