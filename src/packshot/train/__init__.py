"""Personalisation: train an adapter (LoRA, DreamBooth-LoRA, textual inversion) on 3-20 photos of
one product, written in packshot's adapter folder format (:mod:`packshot.models.adapters`).

    from packshot.train import train
    res = train(["a.jpg", "b.jpg", "c.jpg"], {"base": "sd15", "method": "lora", "steps": 400}, "adapters/mug")
    res.path, res.final_loss, res.losses

Stages: check (request, base model, output folder, photos: :mod:`.plan`) -> cut out and crop
(:mod:`.data`) -> load the base (:mod:`.model`) -> optional class images (:mod:`.prior`) -> the
loop (:mod:`.loop`, checkpoints :mod:`.checkpoint`) -> weights, ``references/*.png`` and, last,
``packshot_adapter.json`` (plus ``training_log.json``: the loss of every step). A failed or cancelled run leaves its checkpoints (``resume=True``
continues from the newest) but never a metadata file, so a folder with metadata is complete.

torch, diffusers and peft are imported only when :func:`train` runs.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Settings
    from ..models.adapters import AdapterInfo
    from ..schema import TrainRequest
    from ..types import Cutout

__all__ = ["train", "TrainResult"]

# request fields a resumed run may change (everything else must match the checkpoints' run)
RESUME_FREE = ("steps", "checkpoint_every", "early_stop")
LOG_FILE = "training_log.json"   # the loss of every step (the metadata keeps the final one)


@dataclass
class TrainResult:
    adapter: "AdapterInfo"
    path: Path
    steps: int
    final_loss: float
    losses: list[float]
    stopped_early: bool
    resumed_from: int | None
    timings: dict[str, float] = field(default_factory=dict)


def _request(request: Any) -> "TrainRequest":
    from ..schema import TrainRequest, build
    return request if isinstance(request, TrainRequest) else build(TrainRequest, dict(request))


def _run_record(plan, loaded) -> dict[str, Any]:
    req = plan.request.model_dump(mode="json")
    return {"request": {k: v for k, v in req.items() if k not in RESUME_FREE}, "seed": plan.seed,
            "token": plan.token, "resolution": plan.resolution,
            "photos": [{"name": name, "sha256": digest} for name, digest, _photo in loaded]}


def _check_resume(plan, loaded) -> None:
    from ..errors import InvalidInputError
    from .checkpoint import read_run

    saved = read_run(plan.out_dir)
    if saved is None:
        return
    now = _run_record(plan, loaded)

    def same(key: str) -> bool:   # photos: by content (a file's name may differ between runs)
        if key == "photos":
            return [p.get("sha256") for p in saved.get(key) or []] == [p["sha256"] for p in now[key]]
        return saved.get(key) == now[key]

    for key in ("photos", "request", "token", "resolution"):
        if not same(key):
            what = "the photos" if key == "photos" else key
            raise InvalidInputError(f"cannot resume in {plan.out_dir}: {what} differ from the checkpoints' run "
                                    f"(train into a new folder, or give the same photos and options)")


def _saved_seed(plan) -> Any:
    from .checkpoint import read_run
    saved = read_run(plan.out_dir) if plan.request.seed is None else None
    return dataclasses.replace(plan, seed=int(saved["seed"])) if saved and "seed" in saved else plan


def _setup_method(plan, parts, tset) -> tuple[Any, bool]:
    """Add LoRA layers or the new token; (token rows or None, whether the text side learns)."""
    from . import model as m

    import torch

    method, req = plan.request.method, plan.request
    rows = None
    torch.manual_seed(plan.seed)     # LoRA's initial A matrices: the same run twice starts the same
    if method == "textual-inversion":
        rows = m.add_token(parts, plan.token, tset.product)
    else:
        m.add_lora(parts, req.rank, text_too=method == "dreambooth-lora")
    text_trained = method != "lora"
    if req.gradient_checkpointing:
        m.enable_checkpointing(parts, text_trained)
    m.cast_trainable(parts)
    if text_trained:
        for enc in parts.text_encoders:
            enc.train()
    return rows, text_trained


def _build_job(plan, parts, tset, timings: dict[str, float]):
    import numpy as np
    import torch

    from . import model as m
    from .loop import Job
    from .prior import CLASS_DIR, class_images, prompt_for

    req = plan.request
    t0 = time.perf_counter()
    prior_latents = prior_ids = None
    if req.prior_preservation:
        imgs = class_images(parts, plan.out_dir / CLASS_DIR, tset.product, req.prior_images, plan.resolution, plan.seed)
        prior_latents = m.encode_images(parts, imgs).to(parts.device)
        prior_ids = m.tokenize(parts, [prompt_for(tset.product)])
        timings["prior"] = time.perf_counter() - t0
    latents = m.encode_images(parts, [e.image for e in tset.examples]).to(parts.device)
    masks = torch.from_numpy(np.stack([e.mask for e in tset.examples]))[:, None].to(parts.device)
    blank = None
    if parts.inpaint:
        blank = m.encode_images(parts, [np.full((plan.resolution,) * 2 + (3,), 127, np.uint8)]).to(parts.device)
    rows, text_trained = _setup_method(plan, parts, tset)   # after the class images: those are the base's own
    ids = m.tokenize(parts, [e.caption for e in tset.examples])
    return Job(parts=parts, params=m.trainable(parts), latents=latents, masks=masks, ids=ids, size=plan.resolution,
               seed=plan.seed, batch_size=req.batch_size, masked=req.masked_loss, text_trained=text_trained,
               learning_rate=plan.learning_rate, weight_decay=0.0 if rows is not None else 1e-2, rows=rows,
               blank=blank, prior_latents=prior_latents, prior_ids=prior_ids, prior_weight=req.prior_weight,
               mixed_precision=req.mixed_precision, adam_8bit=req.adam_8bit)


def _metadata(plan, tset, outcome, steps: int, refs: list[str]) -> dict[str, Any]:
    from datetime import datetime, timezone

    from .. import __version__
    from ..models.adapters import base_family, base_fingerprint

    req = plan.request
    path = plan.info.path
    return {
        "name": plan.name, "method": req.method, "token": plan.token, "product": tset.product,
        "base": {"ref": req.base, "id": plan.base_id, "family": base_family(path),
                 "fingerprint": base_fingerprint(path), "inpaint": plan.info.inpaint},
        "steps": steps, "final_loss": outcome.losses[-1] if outcome.losses else None,
        "learning_rate": plan.learning_rate, "rank": req.rank if req.method != "textual-inversion" else None,
        "resolution": plan.resolution, "seed": plan.seed, "batch_size": req.batch_size,
        "masked_loss": req.masked_loss, "caption_template": req.caption_template,
        "captions": [e.caption for e in tset.examples], "captioner": tset.captioned,
        "prior_preservation": {"images": req.prior_images, "weight": req.prior_weight} if req.prior_preservation else None,
        "device": plan.device, "mixed_precision": req.mixed_precision, "gradient_checkpointing": req.gradient_checkpointing,
        "adam_8bit": req.adam_8bit, "stopped_early": outcome.stopped_early, "resumed_from": outcome.resumed_from,
        "photos": tset.photos, "references": refs, "log": LOG_FILE, "packshot_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _save(plan, parts, job, tset, outcome) -> Path:
    from ..io import write_atomic
    from ..models.adapters import write_metadata
    from . import model as m
    from .data import write_references

    out = plan.out_dir
    if job.rows is not None:
        m.save_embedding(parts, job.rows, plan.token, out)
    else:
        m.save_lora(parts, out, text_too=job.text_trained)
    refs = write_references(out, tset)
    write_atomic(out / LOG_FILE, json.dumps({"losses": outcome.losses, "resumed_from": outcome.resumed_from,
                                              "stopped_early": outcome.stopped_early}).encode())
    write_metadata(out, _metadata(plan, tset, outcome, len(outcome.losses), refs))   # last: the folder is whole
    return out


def train(photos: Sequence[Any], request: "TrainRequest | dict", out_dir: str | Path | None = None, *,
          settings: "Settings | None" = None, progress: Callable[[int, int, float], None] | None = None,
          cancel: threading.Event | None = None, resume: bool = False,
          cutouts: "Sequence[Cutout] | None" = None) -> TrainResult:
    """Train an adapter on 3-20 photos of one product; returns where it went and its loss curve.

    Raises a :class:`packshot.errors.PackshotError` (one line) for bad input before anything is
    written, and :class:`packshot.errors.CancelledError` after saving a checkpoint when ``cancel``
    is set.
    """
    from ..backgrounds.diffusion.stack import import_stack
    from ..config import Settings
    from ..models.adapters import read_adapter
    from . import checkpoint, loop
    from .data import build_set, cut_out, load_photos
    from .model import load_parts
    from .plan import make_plan

    settings = settings or Settings.from_env()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    req = _request(request)
    plan = make_plan(req, settings, out_dir, resume)
    plan = _saved_seed(plan) if resume else plan
    loaded = load_photos(photos, settings)
    if resume:
        _check_resume(plan, loaded)
    cuts = cut_out(loaded, cutouts, settings)
    timings["cutout"] = time.perf_counter() - t0
    torch, _diffusers = import_stack()
    t1 = time.perf_counter()
    parts = load_parts(plan.info.path, plan.info.family, plan.info.inpaint, plan.device,
                       getattr(torch, plan.dtype_name), settings.allow_pickle_weights)
    timings["load"] = time.perf_counter() - t1
    tset = build_set(loaded, cuts, size=plan.resolution, scale=plan.info.vae_scale, token=plan.token,
                     product=req.product, template=req.caption_template, settings=settings)
    checkpoint.write_run(plan.out_dir, _run_record(plan, loaded))      # the first file written
    job = _build_job(plan, parts, tset, timings)
    t2 = time.perf_counter()
    outcome = loop.run(job, plan.out_dir, req.steps, checkpoint_every=req.checkpoint_every,
                       early_stop=req.early_stop, resume=resume, progress=progress, cancel=cancel)
    timings["train"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    path = _save(plan, parts, job, tset, outcome)
    timings["save"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    return TrainResult(adapter=read_adapter(path), path=path, steps=len(outcome.losses),
                       final_loss=outcome.losses[-1], losses=outcome.losses, stopped_early=outcome.stopped_early,
                       resumed_from=outcome.resumed_from, timings=timings)


class _CallableModule(__import__("types").ModuleType):
    """``packshot.train(...)`` calls :func:`train` even where ``packshot.train`` is this module
    (importing a sub-package sets the parent's attribute to the module)."""

    def __call__(self, *args: Any, **kwargs: Any) -> TrainResult:
        return train(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
