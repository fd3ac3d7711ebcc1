"""Resumable training checkpoints: ``<out>/checkpoints/step-NNNNNN/``.

Each holds ``trainable.safetensors`` (the learning parameters, by ``module.param`` name) and
``state.pt`` (optimizer, lr scheduler, grad scaler, torch / numpy / python RNG states, step, loss
history, early-stop state), loaded with ``torch.load(weights_only=True)``: tensors and plain
values only, never pickled code. A checkpoint is written into ``step-NNNNNN.part/`` and renamed
when whole, so a kill mid-write leaves no checkpoint that looks complete.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from ..errors import ModelError

DIR = "checkpoints"
REQUEST_FILE = "run.json"       # the request + photo hashes a resume must match


def step_dir(root: Path, step: int) -> Path:
    return root / DIR / f"step-{step:06d}"


def latest(root: Path) -> Path | None:
    d = root / DIR
    if not d.is_dir():
        return None
    done = sorted(p for p in d.iterdir() if p.is_dir() and p.name.startswith("step-") and not p.name.endswith(".part")
                  and (p / "state.pt").is_file())
    return done[-1] if done else None


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    np_state = np.random.get_state(legacy=False)
    np_state["state"] = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in np_state["state"].items()}
    py = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy": json.dumps(np_state),
            "python": [py[0], list(py[1]), py[2]]}


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    np_state = json.loads(state["numpy"])
    np_state["state"] = {k: (np.array(v, dtype=np.uint32) if isinstance(v, list) else v)
                         for k, v in np_state["state"].items()}
    np.random.set_state(np_state)
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def save(root: Path, step: int, params: dict[str, Any], state: dict[str, Any]) -> Path:
    import torch
    from safetensors.torch import save_file

    final = step_dir(root, step)
    part = final.with_name(final.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in params.items()}, str(part / "trainable.safetensors"))
    torch.save({**state, "rng": _rng_state(), "step": step}, part / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    os.replace(part, final)
    return final


def load(ckpt: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Copy the checkpoint's parameters into ``params`` (in place) and return its state."""
    import torch
    from safetensors.torch import load_file

    try:
        saved = load_file(str(ckpt / "trainable.safetensors"))
        state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"checkpoint {ckpt} is unreadable ({type(e).__name__}); delete it to resume from "
                         f"the one before") from None
    missing = sorted(set(params) ^ set(saved))
    if missing:
        raise ModelError(f"checkpoint {ckpt} does not fit this run (parameters differ, e.g. {missing[0]})")
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(saved[k].to(p.device, p.dtype))
    _set_rng_state(state["rng"])
    return state


def write_run(root: Path, run: dict[str, Any]) -> None:
    d = root / DIR
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (REQUEST_FILE + ".part")
    tmp.write_text(json.dumps(run, indent=2, sort_keys=True))
    os.replace(tmp, d / REQUEST_FILE)


def read_run(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / DIR / REQUEST_FILE).read_text())
    except (OSError, ValueError):
        return None
