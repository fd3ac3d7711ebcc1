"""Running the diffusers calls of one render: per-run arguments, batching, progress, the seam pass.

The ``n`` candidates run as ONE batched call where free memory allows (GPU memory, or available
RAM on CPU; on mps one at a time). Each candidate has its own ``torch.Generator("cpu").manual_seed``
and its own copy of every input, so candidate i equals a single call with its seed (up to float
rounding), batched or not. On out-of-memory (CUDA, or MPS's RuntimeError) the batch is halved.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np

from ...errors import ModelError
from ...types import ProgressFn
from .control import inpaint_extra, set_control_state
from .seams import ring_mask

SEAM_STRENGTH = 0.35       # seam pass: low-strength re-noise of a thin ring around the product
SEAM_RING = 0.015          # ring half-width as a fraction of the working canvas's short side (>= 4 px)
PX_BYTES_PER_IMAGE = 8000  # accelerator bytes per working pixel per candidate (activations + VAE decode), rough


class Progress:
    """Per-step progress over all the calls of one render, as one fraction 0..1 for ``fn``."""

    def __init__(self, fn: ProgressFn, calls: int, steps: int):
        self.fn, self.calls, self.steps, self.done = fn, max(1, calls), steps, 0

    def step(self, pipe, i: int, _t, kw: dict) -> dict:
        """diffusers' ``callback_on_step_end``."""
        n = max(1, int(getattr(pipe, "num_timesteps", 0) or self.steps))
        self.fn("background", min(1.0, (self.done + (i + 1) / n) / self.calls), f"step {i + 1}/{n}")
        return kw

    def call_done(self) -> None:
        self.done += 1


@dataclass
class RunArgs:
    """Everything the diffusers calls of one render need (one value, not a dozen parameters)."""

    torch: Any
    plan: Any                     # the engine's Plan (task, geometry, controlnet, ip_adapter)
    prompt: str                   # the final prompt (prompts.assemble)
    negative: str
    steps: int
    guidance: float
    strength: float
    seeds: list[int]
    chunk: int                    # candidates per call
    rt: Any                       # models.devices.Runtime
    progress: Progress
    inputs: dict[str, Any] = field(default_factory=dict)
    controlnet_scale: float = 0.5
    control_end: float = 0.7
    scheduler_cls: Any = None     # None: the model's own

    def base_kwargs(self, k: int) -> dict[str, Any]:
        return {"prompt": [self.prompt] * k, "negative_prompt": [self.negative] * k,
                "num_inference_steps": self.steps, "guidance_scale": self.guidance, "output_type": "np"}


def chunk_size(n: int, padded: tuple[int, int], rt, cpu_batch: int) -> int:
    """Candidates per call: all of them in one batch unless free memory says fewer (GPU memory on
    CUDA, available RAM on CPU, capped by ``cpu_batch``); one at a time on mps (no free-memory
    query there, and a too-large batch fails hard)."""
    from ...models.devices import free_memory_bytes
    if rt.device == "mps":
        return 1
    if rt.device == "cpu":
        try:
            import psutil
            free = psutil.virtual_memory().available
        except ImportError:  # pragma: no cover - psutil comes with accelerate (the ai extra)
            return max(1, min(n, cpu_batch))
        per = padded[0] * padded[1] * PX_BYTES_PER_IMAGE * 2
        return max(1, min(n, cpu_batch, int(free * 0.5 // per)))
    free = free_memory_bytes(rt.device)
    if free is None:
        return n
    per = padded[0] * padded[1] * PX_BYTES_PER_IMAGE * (2 if rt.dtype_name == "float32" else 1)
    return max(1, min(n, int(free * 0.7 // per)))


def call_kwargs(run: RunArgs, k: int) -> dict[str, Any]:
    """The pipeline's keyword arguments for ``k`` candidates of ``run.plan.task``."""
    plan, inputs = run.plan, run.inputs
    g = plan.geometry
    cn = plan.controlnet is not None
    kw = run.base_kwargs(k)
    if plan.task == "inpaint":
        kw.update(image=[inputs["init"]] * k, mask_image=[inputs["mask"]] * k, strength=run.strength,
                  height=g.padded[1], width=g.padded[0])
        if cn:
            kw["control_image"] = [inputs["control"]] * k
    elif plan.task == "text2img":
        kw.update(height=g.padded[1], width=g.padded[0])
        if cn:
            kw["image"] = [inputs["control"]] * k
    else:  # img2img: the size is the reference's (already the padded working size)
        kw.update(image=[inputs["reference"]] * k, strength=run.strength)
        if cn:
            kw.update(control_image=[inputs["control"]] * k, height=g.padded[1], width=g.padded[0])
    if cn:
        kw.update(controlnet_conditioning_scale=run.controlnet_scale, control_guidance_end=run.control_end)
    if plan.ip_adapter is not None:
        kw["ip_adapter_image"] = inputs["ip_image"]
    return kw


def is_oom(torch, e: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or MPS's RuntimeError that says it ran out of memory."""
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(e, oom):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


def _empty_cache(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    elif device == "mps":
        torch.mps.empty_cache()


def run_chunks(pipe, run: RunArgs, make_kwargs: Callable[[int, int], dict]) -> list[np.ndarray]:
    """Run ``run.seeds`` in batches of ``run.chunk``; on out-of-memory halve the batch and retry."""
    torch = run.torch
    outs: list[np.ndarray] = []
    chunk, i = run.chunk, 0
    while i < len(run.seeds):
        part = run.seeds[i:i + chunk]
        gens = [torch.Generator("cpu").manual_seed(int(s)) for s in part]
        kw = make_kwargs(i, len(part))
        try:
            with torch.inference_mode():
                res = pipe(**kw, generator=gens, callback_on_step_end=run.progress.step)
        except (ValueError, RuntimeError) as e:
            if is_oom(torch, e):
                _empty_cache(torch, run.rt.device)
                if chunk > 1:
                    chunk = max(1, chunk // 2)
                    continue
                where = "Apple GPU (MPS)" if run.rt.device == "mps" else "accelerator"
                raise ModelError(f"out of {where} memory at {kw.get('width', '?')}x{kw.get('height', '?')} even "
                                 f"for one image; enable cpu_offload, attention_slicing or vae_tiling, or use a "
                                 f"smaller model") from None
            msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise ModelError(f"the model cannot run this request: {type(e).__name__}: {msg}") from None
        outs.extend(to_uint8(np.asarray(x)) for x in res.images)
        run.progress.call_done()
        i += len(part)
    return outs


def first_pass(pipe, run: RunArgs) -> list[np.ndarray]:
    """The main call(s): every candidate of ``run.plan.task``."""
    plan, inputs = run.plan, run.inputs
    if plan.controlnet is not None:
        extra = inpaint_extra(pipe, inputs["init"], inputs["mask"]) if plan.controlnet.inpaint else None
        set_control_state(pipe, extra=extra, region=inputs.get("control_region"))
    try:
        return run_chunks(pipe, run, lambda start, k: call_kwargs(run, k))
    finally:
        set_control_state(pipe)


def seam_ring(run: RunArgs) -> int:
    return max(4, round(SEAM_RING * min(run.plan.geometry.work)))


def seam_pass(holder, run: RunArgs, outs: list[np.ndarray]) -> list[np.ndarray]:
    """Second pass: re-noise a thin ring around the pasted-back product at low strength, blend it in."""
    from PIL import Image
    from .loading import CLASSES
    plan, inputs = run.plan, run.inputs
    pipe = holder.view(CLASSES[(plan.info.family, "inpaint", False)])
    pipe.scheduler = (run.scheduler_cls or holder.scheduler_class).from_config(holder.scheduler_config)
    g = plan.geometry
    ring = seam_ring(run)
    a = inputs["alpha"][..., None]
    band = ring_mask(inputs["alpha"], ring)
    feather = cv2.GaussianBlur(band, (0, 0), max(1.0, ring / 2.0))[..., None]
    mask = Image.fromarray((band * 255).astype(np.uint8), "L")
    steps = max(run.steps, math.ceil(1.0 / SEAM_STRENGTH))
    pasted = [np.clip(inputs["layer_rgb"] * a + o * (1 - a), 0, 255).astype(np.uint8) for o in outs]

    def make(start: int, k: int) -> dict:
        kw = run.base_kwargs(k)
        kw.update(num_inference_steps=steps, strength=SEAM_STRENGTH, height=g.padded[1], width=g.padded[0],
                  image=[Image.fromarray(pasted[j]) for j in range(start, start + k)], mask_image=[mask] * k)
        if plan.ip_adapter is not None:
            kw["ip_adapter_image"] = inputs["ip_image"]
        return kw

    results = run_chunks(pipe, run, make)
    return [np.clip(o * (1 - feather) + r * feather, 0, 255).round().astype(np.uint8)
            for o, r in zip(outs, results)]


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0).round().astype(np.uint8)
