"""Every check of a diffusion request that needs no torch: model, mode, strength, conditioning.

:func:`check_request` is what the engine's ``check(request, settings)`` runs up front (before the
photo is cut out, and at API submission); :func:`make_plan` adds what needs the placed product
(the working geometry) and is run again at render time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...config import Settings
from ...errors import InvalidInputError, MissingWeightsError, ModelError
from ...models import MODELS, PIPELINE_KINDS, resolve
from .adapters import ActiveAdapter, resolve_adapters
from .inspect import ControlNetInfo, IPAdapterInfo, ModelInfo, inspect_controlnet, inspect_ip_adapter, inspect_model
from .prompts import assemble, product_noun
from .resolution import Geometry, plan_geometry
from .upscale import Upscaler, check_upscaler

# Defaults (the one place each lives). Registry ids tried in order when no model is given.
DEFAULT_MODELS = {"inpaint": ("sdxl-inpaint", "sd2-inpaint", "sd15-inpaint"), "text2img": ("sdxl", "sd15")}
SUGGESTED_MODEL = {"inpaint": "sd15-inpaint", "text2img": "sd15"}
# strength when the request leaves it to the model: diffusers' SDXL-inpaint default moved below 1.0
# because that model "rarely works well with strength=1.0" (PR #4858); img2img keeps the reference's
# layout at 0.6-0.75 (A1111 0.75, diffusers 0.8)
DEFAULT_STRENGTH = {("sdxl", "inpaint"): 0.99, ("sd", "inpaint"): 1.0, ("sd", "img2img"): 0.7,
                    ("sdxl", "img2img"): 0.7}


@dataclass
class Plan:
    mode: str                      # recorded: inpaint | outpaint | text2img | img2img
    task: str                      # pipeline task: inpaint | text2img | img2img
    info: ModelInfo
    strength: float | None         # resolved (None for text2img)
    prompt: str                    # the final prompt (prompts.assemble)
    negative: str
    geometry: Geometry | None = None
    controlnet: ControlNetInfo | None = None
    ip_adapter: IPAdapterInfo | None = None
    reference: np.ndarray | None = None      # HxWx3 uint8 (img2img init and/or IP-Adapter image)
    upscaler: Upscaler | None = None         # how a background below the canvas size is enlarged
    notes: list[str] = field(default_factory=list)
    adapters: list[ActiveAdapter] = field(default_factory=list)   # trained adapters, weight 0 dropped

    @property
    def tokens(self) -> list[str]:
        """The adapters' trigger tokens, in request order."""
        return list(dict.fromkeys(a.info.token for a in self.adapters))

    @property
    def paints_product(self) -> bool:
        """The model paints the product itself (an adapter in text2img / img2img): nothing is pasted back."""
        return bool(self.adapters) and self.task in ("text2img", "img2img")


def _model(req, s: Settings, notes: list[str]) -> ModelInfo:
    """The model: given, or the first default present."""
    if req.model:
        path = resolve(req.model, s, kinds=PIPELINE_KINDS)
        return inspect_model(path, req.model if req.model in MODELS else path.name, s)
    want = "text2img" if req.mode in ("text2img", "img2img") else "inpaint"
    for mid in DEFAULT_MODELS[want]:
        try:
            path = resolve(mid, s)
        except MissingWeightsError:
            continue
        notes.append(f"model: used {mid} (the first present of {', '.join(DEFAULT_MODELS[want])})")
        return inspect_model(path, mid, s)
    raise MissingWeightsError(
        f"the diffusion engine needs a model and none is present (looked for {', '.join(DEFAULT_MODELS[want])} "
        f"in {s.model_dir} and the Hugging Face cache); fetch one with: packshot models pull "
        f"{SUGGESTED_MODEL[want]}, or pass --model PATH")


def _mode(req, info: ModelInfo, notes: list[str]) -> str:
    mode = req.mode
    if mode == "auto":
        if info.inpaint:
            return "inpaint"
        mode = "img2img" if (req.reference_image and not req.ip_adapter) else "text2img"
        notes.append(f"mode auto: {info.name} is a text-to-image model, used {mode}")
    if mode == "inpaint" and not info.inpaint:
        raise ModelError(f"model {info.name!r} is {info.describe()}; inpainting needs an inpainting checkpoint "
                         f"(in_channels=9, e.g. sd15-inpaint or sdxl-inpaint), or use --mode text2img")
    if mode in ("text2img", "img2img") and info.inpaint:
        raise ModelError(f"model {info.name!r} is {info.describe()}; {mode} needs a text-to-image checkpoint "
                         f"(in_channels=4, e.g. sd15 or sdxl), or use --mode inpaint")
    if mode == "img2img" and not req.reference_image:
        raise InvalidInputError("mode img2img restyles a reference image: give reference_image "
                                "(--reference-image PATH)")
    return mode


def _strength(req, info: ModelInfo, task: str, notes: list[str]) -> float | None:
    if task == "text2img":
        if req.strength is not None:
            notes.append(f"strength {req.strength:g} does not apply to text2img (nothing to denoise from): ignored")
        return None
    strength = req.strength if req.strength is not None else DEFAULT_STRENGTH[(info.family, task)]
    if int(req.steps * strength) < 1:
        raise InvalidInputError(f"steps {req.steps} x strength {strength:g} leaves no denoising step; "
                                f"use at least {math.ceil(1 / strength)} steps")
    if strength < 1:
        notes.append(f"strength {strength:g}{'' if req.strength is not None else ' (the model default)'}: "
                     f"{int(req.steps * strength)} of {req.steps} steps run")
    return strength


def check_request(req, s: Settings) -> Plan:
    """Model, mode, strength, ControlNet, IP-Adapter and reference image, checked without torch."""
    notes: list[str] = []
    info = _model(req, s, notes)
    task = _mode(req, info, notes)
    strength = _strength(req, info, task, notes)
    plan = Plan(mode=task, task=task, info=info, strength=strength, prompt="", negative="", notes=notes,
                adapters=resolve_adapters(req, info, s, notes))
    plan.prompt, plan.negative = assemble(req, info.family, tokens=plan.tokens, paint=plan.paints_product,
                                          notes=notes)
    if plan.paints_product:
        notes.append(f"{task} with a trained adapter: the model paints the product itself (nothing is pasted "
                     f"back); its likeness to the reference photos is scored")
    given = getattr(req, "model_fields_set", set())
    if req.controlnet:
        plan.controlnet = inspect_controlnet(req.controlnet, info, s)
        if plan.controlnet.inpaint and task != "inpaint":
            raise ModelError(f"ControlNet {plan.controlnet.name!r} is an inpainting ControlNet: it runs in mode "
                             f"inpaint only, not {task}")
    else:
        for name in sorted(given & {"control_image", "controlnet_scale", "control_end"}):
            notes.append(f"{name} {getattr(req, name)!r} needs a ControlNet (--controlnet): ignored")
    if req.ip_adapter:
        if not req.reference_image:
            raise InvalidInputError("ip_adapter takes the style of a reference photo: give reference_image "
                                    "(--reference-image PATH)")
        plan.ip_adapter = inspect_ip_adapter(req.ip_adapter, info, s)
    if req.reference_image and (task == "img2img" or plan.ip_adapter):
        if not Path(req.reference_image).expanduser().is_file():
            raise InvalidInputError(f"reference_image {req.reference_image!r}: no such file")
    plan.upscaler = check_upscaler(req.upscaler or s.upscaler, s)
    if product_noun(req) is None and s.captioner:
        from ...captioner import resolve_captioner
        resolve_captioner(None, s)          # present and a captioner: checked before any work
    if req.guidance <= 1.0:
        notes.append(f"guidance {req.guidance:g} <= 1 turns classifier-free guidance off: "
                     f"the negative prompt is not used")
    return plan


def make_plan(job, s: Settings) -> Plan:
    """:func:`check_request` plus what depends on the placed product: geometry, outpaint, the reference."""
    req = job.request
    plan = check_request(req, s)
    if plan.task == "inpaint":
        pl = job.layer.placement
        same = job.photo is not None and pl.keep_framing and job.photo.size == job.layer.size
        plan.mode = "inpaint" if same else "outpaint"
    g = plan.geometry = plan_geometry(job.layer.size, plan.info)
    if g.resized:
        how = f"upscaled with {plan.upscaler.describe() if plan.upscaler else 'Lanczos'}" if g.upscaled \
            else "downscaled"
        what, tail = ("image", "") if plan.paints_product else \
            ("background", "; the product is pasted at full resolution")
        plan.notes.append(f"generated at {g.work[0]}x{g.work[1]} (model {plan.info.name}: native {plan.info.native} "
                          f"px, bucket {g.padded[0]}x{g.padded[1]}), {what} {how} to "
                          f"{job.layer.size[0]}x{job.layer.size[1]}{tail}")
    if plan.upscaler is not None and not g.upscaled:
        plan.notes.append(f"upscaler {req.upscaler or s.upscaler!r} not used: the background is generated at "
                          f"or above the output size")
    if product_noun(req) is None and s.captioner:
        _caption_noun(plan, job, s)
    if req.reference_image and plan.task != "img2img" and not plan.ip_adapter:
        plan.notes.append("reference_image is used by img2img and IP-Adapter only: ignored in " + plan.mode)
    if req.reference_image and (plan.task == "img2img" or plan.ip_adapter):
        from ...io import load_image
        plan.reference = load_image(req.reference_image, max_pixels=s.max_pixels).rgb
    return plan


def _caption_noun(plan: Plan, job, s: Settings) -> None:
    """No product noun in the request: the configured captioner names the product (captioned on
    white) and its noun goes into the final prompt; what it said is in a note either way."""
    from ...captioner import caption_image, noun_of
    layer = job.layer
    rgba = np.dstack([layer.rgb, np.round(np.clip(layer.alpha, 0, 1) * 255).astype(np.uint8)])
    caption = caption_image(rgba, None, s)
    noun = noun_of(caption)
    if noun is None:
        plan.notes.append(f"captioner {s.captioner}: '{caption}' names no product noun packshot knows; "
                          f"the prompt does not name the product (give --product)")
        return
    plan.prompt, _ = assemble(job.request, plan.info.family, noun=noun, tokens=plan.tokens,
                              paint=plan.paints_product)
    plan.notes.append(f"product noun '{noun}' from the captioner {s.captioner} ('{caption}')")
