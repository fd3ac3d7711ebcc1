"""packshot: cut a product out of a photo and place it in a new scene described in words.

Library API (typed results; heavy modules import on first use)::

    import packshot
    cut = packshot.cutout("mug.jpg")                       # -> packshot.types.Cutout
    res = packshot.generate("mug.jpg", "on a marble table, soft morning light", n=4, seed=1)
    res.candidates[0].image                                # HxWx3 uint8 RGB, best first
    packshot.save_result(res, "out/")                      # files + results.json
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "cutout": "packshot.pipeline",
    "generate": "packshot.pipeline",
    "Pipeline": "packshot.pipeline",
    "save_result": "packshot.output",
    "save_cutout": "packshot.output",
    "load_image": "packshot.io",
    "save_image": "packshot.io",
    "GenerateRequest": "packshot.schema",
    "SegmentOptions": "packshot.schema",
    "Settings": "packshot.config",
    "PackshotError": "packshot.errors",
    "suggest": "packshot.prompts.suggest",
    "describe": "packshot.prompts.describe",
    "train": "packshot.train",
    "TrainRequest": "packshot.schema",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .config import Settings
    from .errors import PackshotError
    from .io import load_image, save_image
    from .output import save_cutout, save_result
    from .pipeline import Pipeline, cutout, generate
    from .schema import GenerateRequest, SegmentOptions


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'packshot' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
