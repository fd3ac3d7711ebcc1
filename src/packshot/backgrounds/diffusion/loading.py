"""Loading diffusers pipelines: the base pipeline once, variants sharing its modules.

A ControlNet variant is ``<ControlNet class>.from_pipe(base, controlnet=...)``: it shares the
base's UNet, VAE and text encoders (only the ControlNet's own weights are loaded), so switching a
ControlNet on or off never loads a second copy of the model. Other pipeline classes on the same
weights (img2img, the seam pass's inpainting) are ``from_pipe`` views too. An IP-Adapter rewrites
the UNet's attention processors in place, so an IP-Adapter pipeline is its own load (sharing would
change the plain pipeline too).
"""
from __future__ import annotations

import threading
import time
from typing import Any

from ...config import Settings
from ...errors import DependencyMissingError, ModelError
from ...models import MODELS, pipeline_components, resolve
from .adapters import AdapterState
from .control import patch_controlnet
from .stack import import_stack, quiet

IP_ADAPTER_SCALE = 0.6     # how strongly the reference photo's style steers the image
FP16_VAE = "sdxl-vae-fp16-fix"

# (family, task, controlnet) -> diffusers pipeline class, e.g. ("sdxl", "inpaint", True) ->
# StableDiffusionXLControlNetInpaintPipeline
_FAMILY = {"sd": "StableDiffusion", "sdxl": "StableDiffusionXL"}
_TASK = {"inpaint": "Inpaint", "text2img": "", "img2img": "Img2Img"}
CLASSES = {(f, t, cn): f"{_FAMILY[f]}{'ControlNet' if cn else ''}{_TASK[t]}Pipeline"
           for f in _FAMILY for t in _TASK for cn in (False, True)}


class LoadedPipeline:
    """A loaded pipeline plus ``from_pipe`` views of other classes on the same modules.

    ``lock`` serialises calls: a diffusers pipeline (its scheduler) is not safe to run twice at once.
    A variant shares its base's lock and adapter state (they share modules).
    """

    def __init__(self, pipe: Any, load_seconds: float, notes: list[str], lock: threading.Lock | None = None,
                 adapters: AdapterState | None = None):
        self.pipe = pipe
        self.lock = lock or threading.Lock()
        self.adapters = adapters or AdapterState()   # trained adapters loaded on these modules (shared)
        self.load_seconds = load_seconds
        self.notes = notes
        self.scheduler_class = type(pipe.scheduler)
        self.scheduler_config = dict(pipe.scheduler.config)
        self._views: dict[str, Any] = {}

    def view(self, class_name: str) -> Any:
        if type(self.pipe).__name__ == class_name:
            return self.pipe
        if class_name not in self._views:
            import diffusers
            with quiet():
                v = getattr(diffusers, class_name).from_pipe(self.pipe)
            v.set_progress_bar_config(disable=True)
            self._views[class_name] = v
        return self._views[class_name]

    def release(self) -> None:
        """Called on LRU eviction: drop the views; the modules go when the last user lets go
        (a render still running on this pipeline keeps it alive until it ends)."""
        self._views.clear()


def _load_error(part: str, info, e: Exception) -> ModelError:
    msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    return ModelError(f"cannot load {part} ({info.describe()}): {type(e).__name__}: {msg}")


def _pretrained_kwargs(info, rt, settings: Settings) -> dict[str, Any]:
    kw: dict[str, Any] = {"torch_dtype": rt.dtype, "local_files_only": True}
    comps = pipeline_components(info.path)
    for unused in ("safety_checker", "feature_extractor"):
        if unused in comps:
            kw[unused] = None
    if "safety_checker" in comps:
        kw["requires_safety_checker"] = False
    if info.variant:
        kw["variant"] = info.variant
    if not settings.allow_pickle_weights:
        kw["use_safetensors"] = True
    return kw


def _fp16_safe_vae(pipe: Any, info, rt, settings: Settings, diffusers) -> list[str]:
    """SDXL's original VAE overflows in float16 (NaN / black images): use the fp16-fix VAE when it
    is present, else make sure the VAE decodes in float32 (``force_upcast``)."""
    if info.family != "sdxl" or rt.dtype_name != "float16" or getattr(pipe, "vae", None) is None:
        return []
    try:
        path = resolve(FP16_VAE, settings) if FP16_VAE in MODELS else None
    except Exception:   # not present: fall back to upcasting
        path = None
    if path is not None:
        pipe.vae = diffusers.AutoencoderKL.from_pretrained(path, torch_dtype=rt.dtype, local_files_only=True)
        return [f"SDXL VAE: {FP16_VAE} (decodes in float16)"]
    if not pipe.vae.config.get("force_upcast", False):
        pipe.vae.register_to_config(force_upcast=True)
    return [f"SDXL VAE decodes in float32 (float16 overflows); fetch {FP16_VAE} to decode in float16"]


def load_base(info, rt, settings: Settings, ip_adapter=None) -> LoadedPipeline:
    """The model's own pipeline class (inpaint or text-to-image), with an IP-Adapter if given."""
    from ...models.devices import apply_memory_options
    _torch, diffusers = import_stack()
    t0 = time.perf_counter()
    task = "inpaint" if info.inpaint else "text2img"
    with quiet():  # importing a pipeline module pulls transformers' image processors (chatty)
        cls = getattr(diffusers, CLASSES[(info.family, task, False)])
    part = f"model {info.path}"
    try:
        with quiet():
            if info.format == "diffusers":
                pipe = cls.from_pretrained(info.path, **_pretrained_kwargs(info, rt, settings))
            else:
                pipe = cls.from_single_file(str(info.path), config=str(info.config_dir), torch_dtype=rt.dtype,
                                            local_files_only=True)
            notes = _fp16_safe_vae(pipe, info, rt, settings, diffusers)
            if ip_adapter is not None:
                part = f"IP-Adapter {ip_adapter.root / ip_adapter.subfolder / ip_adapter.weight_name}"
                pipe.load_ip_adapter(str(ip_adapter.root), subfolder=ip_adapter.subfolder,
                                     weight_name=ip_adapter.weight_name,
                                     image_encoder_folder=ip_adapter.image_encoder_folder, local_files_only=True)
                pipe.set_ip_adapter_scale(IP_ADAPTER_SCALE)
    except (ModelError, DependencyMissingError):
        raise
    except Exception as e:
        raise _load_error(part, info, e) from None
    unet = getattr(pipe, "unet", None)
    if unet is not None and int(unet.config.in_channels) != info.in_channels:
        raise ModelError(f"model {info.name!r} loaded a UNet with in_channels={unet.config.in_channels}, "
                         f"expected {info.in_channels}")
    notes += apply_memory_options(pipe, rt, settings)
    pipe.set_progress_bar_config(disable=True)
    return LoadedPipeline(pipe, time.perf_counter() - t0, notes)


def controlnet_variant(base: LoadedPipeline, info, cn_info, rt, settings: Settings) -> LoadedPipeline:
    """``base`` with a ControlNet: only the ControlNet is loaded; every other module is the base's."""
    _torch, diffusers = import_stack()
    t0 = time.perf_counter()
    task = "inpaint" if info.inpaint else "text2img"
    cn_kw: dict[str, Any] = {"torch_dtype": rt.dtype, "local_files_only": True}
    if cn_info.variant:
        cn_kw["variant"] = cn_info.variant
    if not settings.allow_pickle_weights:
        cn_kw["use_safetensors"] = True
    try:
        with quiet():
            cn = diffusers.ControlNetModel.from_pretrained(cn_info.path, **cn_kw)
            if not (settings.cpu_offload and rt.accelerator):
                cn.to(rt.device)
            patch_controlnet(cn)
            pipe = getattr(diffusers, CLASSES[(info.family, task, True)]).from_pipe(base.pipe, controlnet=cn)
    except (ModelError, DependencyMissingError):
        raise
    except Exception as e:
        raise _load_error(f"ControlNet {cn_info.path}", info, e) from None
    pipe.set_progress_bar_config(disable=True)
    return LoadedPipeline(pipe, time.perf_counter() - t0, list(base.notes), lock=base.lock, adapters=base.adapters)
