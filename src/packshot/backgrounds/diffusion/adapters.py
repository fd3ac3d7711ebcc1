"""Trained adapters (``request.adapters``) on a loaded pipeline, for one render.

:func:`resolve_adapters` (no torch) runs in the engine's ``check()``: every adapter is found
(``models.adapters.find_adapter``: a name under ``<model_dir>/adapters`` or a folder), checked
against the resolved base model (architecture fingerprint) and for token conflicts, so a bad
adapter fails before any heavy work.

:func:`apply_adapters` runs under the ``LoadedPipeline``'s lock, on the pipeline (or ``from_pipe``
view: they share the UNet and text encoders, so every view sees what is loaded) used for the render:

* LoRA / DreamBooth-LoRA: ``pipe.load_lora_weights(folder, adapter_name=...)`` once per adapter
  file (kept loaded, by name, in :class:`AdapterState`, shared by every LoadedPipeline on the same
  modules), then ``set_adapters(names, adapter_weights)`` for this render; a render without LoRA
  calls ``disable_lora()``: peft's disabled layers return the base layer's output unchanged, so the
  image is bit-identical to a pipeline that never saw the adapter (tested).
* Textual inversion: ``pipe.load_textual_inversion(embedding, token=...)`` once (SDXL: ``clip_l``
  into text_encoder/tokenizer, ``clip_g`` into text_encoder_2/tokenizer_2) and kept loaded: a new
  token adds embedding rows and leaves every other token's rows as they were (prompts without it are
  unchanged, tested). The same token from another adapter file replaces it
  (``unload_textual_inversion`` first).
"""
from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InvalidInputError, ModelError
from ...models.adapters import AdapterInfo, check_adapter_base, find_adapter

MAX_LORAS = 8          # LoRA adapters kept loaded on one model; the least recently used goes first
TI = "textual-inversion"


@dataclass(frozen=True)
class ActiveAdapter:
    """One adapter of a request, resolved: its folder's metadata and the weight it runs at."""

    info: AdapterInfo
    weight: float

    @property
    def is_ti(self) -> bool:
        return self.info.method == TI

    def describe(self) -> str:
        return f"{self.info.name}:{self.weight:g} ({self.info.method}, {self.info.token})"


def _vocabulary(folder: Path) -> set[str]:
    words: set[str] = set()
    for sub in ("tokenizer", "tokenizer_2"):
        p = folder / sub / "vocab.json"
        try:
            words |= set(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return words


def resolve_adapters(req, model, settings, notes: list[str]) -> list[ActiveAdapter]:
    """The request's adapters, found and checked against ``model`` (a ModelInfo), weight 0 dropped.
    Raises one line naming the adapter (and both models for a wrong base)."""
    from ...schema import parse_adapter
    out: list[ActiveAdapter] = []
    seen: dict[Path, str] = {}
    ti_tokens: dict[str, str] = {}
    vocab: set[str] | None = None
    for text in getattr(req, "adapters", None) or []:
        ref, weight = parse_adapter(text)
        info = find_adapter(ref, settings)
        key = info.path.resolve()
        if key in seen:
            raise InvalidInputError(f"adapter {ref!r} is given twice (also as {seen[key]!r}); give it once "
                                    f"with one weight")
        seen[key] = ref
        note = check_adapter_base(info, model)
        if note:
            notes.append(note)
        if info.method == TI:
            if info.token in ti_tokens:
                raise InvalidInputError(f"adapters {ti_tokens[info.token]!r} and {info.name!r} both bind the "
                                        f"textual-inversion token {info.token!r}: use one of them")
            if vocab is None:
                vocab = _vocabulary(Path(getattr(model, "config_dir", None) or model.path))
            if info.token in vocab or f"{info.token}</w>" in vocab:
                raise InvalidInputError(f"adapter {info.name!r}: its token {info.token!r} is already a word of "
                                        f"{model.name}'s tokenizer; a textual inversion needs a new token")
            ti_tokens[info.token] = info.name
            if weight not in (0.0, 1.0):
                notes.append(f"adapter {info.name!r} is a textual inversion: weight {weight:g} does not apply "
                             f"(its token is in the prompt or not)")
                weight = 1.0
        if weight == 0.0:
            notes.append(f"adapter {info.name!r} at weight 0: not applied")
            continue
        out.append(ActiveAdapter(info, weight))
    return out


@dataclass
class AdapterState:
    """What is loaded on one set of pipeline modules (shared by its from_pipe variants)."""

    loras: "OrderedDict[tuple, str]" = field(default_factory=OrderedDict)   # file key -> adapter_name
    tis: dict[str, tuple[tuple, list[str]]] = field(default_factory=dict)  # token -> (file key, all tokens)
    counter: int = 0
    stats: dict[str, int] = field(default_factory=lambda: {"lora_loads": 0, "ti_loads": 0, "lora_evictions": 0})


def _file_key(info: AdapterInfo) -> tuple:
    st = info.weights_file.stat()
    return str(info.weights_file.resolve()), st.st_size, st.st_mtime_ns


def _load_error(info: AdapterInfo, e: Exception) -> ModelError:
    msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
    return ModelError(f"adapter {info.name!r} ({info.path}) cannot be loaded: {type(e).__name__}: {msg}")


def _ensure_lora(pipe, state: AdapterState, a: ActiveAdapter, keep: set[str]) -> str:
    key = _file_key(a.info)
    if key in state.loras:
        state.loras.move_to_end(key)
        return state.loras[key]
    while len(state.loras) >= MAX_LORAS:
        old_key = next((k for k, n in state.loras.items() if n not in keep), None)
        if old_key is None:
            break
        pipe.delete_adapters([state.loras.pop(old_key)])
        state.stats["lora_evictions"] += 1
    name = f"packshot_{state.counter}"
    state.counter += 1
    # several adapters on one model are intended here: peft's warning about it is noise on the CLI
    # (a permanent filter: catch_warnings is not thread-safe)
    warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute", category=UserWarning)
    try:
        pipe.load_lora_weights(str(a.info.path), weight_name=a.info.weights_file.name, adapter_name=name,
                               local_files_only=True)
    except Exception as e:
        raise _load_error(a.info, e) from None
    state.loras[key] = name
    state.stats["lora_loads"] += 1
    return name


def _encoders(pipe, family: str) -> list[tuple[str, Any, Any]]:
    """(state-dict key, text encoder, tokenizer) pairs a textual inversion goes into."""
    if family == "sdxl":
        return [("clip_l", pipe.text_encoder, pipe.tokenizer), ("clip_g", pipe.text_encoder_2, pipe.tokenizer_2)]
    return [("clip_l", pipe.text_encoder, pipe.tokenizer)]


def _ensure_ti(pipe, state: AdapterState, a: ActiveAdapter, family: str) -> None:
    from safetensors.torch import load_file
    key, token = _file_key(a.info), a.info.token
    if token in state.tis:
        if state.tis[token][0] == key:
            return
        for _k, enc, tok in _encoders(pipe, family):   # the same token from another file: replace it
            pipe.unload_textual_inversion(state.tis[token][1], tokenizer=tok, text_encoder=enc)
        del state.tis[token]
    try:
        tensors = load_file(str(a.info.weights_file))
        loaded: list[str] = []
        for k, enc, tok in _encoders(pipe, family):
            # SDXL: clip_l / clip_g; SD: {token: tensor} as diffusers' script writes it (else clip_l, else the one)
            emb = tensors[k] if family == "sdxl" else tensors.get(token, tensors.get(k, next(iter(tensors.values()))))
            pipe.load_textual_inversion(emb, token=token, tokenizer=tok, text_encoder=enc)
            n = 1 if emb.ndim == 1 else int(emb.shape[0])
            loaded = [token] + [f"{token}_{i}" for i in range(1, n)]
    except Exception as e:
        raise _load_error(a.info, e) from None
    state.tis[token] = (key, loaded)
    state.stats["ti_loads"] += 1


def apply_adapters(holder, pipe, adapters: list[ActiveAdapter], family: str) -> None:
    """Make ``pipe`` (under ``holder.lock``) run with exactly ``adapters``: see the module docstring."""
    state: AdapterState = holder.adapters
    for a in adapters:
        if a.is_ti:
            _ensure_ti(pipe, state, a, family)
    loras = [a for a in adapters if not a.is_ti]
    names: list[str] = []
    for a in loras:
        names.append(_ensure_lora(pipe, state, a, set(names)))
    if not state.loras:
        return                              # no LoRA was ever loaded on these modules
    if names:
        pipe.enable_lora()
        pipe.set_adapters(names, adapter_weights=[a.weight for a in loras])
    else:
        pipe.disable_lora()
