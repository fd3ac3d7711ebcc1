"""The training loop: noise-prediction loss (masked to the product), optimiser, checkpoints,
resume, early stop and cancel.

Determinism: every step draws its photos, noise and timesteps from a generator seeded by
(seed, step) alone, so a run resumed from a checkpoint replays exactly the steps an uninterrupted
run would have taken (the checkpoint also keeps the global RNG states, for anything else that
draws from them).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import CancelledError, InvalidInputError
from . import checkpoint
from .model import Parts, TokenRows, encode_text, restore_rows, time_ids, unet_input

EMA_BETA = 0.9             # smoothing of the loss for early stopping
MAX_GRAD_NORM = 1.0        # as diffusers' training scripts


@dataclass
class Job:
    """Everything one run's steps need, built by :func:`packshot.train.train`."""

    parts: Parts
    params: dict[str, Any]               # trainable parameters by checkpoint name
    latents: Any                         # [N, 4, h, w] instance latents
    masks: Any                           # [N, 1, h, w] product masks at latent size
    ids: list[Any]                       # per tokenizer: [N, 77] token ids of each caption
    size: int
    seed: int
    batch_size: int
    masked: bool
    text_trained: bool
    learning_rate: float
    weight_decay: float
    rows: TokenRows | None = None        # textual inversion
    blank: Any | None = None             # inpainting UNet: latents of the all-grey masked image
    prior_latents: Any | None = None     # dreambooth prior preservation: class image latents
    prior_ids: list[Any] | None = None   # per tokenizer: [1, 77] class prompt ids
    prior_weight: float = 1.0
    mixed_precision: str = "no"
    adam_8bit: bool = False
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    losses: list[float]
    stopped_early: bool
    resumed_from: int | None


def _step_generator(seed: int, step: int):
    import torch
    return torch.Generator("cpu").manual_seed((seed * 1_000_003 + step * 7919) % (2 ** 63))


def _indices(job: Job, step: int, n: int, salt: int = 0) -> list[int]:
    """Photos of ``step``: epochs walk a permutation seeded by (seed, epoch) (every photo once per epoch)."""
    import torch
    out = []
    for k in range(job.batch_size):
        pos = step * job.batch_size + k
        epoch, i = divmod(pos, n)
        perm = torch.randperm(n, generator=_step_generator(job.seed + salt, -1 - epoch))
        out.append(int(perm[i]))
    return out


def _text(job: Job, key: str, ids: list[Any]):
    """Text conditioning; cached when the text side does not learn."""
    import torch
    if job.text_trained:
        return encode_text(job.parts, ids)
    if key not in job.cache:
        with torch.no_grad():
            job.cache[key] = encode_text(job.parts, ids)
    return job.cache[key]


def step_loss(job: Job, step: int):
    """(total loss, instance loss as float) of one step."""
    import torch

    p = job.parts
    g = _step_generator(job.seed, step)
    idx = _indices(job, step, job.latents.shape[0])
    lat, mask = job.latents[idx], job.masks[idx]
    enc, pooled = _text(job, f"i{idx}", [ids[idx] for ids in job.ids])
    n_inst = len(idx)
    if job.prior_latents is not None:
        pidx = _indices(job, step, job.prior_latents.shape[0], salt=1)
        lat = torch.cat([lat, job.prior_latents[pidx]])
        penc, ppooled = _text(job, "prior", job.prior_ids)
        enc = torch.cat([enc, penc.expand(len(pidx), -1, -1)])
        pooled = None if pooled is None else torch.cat([pooled, ppooled.expand(len(pidx), -1)])
    sched = p.noise_scheduler
    noise = torch.randn(lat.shape, generator=g).to(p.device)
    t = torch.randint(0, sched.config.num_train_timesteps, (lat.shape[0],), generator=g).to(p.device)
    noisy = sched.add_noise(lat, noise, t)
    target = noise if sched.config.prediction_type == "epsilon" else sched.get_velocity(lat, noise, t)
    added = None if p.family != "sdxl" else {"text_embeds": pooled, "time_ids": time_ids(p, job.size, lat.shape[0])}
    with _autocast(job):
        pred = p.unet(unet_input(p, noisy, job.blank).to(p.dtype), t, enc.to(p.dtype),
                      added_cond_kwargs=added).sample
    err = (pred.float() - target.float()) ** 2
    inst = err[:n_inst]
    if job.masked:
        inst_loss = (inst * mask).sum() / (mask.sum() * inst.shape[1]).clamp_min(1e-6)
    else:
        inst_loss = inst.mean()
    total = inst_loss
    if job.prior_latents is not None:
        total = total + job.prior_weight * err[n_inst:].mean()
    return total, float(inst_loss.detach())


def _autocast(job: Job):
    import contextlib

    import torch
    if job.mixed_precision == "no":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.float16 if job.mixed_precision == "fp16" else torch.bfloat16)


def make_optimizer(job: Job):
    import torch
    params = list(job.params.values())
    if job.adam_8bit:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise InvalidInputError("adam_8bit needs the bitsandbytes package (pip install bitsandbytes) and a "
                                    "CUDA GPU; it is not installed") from None
        return bnb.optim.AdamW8bit(params, lr=job.learning_rate, weight_decay=job.weight_decay)
    return torch.optim.AdamW(params, lr=job.learning_rate, weight_decay=job.weight_decay)


@dataclass
class _Stopper:
    """Early stop on an exponentially smoothed loss that has not improved for ``patience`` steps."""

    patience: int | None
    ema: float | None = None
    best: float = math.inf
    since: int = 0

    def update(self, loss: float) -> bool:
        self.ema = loss if self.ema is None else EMA_BETA * self.ema + (1 - EMA_BETA) * loss
        if self.ema < self.best - 1e-6:
            self.best, self.since = self.ema, 0
        else:
            self.since += 1
        return self.patience is not None and self.since >= self.patience

    def state(self) -> dict[str, Any]:
        return {"ema": self.ema, "best": self.best, "since": self.since}


def run(job: Job, root: Path, total: int, *, checkpoint_every: int, early_stop: int | None, resume: bool,
        progress: Callable[[int, int, float], None] | None, cancel: threading.Event | None) -> Outcome:
    """Train ``total`` steps (or from the newest checkpoint on, with ``resume``)."""
    import torch
    from diffusers.optimization import get_scheduler

    opt = make_optimizer(job)
    lr_sched = get_scheduler("constant", optimizer=opt)
    scaler = torch.amp.GradScaler("cuda", enabled=job.mixed_precision == "fp16")
    stopper, losses, start, resumed = _Stopper(early_stop), [], 0, None
    ckpt = checkpoint.latest(root) if resume else None
    if ckpt is not None:
        state = checkpoint.load(ckpt, job.params)
        opt.load_state_dict(state["optimizer"])
        lr_sched.load_state_dict(state["lr_scheduler"])
        scaler.load_state_dict(state["scaler"])
        stopper = _Stopper(early_stop, **state["stopper"])
        losses, start = list(state["losses"]), int(state["step"])
        resumed = start
    job.parts.unet.train()

    def save(step: int) -> None:
        checkpoint.save(root, step, job.params, {"optimizer": opt.state_dict(), "lr_scheduler": lr_sched.state_dict(),
                                                 "scaler": scaler.state_dict(), "stopper": stopper.state(),
                                                 "losses": losses})

    stopped = False
    for step in range(start, total):
        if cancel is not None and cancel.is_set():
            save(step)
            raise CancelledError(f"training cancelled at step {step} of {total}; a checkpoint was saved "
                                 f"(resume continues from it)")
        loss, inst = step_loss(job, step)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(list(job.params.values()), MAX_GRAD_NORM)
        scaler.step(opt)
        scaler.update()
        lr_sched.step()
        if job.rows is not None:
            restore_rows(job.parts, job.rows)
        losses.append(inst)
        if progress is not None:
            progress(step + 1, total, inst)
        stopped = stopper.update(inst)
        if (step + 1) % checkpoint_every == 0 or stopped:
            save(step + 1)
        if stopped:
            break
    return Outcome(losses, stopped, resumed)
