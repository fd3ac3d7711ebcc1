"""Checks before training: the request, the base model, the output folder and the photos.

Everything a user can get wrong fails here, in one line naming the bad value, before a single
file is written into the output folder.
"""
from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import InvalidInputError, ModelError
from ..schema import TrainRequest

DEFAULT_TOKEN = "ohwx"                 # a rare token (one the community uses for DreamBooth subjects)
LEARNING_RATES = {"lora": 1e-4, "dreambooth-lora": 1e-4, "textual-inversion": 5e-4}
NATIVE = {"sd": 512, "sdxl": 1024}


@dataclass(frozen=True)
class Plan:
    request: TrainRequest
    info: Any                          # backgrounds.diffusion.inspect.ModelInfo of the base
    base_id: str | None                # registry id, when the base was given as one
    out_dir: Path
    name: str
    token: str
    resolution: int
    learning_rate: float
    seed: int
    device: str
    dtype_name: str                    # dtype of the frozen weights


def _base(request: TrainRequest, settings: Settings):
    from ..backgrounds.diffusion.inspect import inspect_model
    from ..models import MODELS, PIPELINE_KINDS, resolve

    path = resolve(request.base, settings, kinds=PIPELINE_KINDS)
    if path.is_dir() and (path / "config.json").exists() and not (path / "model_index.json").exists():
        cls = _class_name(path / "config.json")
        raise ModelError(f"base {request.base!r} ({path}) is a {cls} folder, not a Stable Diffusion pipeline")
    info = inspect_model(path, request.base, settings)
    if info.format != "diffusers":
        raise ModelError(f"base {request.base!r} is a single-file checkpoint; training needs a diffusers folder "
                         f"(convert it with diffusers' from_single_file(...).save_pretrained(DIR))")
    return info, (request.base if request.base in MODELS else None)


def _class_name(cfg: Path) -> str:
    import json
    try:
        data = json.loads(cfg.read_text())
        return str(data.get("_class_name") or data.get("model_type") or "non-pipeline")
    except (OSError, ValueError):
        return "non-pipeline"


def _out_dir(out_dir: str | Path | None, name: str | None, settings: Settings, resume: bool) -> tuple[Path, str]:
    from ..models.adapters import META_FILE
    from .checkpoint import latest

    if out_dir is None:
        if not name:
            raise InvalidInputError("give the adapter a name or an output folder")
        out = Path(settings.model_dir) / "adapters" / name
    else:
        out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"output {out} exists and is not a folder")
    if (out / META_FILE).exists():
        raise InvalidInputError(f"output {out} already holds a trained adapter; choose another folder or delete it")
    if not resume and latest(out) is not None:
        raise InvalidInputError(f"output {out} has checkpoints of an unfinished run: resume it (--resume) or "
                                f"delete the folder")
    return out, name or out.name


def _device(request: TrainRequest, settings: Settings) -> tuple[str, str]:
    from ..models.devices import select_device

    device = select_device(settings)
    mp = request.mixed_precision
    if mp != "no" and not device.startswith("cuda"):
        raise InvalidInputError(f"mixed_precision {mp!r} needs a CUDA GPU (this run is on {device}); "
                                f"use mixed_precision 'no'")
    if request.adam_8bit and not device.startswith("cuda"):
        raise InvalidInputError(f"adam_8bit needs a CUDA GPU (this run is on {device})")
    if request.adam_8bit and importlib.util.find_spec("bitsandbytes") is None:
        raise InvalidInputError("adam_8bit needs the bitsandbytes package (pip install bitsandbytes); it is not "
                                "installed")
    return device, {"no": "float32", "fp16": "float16", "bf16": "bfloat16"}[mp]


def make_plan(request: TrainRequest, settings: Settings, out_dir: str | Path | None, resume: bool,
              saved_seed: int | None = None) -> Plan:
    """Check everything but the photos; nothing is written."""
    info, base_id = _base(request, settings)
    if request.prior_preservation and request.method != "dreambooth-lora":
        raise InvalidInputError(f"prior_preservation is for method 'dreambooth-lora', not {request.method!r}")
    out, name = _out_dir(out_dir, request.name, settings, resume)
    token = request.token or (f"<{name}>" if request.method == "textual-inversion" else DEFAULT_TOKEN)
    if not token.strip() or any(c in token for c in "{}"):
        raise InvalidInputError(f"token {token!r} must be a non-empty word without braces")
    resolution = request.resolution or NATIVE[info.family]
    if resolution % info.min_side:
        raise InvalidInputError(f"resolution {resolution} must be a multiple of {info.min_side} for {info.describe()}")
    device, dtype_name = _device(request, settings)
    seed = request.seed if request.seed is not None else (
        saved_seed if saved_seed is not None else random.SystemRandom().randrange(2 ** 32))
    lr = request.learning_rate or LEARNING_RATES[request.method]
    return Plan(request, info, base_id, out, name, token, resolution, lr, seed, device, dtype_name)
