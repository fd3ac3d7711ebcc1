"""The registry of known weights: :class:`ModelSpec` and ``MODELS`` (filled by
:mod:`packshot.models.catalog`). Its own module so that the catalogue never imports the package
that imports it (no import cycle); ``packshot.models`` re-exports every name."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UnknownNameError


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

    @property
    def repo_ids(self) -> tuple[str, ...]:
        """The repo id and its aliases (older names of the same weights)."""
        return (self.repo_id, *self.extra.get("aliases", ()))


MODELS: dict[str, ModelSpec] = {}

# kinds that are diffusers pipelines (a folder with model_index.json)
PIPELINE_KINDS = ("sd15-inpaint", "sd2-inpaint", "sdxl-inpaint", "sd15", "sd2", "sdxl")


def register_model(spec: ModelSpec) -> None:
    MODELS[spec.id] = spec


def get_spec(model_id: str) -> ModelSpec:
    try:
        return MODELS[model_id]
    except KeyError:
        raise UnknownNameError("model", model_id, sorted(MODELS)) from None
