"""Trained adapters (LoRA, DreamBooth-LoRA, textual inversion) as first-class models.

An adapter is a folder::

    packshot_adapter.json            metadata (ADAPTER_META, below)
    pytorch_lora_weights.safetensors LoRA / DreamBooth-LoRA: diffusers' own LoRA file, loaded with
                                     ``pipe.load_lora_weights(folder)``
    learned_embeds.safetensors       textual inversion: diffusers' own embedding file, loaded with
                                     ``pipe.load_textual_inversion(folder, token=...)``
                                     (SDXL: keys ``clip_l`` and ``clip_g``, one per text encoder)
    references/*.png                 RGBA cut-outs of the training photos (<= 512 px): the
                                     reference for the similarity score at generation time

Named adapters live in ``<model_dir>/adapters/<name>/``; ``--adapter`` takes a name or a folder.

The metadata records what a user needs to reproduce and trust the adapter: the base model (its
reference as given, its registry id if any, its family and an architecture fingerprint), the
method, the trigger token, steps, final loss, the training photos' SHA-256 content hashes and the
packshot version. The architecture fingerprint decides whether an adapter fits a base: two
checkpoints of one architecture (SD 1.5 and a fine-tune of it) share it; SD 1.5 and SDXL do not.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, ModelError

META_FILE = "packshot_adapter.json"
LORA_FILE = "pytorch_lora_weights.safetensors"
EMBEDS_FILE = "learned_embeds.safetensors"
REFERENCES_DIR = "references"
FORMAT = 1
METHODS = ("lora", "dreambooth-lora", "textual-inversion")

# UNet / text-encoder config keys that decide whether LoRA or embedding shapes fit
_UNET_KEYS = ("block_out_channels", "cross_attention_dim", "layers_per_block", "attention_head_dim",
              "transformer_layers_per_block", "addition_embed_type", "down_block_types", "up_block_types",
              "use_linear_projection")
_TEXT_KEYS = ("hidden_size", "num_hidden_layers", "vocab_size")


@dataclass(frozen=True)
class AdapterInfo:
    """An adapter folder's metadata, read and checked."""

    path: Path
    name: str
    method: str
    token: str
    base_ref: str
    base_id: str | None
    family: str                      # "sd" | "sdxl"
    fingerprint: str                 # architecture fingerprint of the base (base_fingerprint)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def weights_file(self) -> Path:
        return self.path / (EMBEDS_FILE if self.method == "textual-inversion" else LORA_FILE)

    @property
    def references(self) -> list[Path]:
        d = self.path / REFERENCES_DIR
        return sorted(d.glob("*.png")) if d.is_dir() else []


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _config(folder: Path, sub: str) -> dict[str, Any]:
    p = folder / sub / "config.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def base_fingerprint(folder: str | Path) -> str:
    """A short hash of the architecture of a diffusers pipeline folder (UNet and text encoders'
    shapes, not their weights). Adapters trained on one checkpoint fit every checkpoint that
    shares it."""
    folder = Path(folder)
    unet = _config(folder, "unet")
    if not unet:
        raise ModelError(f"{folder} is not a diffusers pipeline folder (no unet/config.json)")
    parts: dict[str, Any] = {"unet": {k: unet.get(k) for k in _UNET_KEYS}}
    for sub in ("text_encoder", "text_encoder_2"):
        cfg = _config(folder, sub)
        if cfg:
            parts[sub] = {k: cfg.get(k) for k in _TEXT_KEYS if k != "vocab_size"}
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def base_family(folder: str | Path) -> str:
    return "sdxl" if (Path(folder) / "text_encoder_2").is_dir() else "sd"


def write_metadata(folder: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``packshot_adapter.json`` atomically (a reader never sees half a file)."""
    folder = Path(folder)
    missing = [k for k in ("name", "method", "token", "base") if k not in meta]
    if missing:
        raise ValueError(f"adapter metadata lacks {', '.join(missing)}")
    meta = {"format": FORMAT, **meta}
    tmp = folder / f".{META_FILE}.part"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp, folder / META_FILE)
    return folder / META_FILE


def read_adapter(folder: str | Path) -> AdapterInfo:
    """Read and check an adapter folder; a missing or corrupt one raises with the folder named."""
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise InvalidInputError(f"{folder} is not a packshot adapter (no {META_FILE})")
    try:
        meta = json.loads(meta_path.read_text())
        base = meta["base"]
        info = AdapterInfo(path=folder, name=str(meta["name"]), method=str(meta["method"]),
                           token=str(meta["token"]), base_ref=str(base["ref"]), base_id=base.get("id"),
                           family=str(base["family"]), fingerprint=str(base["fingerprint"]), meta=meta)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"adapter {folder}: {META_FILE} is corrupt ({type(e).__name__}: {e})") from None
    if info.method not in METHODS:
        raise ModelError(f"adapter {folder}: unknown method {info.method!r} (expected one of {', '.join(METHODS)})")
    if not info.weights_file.is_file():
        raise ModelError(f"adapter {folder}: weights missing ({info.weights_file.name})")
    return info


# -- finding, listing and checking adapters (generation side) ----------------------------------------

ADAPTERS_DIR = "adapters"
FAMILY_NAMES = {"sd": "SD 1.x/2.x", "sdxl": "SDXL"}


def adapters_dir(settings) -> Path:
    """``<model_dir>/adapters``: where named adapters live."""
    return Path(settings.model_dir) / ADAPTERS_DIR


def check_weights(info: AdapterInfo) -> None:
    """The weights file is a whole safetensors file of the adapter's kind (headers only, no torch):
    LoRA tensors for LoRA methods; one embedding per text encoder for textual inversion."""
    from . import safetensors_header
    try:
        header = safetensors_header(info.weights_file)
    except ModelError as e:
        raise ModelError(f"adapter {info.name!r}: {e}") from None
    keys = [k for k in header if k != "__metadata__"]
    if info.method == "textual-inversion":
        want = ("clip_l", "clip_g") if info.family == "sdxl" else ()
        missing = [k for k in want if k not in keys]
        if not keys or missing:
            raise ModelError(f"adapter {info.name!r}: {info.weights_file} is not a textual-inversion embedding "
                             f"for {FAMILY_NAMES.get(info.family, info.family)}"
                             + (f" (no {', '.join(missing)})" if missing else " (no tensors)"))
    elif not any("lora" in k for k in keys):
        raise ModelError(f"adapter {info.name!r}: {info.weights_file} holds no LoRA weights")


def scan_adapters(settings) -> tuple[list[AdapterInfo], list[tuple[Path, str]]]:
    """Every folder under ``<model_dir>/adapters``: (usable adapters, [(folder, problem)]) by name.
    A folder still being written (no metadata yet) is skipped."""
    root = adapters_dir(settings)
    good: list[AdapterInfo] = []
    bad: list[tuple[Path, str]] = []
    if not root.is_dir():
        return good, bad
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (folder / META_FILE).exists():
            continue
        try:
            info = read_adapter(folder)
            check_weights(info)
        except (InvalidInputError, ModelError) as e:
            bad.append((folder, str(e)))
            continue
        good.append(info)
    return good, bad


def list_adapters(settings) -> list[AdapterInfo]:
    """The usable named adapters in ``<model_dir>/adapters`` (broken ones: :func:`scan_adapters`)."""
    return scan_adapters(settings)[0]


def find_adapter(ref: str | Path, settings) -> AdapterInfo:
    """An adapter by name (``<model_dir>/adapters/<name>``) or folder, read and checked (metadata,
    weights file whole and of the adapter's kind). Unknown name -> UnknownNameError listing the known
    adapters; a folder that is not a whole adapter -> one line naming it."""
    from ..errors import UnknownNameError
    text = str(ref).strip()
    path = Path(text).expanduser()
    named = adapters_dir(settings) / text
    if path.is_dir():
        folder = path
    elif text and "/" not in text and "\\" not in text and text not in (".", "..") and named.is_dir():
        folder = named
    elif path.exists():
        raise InvalidInputError(f"adapter {text!r} is a file; an adapter is a folder holding {META_FILE}")
    else:
        known = [a.path.name for a in list_adapters(settings)]   # a name is its folder's name
        if "/" in text or text.startswith((".", "~")):
            raise InvalidInputError(f"adapter {text!r}: no such folder (named adapters in "
                                    f"{adapters_dir(settings)}: {', '.join(known) or 'none'})")
        raise UnknownNameError("adapter", text, known)
    info = read_adapter(folder)
    check_weights(info)
    return info


def _base_folder(base: Any) -> tuple[Path, str]:
    """(folder whose configs describe the base, the name to show) for a folder path or a ModelInfo."""
    if isinstance(base, (str, Path)):
        return Path(base), Path(base).name
    folder = getattr(base, "config_dir", None) or base.path
    return Path(folder), str(getattr(base, "name", Path(base.path).name))


def check_adapter_base(info: AdapterInfo, base: Any) -> str | None:
    """Refuse an adapter on a base of another architecture (one line naming both models); None when
    it was made for this very base, else a note (same architecture, another checkpoint).

    ``base``: a diffusers pipeline folder, or a ``ModelInfo`` (a single-file checkpoint is judged
    by its configs folder)."""
    folder, name = _base_folder(base)
    fingerprint, family = base_fingerprint(folder), base_family(folder)
    if fingerprint != info.fingerprint or family != info.family:
        theirs, ours = FAMILY_NAMES.get(info.family, info.family), FAMILY_NAMES.get(family, family)
        if family == info.family:   # one family, another architecture (SD 1.x vs 2.x, a resized UNet)
            theirs, ours = f"{theirs}, architecture {info.fingerprint}", f"{ours}, architecture {fingerprint}"
        raise InvalidInputError(f"adapter {info.name!r} was trained for {info.base_ref} ({theirs}), not for {name} "
                                f"({ours}): use it with its base model or train one for {name}")
    same = {info.base_ref, info.base_id} & {name, str(getattr(base, "name", name))}
    try:
        same = same or Path(info.base_ref).expanduser().resolve() == folder.resolve()
    except OSError:
        pass
    if same:
        return None
    return (f"adapter {info.name!r} was trained on {info.base_ref}; used with {name} (same architecture, "
            f"another checkpoint)")
