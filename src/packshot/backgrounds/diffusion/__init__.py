"""Diffusion engine: Stable Diffusion 1.x / 2.x / XL backgrounds with diffusers (extra ``ai``).

Modes (``request.mode``):

* ``inpaint``  -- the model paints the background around the product, which it sees in place
  (keep-framing: the original photo is the init image). Needs an inpainting checkpoint (UNet
  ``in_channels == 9``). Called ``outpaint`` when the product was moved or rescaled onto a new
  canvas: the same call, the init is the product over a blur / edge-pad fill (``request.fill``).
* ``text2img`` -- a background from the prompt alone; the compositor places the product and shadows.
* ``img2img``  -- restyle ``request.reference_image`` (scaled to cover the canvas, centre-cropped).
* ``auto``     -- inpaint with an inpainting model; with a text-to-image model, img2img when a
  reference image is given (and no IP-Adapter), else text2img.

The modules: :mod:`.inspect` (what a model is, no torch), :mod:`.plan` (every check, no torch;
``check()`` runs it up front), :mod:`.resolution` (native working size in aspect buckets),
:mod:`.seams` (repaint mask, outpaint fill, seam ring), :mod:`.control` (ControlNet inputs),
:mod:`.prompts` (final prompt), :mod:`.loading` (pipelines, ``from_pipe`` variants), :mod:`.run`
(per-run arguments, batching, progress, the seam pass), :mod:`.upscale` (the background to the
output size: an ONNX upscaler, a hires second pass, or Lanczos). The product is pasted back exactly by the
compositor; ``Scene.raw_product`` keeps the model's own pixels for fidelity scores. Every setting
is honoured or reported in ``Scene.notes``; the parameters record the working size, the strength
and the exact final prompt.

Trained adapters (``request.adapters``, :mod:`.adapters`): checked up front with the model, applied
to the cached pipeline for one render (a later render without them is unchanged). In text2img /
img2img the model paints the product itself (``Scene.product_generated``: the compositor pastes
nothing back, no shadow is added); in inpaint / outpaint the product is still pasted back exactly.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...config import Settings
from ...errors import DependencyMissingError, UnknownNameError
from ...models import model_cache
from ...types import ProgressFn, Scene, no_progress
from .. import SceneJob
from .adapters import apply_adapters
from .control import canny_control, control_region, depth_control, mask_control
from .inspect import ModelInfo, inspect_model
from .loading import CLASSES, IP_ADAPTER_SCALE, LoadedPipeline, controlnet_variant, load_base
from .plan import DEFAULT_MODELS, DEFAULT_STRENGTH, Plan, check_request, make_plan
from .prompts import token_notes
from .resolution import Geometry, buckets, cover_crop, plan_geometry
from .run import SEAM_STRENGTH, Progress, RunArgs, chunk_size, first_pass, seam_pass, seam_ring
from .seams import KEEP_ALPHA, outpaint_init, repaint_mask, ring_mask
from .stack import import_stack, quiet
from .upscale import to_canvas

__all__ = ["DiffusionEngine", "ModelInfo", "Plan", "Geometry", "plan_geometry", "buckets", "canny_control",
           "depth_control", "ring_mask", "repaint_mask", "inspect_model", "KEEP_ALPHA", "DEFAULT_MODELS",
           "DEFAULT_STRENGTH"]


class DiffusionEngine:
    """Background engine ``diffusion``: see the module docstring."""

    name = "diffusion"
    # most candidates in one call on CPU; the free-RAM estimate may allow fewer (bench: one batched
    # call of 4 took 0.94x the time of 4 single calls at 384x288, up to 1.1x at 512 px)
    cpu_batch: int = 16

    def __init__(self, settings: Settings | None = None, models=None):
        self.settings = settings or Settings()
        self._models = models   # the Pipeline's model cache; the process-wide one otherwise

    @property
    def models(self):
        return self._models if self._models is not None else model_cache(self.settings)

    # 1. check inputs (up front, no torch) ---------------------------------------------------------
    def check(self, request, settings: Settings | None = None) -> None:
        """Refuse a request bound to fail before any heavy work: weights present and whole, model
        kind for the mode (inpainting UNet in_channels == 9), ControlNet / IP-Adapter fit, reference
        image, steps x strength. A preset with a forced plain background runs no model: nothing to check."""
        from ...layout import PRESETS
        preset = PRESETS.get(request.preset) if getattr(request, "preset", None) else None
        if preset is not None and getattr(preset, "background_rgb", None) is not None:
            return
        check_request(request, settings or self.settings)

    def plan(self, job: SceneJob) -> Plan:
        return make_plan(job, self.settings)

    # 2. load (cached) ------------------------------------------------------------------------------
    def cache_key(self, plan: Plan, rt, controlnet: bool = True) -> tuple:
        s = self.settings
        key = ("diffusion", str(plan.info.path), plan.info.kind, rt.dtype_name, rt.device,
               plan.ip_adapter.key if plan.ip_adapter else None, s.cpu_offload, s.attention_slicing, s.vae_tiling)
        return key + ((str(plan.controlnet.path),) if controlnet and plan.controlnet else ())

    def load(self, plan: Plan, rt) -> tuple[LoadedPipeline, bool]:
        """The cached pipeline for ``plan`` (loading it once). Returns (pipeline, loaded_now).
        A ControlNet variant shares the cached base pipeline's modules (``from_pipe``)."""
        loaded: list[LoadedPipeline] = []
        cache = self.models

        def base_loader() -> LoadedPipeline:
            room = self._make_room(plan, rt, cache)
            loaded.append(load_base(plan.info, rt, self.settings, plan.ip_adapter))
            loaded[-1].notes = room + loaded[-1].notes
            return loaded[-1]

        holder = cache.get(self.cache_key(plan, rt, controlnet=False), base_loader)
        if plan.controlnet is not None:
            base = holder

            def variant_loader() -> LoadedPipeline:
                loaded.append(controlnet_variant(base, plan.info, plan.controlnet, rt, self.settings))
                return loaded[-1]

            holder = cache.get(self.cache_key(plan, rt), variant_loader)
        holder.load_seconds = sum(h.load_seconds for h in loaded) if loaded else holder.load_seconds
        return holder, bool(loaded)

    @staticmethod
    def _make_room(plan: Plan, rt, cache) -> list[str]:
        """Before loading a model: if its estimated resident size does not fit the free memory next
        to the models already resident, unload those first (a note says so)."""
        from ...models import folder_size
        from ...models.devices import free_bytes, resident_estimate
        if not len(cache):
            return []
        need = resident_estimate(folder_size(plan.info.path), plan.info.variant == "fp16", rt.dtype_name)
        free = free_bytes(rt.device)
        if free is None or need <= free:
            return []
        n = len(cache)
        cache.clear()
        return [f"unloaded {n} resident model{'s' if n > 1 else ''} to make room for {plan.info.name} "
                f"(needs about {need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free on {rt.device})"]

    # 3-7. render ----------------------------------------------------------------------------------
    def render(self, job: SceneJob, progress: ProgressFn = no_progress) -> list[Scene]:
        if job.layer.placement.background_rgb is not None:
            return self._plain(job)
        t_start = time.perf_counter()
        plan = self.plan(job)
        req = job.request
        torch, diffusers = import_stack()
        from ...models.devices import runtime
        rt = runtime(self.settings)
        scheduler_cls = self._scheduler_class(req.scheduler, diffusers) if req.scheduler else None
        progress("background", 0.0, f"loading {plan.info.name}")
        holder, loaded_now = self.load(plan, rt)
        notes = plan.notes + holder.notes
        n = len(job.seeds)
        chunk = chunk_size(n, plan.geometry.padded, rt, self.cpu_batch)
        hires = int(plan.geometry.upscaled and plan.upscaler is not None and plan.upscaler.kind == "hires")
        seam = bool(req.seam_pass) and not plan.paints_product
        if req.seam_pass and not seam:
            notes.append("seam pass skipped: the model painted the product itself (an adapter in "
                         f"{plan.task}), there is no pasted-back edge to blend")
        run = RunArgs(torch=torch, plan=plan, prompt=plan.prompt, negative=plan.negative, steps=req.steps,
                      guidance=req.guidance, strength=plan.strength if plan.strength is not None else 1.0,
                      seeds=list(job.seeds), chunk=chunk, rt=rt,
                      progress=Progress(progress, -(-n // chunk) * (1 + seam + hires), req.steps),
                      controlnet_scale=req.controlnet_scale, control_end=req.control_end,
                      scheduler_cls=scheduler_cls)
        with holder.lock, quiet():
            pipe = holder.view(CLASSES[(plan.info.family, plan.task, plan.controlnet is not None)])
            pipe.scheduler = (scheduler_cls or holder.scheduler_class).from_config(holder.scheduler_config)
            apply_adapters(holder, pipe, plan.adapters, plan.info.family)   # also turns earlier ones off
            sampler = type(pipe.scheduler).__name__
            notes += token_notes(pipe, plan.prompt, plan.negative)
            if rt.accelerator and chunk > 1 and hasattr(pipe.vae, "enable_slicing"):
                pipe.vae.enable_slicing()   # decode a batch one image at a time: the peak is the UNet's
            run.inputs = self._inputs(plan, job)
            t_gen = time.perf_counter()
            firsts = first_pass(pipe, run)
            t_gen = time.perf_counter() - t_gen
            outs, t_seam = firsts, time.perf_counter()
            if seam:
                outs = seam_pass(holder, run, firsts)
            t_seam = time.perf_counter() - t_seam
            t_up = time.perf_counter()
            outs, up_params = to_canvas(holder, run, job, outs)
            t_up = time.perf_counter() - t_up
        params = {**self._params(plan, req, run, sampler), **up_params}
        timings = {"model_load": holder.load_seconds if loaded_now else 0.0, "denoise": t_gen / n,
                   "seam_pass": t_seam / n if seam else 0.0, "upscale": t_up / n,
                   "engine_total": (time.perf_counter() - t_start) / n}
        scenes = [self._scene(job, plan, seed, first, final, notes, params, timings)
                  for seed, first, final in zip(job.seeds, firsts, outs)]
        progress("background", 1.0, f"{n} candidate{'s' if n > 1 else ''} from {plan.info.name}")
        return scenes

    # -- helpers -----------------------------------------------------------------------------------
    def _scene(self, job, plan: Plan, seed, first, final, notes, params, timings) -> Scene:
        g = plan.geometry
        rgb = final                           # already at the canvas size (upscale.to_canvas)
        if plan.task == "inpaint":
            raw = g.to_canvas(first)          # the model's own pixels under the product (pass 1)
        elif job.request.seam_pass and not plan.paints_product:
            raw = rgb.copy()                  # the seam pass saw (and re-rendered) the product
        else:
            raw = None                        # background only: the model never saw the product
        return Scene(rgb=rgb, seed=seed, engine=self.name, floor_y=job.layer.placement.floor_y,
                     needs_shadow=plan.task != "inpaint" and not plan.paints_product, generated=True,
                     raw_product=raw, product_generated=plan.paints_product,
                     notes=tuple(dict.fromkeys(notes)), params=dict(params), timings=dict(timings))

    @staticmethod
    def _params(plan: Plan, req, run: RunArgs, sampler: str) -> dict[str, Any]:
        g = plan.geometry
        params: dict[str, Any] = {"Steps": req.steps, "Sampler": sampler, "CFG scale": req.guidance}
        if plan.strength is not None:
            params["Denoising strength"] = plan.strength
        params.update({"Model": plan.info.name, "Mode": plan.mode, "Device": f"{run.rt.device} {run.rt.dtype_name}",
                       "Working size": f"{g.padded[0]}x{g.padded[1]}", "Final prompt": plan.prompt,
                       "negative_prompt": plan.negative})
        if g.resized:
            params["Upscaler" if g.upscaled else "Downscaler"] = "Lanczos" if g.upscaled else "area"
        if plan.task == "inpaint":
            params["Fill"] = req.fill if plan.mode == "outpaint" else "photo"
        if plan.controlnet:
            what = "inpaint mask" if plan.controlnet.inpaint else req.control_image
            params["ControlNet"] = (f"{plan.controlnet.name} ({what}, scale {req.controlnet_scale:g}, "
                                    f"end {req.control_end:g})")
        if plan.ip_adapter:
            params["IP-Adapter"] = f"{plan.ip_adapter.name} (scale {IP_ADAPTER_SCALE})"
        if plan.adapters:
            params["Adapters"] = ", ".join(a.describe() for a in plan.adapters)
        if req.seam_pass and not plan.paints_product:
            params["Seam pass"] = f"strength {SEAM_STRENGTH}, ring {seam_ring(run)} px"
        return params

    def _plain(self, job: SceneJob) -> list[Scene]:
        pl = job.layer.placement
        W, H = job.layer.size
        rgb = np.empty((H, W, 3), np.uint8)
        rgb[:] = pl.background_rgb
        note = (f"preset {pl.preset} requires a plain RGB {','.join(map(str, pl.background_rgb))} background: "
                f"the diffusion model was not run")
        return [Scene(rgb=rgb.copy(), seed=s, engine=self.name, floor_y=pl.floor_y, notes=(note,),
                      params={"Mode": "plain"}) for s in job.seeds]

    @staticmethod
    def _scheduler_class(name: str, diffusers) -> Any:
        from diffusers.schedulers import KarrasDiffusionSchedulers
        valid = sorted(e.name for e in KarrasDiffusionSchedulers)
        match = {v.lower(): v for v in valid}.get(name.strip().lower())
        if match is None:
            raise UnknownNameError("scheduler", name, valid)
        with quiet():
            cls = getattr(diffusers, match)
        if type(cls).__name__ == "DummyObject":
            raise DependencyMissingError(f"scheduler {match} (it needs the torchsde package)", "ai")
        return cls

    def _inputs(self, plan: Plan, job: SceneJob) -> dict[str, Any]:
        """PIL images at the padded working size for this plan."""
        from PIL import Image
        g, layer, req = plan.geometry, job.layer, job.request
        out: dict[str, Any] = {}
        alpha_w = np.clip(g.to_work(layer.alpha.astype(np.float32), pad_value=0.0), 0.0, 1.0)  # Lanczos rings
        out["alpha"] = alpha_w
        out["layer_rgb"] = g.to_work(layer.rgb)
        if plan.task == "inpaint" or req.seam_pass:
            if plan.mode == "inpaint":
                init = g.to_work(job.photo.rgb)
            else:
                init = outpaint_init(out["layer_rgb"], alpha_w, req.fill, self._fill_colour(job))
            out["init"] = Image.fromarray(init)
            out["mask"] = Image.fromarray(repaint_mask(alpha_w, plan.info.vae_scale), "L")
        if plan.task == "img2img":
            out["reference"] = Image.fromarray(cover_crop(plan.reference, g.padded))
        if plan.controlnet is not None:
            if plan.controlnet.inpaint:
                ctrl = mask_control(alpha_w)
            elif req.control_image == "canny":
                ctrl = canny_control(out["layer_rgb"], alpha_w)
                out["control_region"] = control_region(alpha_w)
            else:
                ctrl = g.to_work(depth_control(layer))
            out["control"] = Image.fromarray(ctrl)
        if plan.ip_adapter is not None:
            out["ip_image"] = Image.fromarray(plan.reference)
        return out

    @staticmethod
    def _fill_colour(job: SceneJob) -> tuple[float, float, float]:
        """Flat fill (``fill='flat'``): the median of the photo's border (its backdrop), else grey."""
        if job.photo is None:
            return (127.0, 127.0, 127.0)
        p = job.photo.rgb
        border = np.concatenate([p[0], p[-1], p[:, 0], p[:, -1]]).reshape(-1, 3)
        return tuple(float(v) for v in np.median(border, axis=0))
