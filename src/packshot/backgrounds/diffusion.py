"""Diffusion engine: Stable Diffusion 1.x / 2.x / XL backgrounds with diffusers (extra ``ai``).

Modes (``request.mode``):

* ``inpaint``  -- the model paints the background around the product, which it sees in place
  (keep-framing: the original photo is the init image). Mask = every pixel that is not opaque
  product (alpha < 0.98), so soft edges get new background behind them. Needs an inpainting
  checkpoint (UNet ``in_channels == 9``). Called ``outpaint`` in the results when the product was
  moved or rescaled onto a new canvas: the same call, the init is the product on a neutral fill.
* ``text2img`` -- a background from the prompt alone (a text-to-image checkpoint); the compositor
  places the product and its shadows afterwards.
* ``img2img``  -- restyle ``request.reference_image`` (uniformly scaled to cover the canvas, then
  centre-cropped: never stretched) with ``strength``.
* ``auto``     -- inpaint with an inpainting model; with a text-to-image model, img2img when a
  reference image is given (and no IP-Adapter), else text2img.

Correctness rules (see ``Geometry``): the canvas is scaled uniformly into the model's working range
(about its native size; sides are never stretched), padded to multiples of 8 with explicit
``height``/``width``, and the padding is cropped off afterwards; the result is resized back to the
exact canvas size. The ``n`` candidates run as ONE batched call where free memory allows (GPU
memory, or available RAM on CPU; a GPU batch is halved on out-of-memory). Each
candidate has its own ``torch.Generator("cpu").manual_seed(seed)`` and its own copy of every input,
so candidate i equals a single call with its seed (up to float rounding), batched or not. The product is pasted
back exactly by the compositor; ``Scene.raw_product`` keeps the model's own pixels for fidelity
scores. Every setting is honoured or reported in ``Scene.notes``.

Loaded pipelines live in :func:`packshot.models.model_cache` (LRU, ``settings.resident_models``),
keyed by (path, kind, dtype, device, controlnet, ip-adapter, memory options); a second call on the
same model does not load anything. Other pipeline classes on the same weights (img2img, the seam
pass) are ``from_pipe`` views sharing the loaded modules.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from ..config import Settings
from ..errors import DependencyMissingError, InvalidInputError, MissingWeightsError, ModelError, UnknownNameError
from ..models import (MODELS, PIPELINE_KINDS, check_pipeline_folder, check_weights_folder, model_cache,
                      pipeline_components, resolve, safetensors_header, weight_files)
from ..types import Layer, ProgressFn, Scene, no_progress
from . import SceneJob

# Defaults (the one place each lives). Registry ids tried in order when no model is given.
DEFAULT_MODELS = {"inpaint": ("sdxl-inpaint", "sd2-inpaint", "sd15-inpaint"), "text2img": ("sdxl", "sd15")}
SUGGESTED_MODEL = {"inpaint": "sd15-inpaint", "text2img": "sd15"}
KEEP_ALPHA = 0.98          # product pixels at or above this alpha are kept; everything else is repainted
SEAM_STRENGTH = 0.35       # seam pass: low-strength re-noise of a thin ring around the product
SEAM_RING = 0.015          # ring half-width as a fraction of the working canvas's short side (>= 4 px)
IP_ADAPTER_SCALE = 0.6     # how strongly the reference photo's style steers the image
AREA_RANGE = (0.5, 1.5)    # working area between (0.5 * native)^2 and (1.5 * native)^2
MAX_SIDE_FACTOR = 4        # longest working side <= 4 * native
PX_BYTES_PER_IMAGE = 8000  # GPU bytes per working pixel per candidate (activations + VAE decode), rough

_CLASSES = {  # (family, task, controlnet) -> diffusers pipeline class
    ("sd", "inpaint", False): "StableDiffusionInpaintPipeline",
    ("sd", "inpaint", True): "StableDiffusionControlNetInpaintPipeline",
    ("sd", "text2img", False): "StableDiffusionPipeline",
    ("sd", "text2img", True): "StableDiffusionControlNetPipeline",
    ("sd", "img2img", False): "StableDiffusionImg2ImgPipeline",
    ("sd", "img2img", True): "StableDiffusionControlNetImg2ImgPipeline",
    ("sdxl", "inpaint", False): "StableDiffusionXLInpaintPipeline",
    ("sdxl", "inpaint", True): "StableDiffusionXLControlNetInpaintPipeline",
    ("sdxl", "text2img", False): "StableDiffusionXLPipeline",
    ("sdxl", "text2img", True): "StableDiffusionXLControlNetPipeline",
    ("sdxl", "img2img", False): "StableDiffusionXLImg2ImgPipeline",
    ("sdxl", "img2img", True): "StableDiffusionXLControlNetImg2ImgPipeline",
}


# -- heavy imports, quietly -------------------------------------------------------------------------

@contextmanager
def _quiet() -> Iterator[None]:
    """Silence transformers/diffusers warnings and loading bars while we import/load/run.

    packshot reports its own progress and notes; library chatter on stderr would break the CLI's
    one-line error contract. Verbosity, progress-bar switches and warning filters are restored.
    """
    import importlib
    import warnings

    libs = []
    for mod in ("transformers.utils.logging", "diffusers.utils.logging"):
        try:
            libs.append(importlib.import_module(mod))
        except ImportError:
            continue
    saved = [(m, m.get_verbosity(), m.is_progress_bar_enabled()) for m in libs]
    hub = logging.getLogger("huggingface_hub")
    hub_level = hub.level
    try:
        for m in libs:
            m.set_verbosity(logging.ERROR)
            m.disable_progress_bar()
        hub.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for m, level, bars in saved:
            m.set_verbosity(level)
            if bars:
                m.enable_progress_bar()
        hub.setLevel(hub_level)


def _import_stack():
    """(torch, diffusers), or DependencyMissingError naming the extra."""
    try:
        with _quiet():
            import torch
            import diffusers
            import transformers  # noqa: F401
    except ImportError:
        raise DependencyMissingError("the diffusion engine", "ai") from None
    return torch, diffusers


# -- what a model is (read from disk, no torch) ------------------------------------------------------

@dataclass(frozen=True)
class ModelInfo:
    """What a local model is, read from its configs / safetensors header (no torch)."""

    path: Path
    name: str                 # registry id, or the folder/file name (recorded as "Model")
    format: str               # "diffusers" | "single-file"
    family: str               # "sd" (1.x/2.x) | "sdxl"
    in_channels: int          # 9 = inpainting UNet, 4 = text-to-image
    native: int               # px side the model was trained at
    min_side: int             # smallest working side (px) the UNet can take
    cross_attention_dim: int | None = None
    variant: str | None = None            # "fp16" when only fp16 weights are there
    config_dir: Path | None = None        # single-file: diffusers folder whose configs are used
    v2: bool = False

    @property
    def inpaint(self) -> bool:
        return self.in_channels == 9

    @property
    def kind(self) -> str:
        base = "sdxl" if self.family == "sdxl" else ("sd2" if self.v2 else "sd15")
        return f"{base}-inpaint" if self.inpaint else base

    def describe(self) -> str:
        fam = "an SDXL" if self.family == "sdxl" else "an SD 1.x/2.x"
        what = "inpainting" if self.inpaint else "text-to-image"
        return f"{fam} {what} model (UNet in_channels={self.in_channels})"


def _read_json(path: Path, folder: Path) -> dict:
    import json
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model folder {folder} is corrupt or incomplete: {path.relative_to(folder)} is missing") from None
    except (OSError, ValueError):
        raise ModelError(f"model folder {folder} is corrupt: {path.relative_to(folder)} is not valid JSON") from None


def _variant(folder: Path) -> str | None:
    """'fp16' when a component has only ``*.fp16.*`` weights (as `models pull` fetches for SDXL)."""
    files = weight_files(folder)
    if files and all(".fp16." in p.name for p in files):
        return "fp16"
    return None


def _unet_facts(unet_cfg: dict, vae_cfg: dict) -> tuple[int, int, int]:
    """(in_channels, native px, min side px) from the UNet and VAE configs."""
    scale = 2 ** (len(vae_cfg.get("block_out_channels", (1, 1, 1, 1))) - 1)
    sample = unet_cfg.get("sample_size", 64)
    sample = sample[0] if isinstance(sample, (list, tuple)) else sample
    downs = len(unet_cfg.get("down_block_types", ())) - 1
    return int(unet_cfg.get("in_channels", 4)), int(sample) * scale, scale * 2 ** max(downs, 0)


def inspect_model(path: Path, name: str, settings: Settings) -> ModelInfo:
    """Read what ``path`` is (diffusers folder or single ``.safetensors`` checkpoint) and check it.

    Raises ModelError naming the path and the broken or unsuitable part: not a pipeline, a
    ControlNet given as the model, a missing/truncated weights file, unreadable configs.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "model_index.json").exists():
            cfg = path / "config.json"
            if cfg.exists():
                cls = _read_json(cfg, path).get("_class_name") or _read_json(cfg, path).get("model_type")
                raise ModelError(f"model {name!r} ({path}) is a {cls} folder, not a diffusion pipeline"
                                 + (": pass it as --controlnet" if cls == "ControlNetModel" else ""))
            raise ModelError(f"model {name!r} ({path}) is not a diffusers pipeline folder (no model_index.json) "
                             f"nor a .safetensors checkpoint")
        comps = pipeline_components(path)
        if "unet" not in comps:
            cls = _read_json(path / "model_index.json", path).get("_class_name")
            raise ModelError(f"model {name!r} ({path}) is a {cls} without a UNet; the diffusion engine runs "
                             f"Stable Diffusion 1.x/2.x/XL pipelines")
        problem = check_pipeline_folder(path, settings.allow_pickle_weights)
        if problem:
            raise ModelError(f"model folder {path} is corrupt or incomplete: {problem}")
        unet = _read_json(path / "unet" / "config.json", path)
        vae = _read_json(path / "vae" / "config.json", path)
        in_ch, native, min_side = _unet_facts(unet, vae)
        sdxl = "text_encoder_2" in comps or unet.get("addition_embed_type") == "text_time"
        v2 = not sdxl and unet.get("cross_attention_dim") == 1024
        return ModelInfo(path=path, name=name, format="diffusers", family="sdxl" if sdxl else "sd",
                         in_channels=in_ch, native=native, min_side=min_side,
                         cross_attention_dim=unet.get("cross_attention_dim"), variant=_variant(path / "unet"),
                         v2=v2)
    return _inspect_single_file(path, name, settings)


def _single_file_keys(path: Path, settings: Settings) -> dict[str, list[int]]:
    """Tensor name -> shape of a single-file checkpoint, without loading the weights."""
    if path.suffix == ".safetensors":
        header = safetensors_header(path)
        return {k: v.get("shape", []) for k, v in header.items() if k != "__metadata__"}
    if path.suffix in (".ckpt", ".pt", ".pth", ".bin"):
        if not settings.allow_pickle_weights:
            raise ModelError(f"model {path} is a pickle checkpoint; loading it can run code: convert it to "
                             f".safetensors, or set PACKSHOT_ALLOW_PICKLE_WEIGHTS=1 if you trust the source")
        torch, _ = _import_stack()
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:
            raise ModelError(f"model {path} is corrupt or not a checkpoint: {type(e).__name__}") from None
        sd = sd.get("state_dict", sd) if isinstance(sd, dict) else {}
        return {k: list(getattr(v, "shape", ())) for k, v in sd.items()}
    raise ModelError(f"model {path} is not a diffusers folder or a .safetensors checkpoint")


def _inspect_single_file(path: Path, name: str, settings: Settings) -> ModelInfo:
    keys = _single_file_keys(path, settings)
    first = keys.get("model.diffusion_model.input_blocks.0.0.weight")
    if not first or len(first) != 4:
        raise ModelError(f"{path} is not a Stable Diffusion checkpoint (no model.diffusion_model.* UNet weights)")
    in_ch = int(first[1])
    sdxl = any(k.startswith("conditioner.embedders.1.") for k in keys)
    v2 = not sdxl and any(k.startswith("cond_stage_model.model.") for k in keys)
    inpaint = in_ch == 9
    base = "sdxl" if sdxl else ("sd2" if v2 else "sd15")
    config_id = f"{base}-inpaint" if inpaint else base
    config_dir = None
    if config_id in MODELS:
        try:
            found = resolve(config_id, settings)
            if (found / "model_index.json").exists():
                config_dir = found
        except MissingWeightsError:
            pass
    if config_dir is None:
        hint = (f"fetch it (a few KB) with: packshot models pull {config_id} --config-only" if config_id in MODELS
                else "convert the checkpoint to a diffusers folder")
        raise ModelError(f"single-file checkpoint {path.name} ({base}{' inpainting' if inpaint else ''}) needs the "
                         f"configs of its base model {config_id!r}, which are not present; {hint}")
    unet = _read_json(config_dir / "unet" / "config.json", config_dir)
    vae = _read_json(config_dir / "vae" / "config.json", config_dir)
    cfg_in, native, min_side = _unet_facts(unet, vae)
    if cfg_in != in_ch:
        raise ModelError(f"single-file checkpoint {path.name} has a UNet with in_channels={in_ch} but the configs "
                         f"in {config_dir} say {cfg_in}")
    return ModelInfo(path=path, name=name, format="single-file", family="sdxl" if sdxl else "sd",
                     in_channels=in_ch, native=native, min_side=min_side,
                     cross_attention_dim=unet.get("cross_attention_dim"), config_dir=config_dir, v2=v2)


@dataclass(frozen=True)
class ControlNetInfo:
    path: Path
    name: str
    variant: str | None


def inspect_controlnet(ref: str, info: ModelInfo, settings: Settings) -> ControlNetInfo:
    """Resolve and check a ControlNet folder against the model it will steer."""
    path = resolve(ref, settings, kinds=("controlnet",))
    name = ref if ref in MODELS else path.name
    if not path.is_dir() or not (path / "config.json").exists():
        raise ModelError(f"ControlNet {ref!r} ({path}) must be a diffusers ControlNetModel folder "
                         f"(config.json + weights)")
    cfg = _read_json(path / "config.json", path)
    if cfg.get("_class_name") != "ControlNetModel":
        raise ModelError(f"ControlNet {ref!r} ({path}) is a {cfg.get('_class_name')}, not a ControlNetModel")
    problem = check_weights_folder(path, settings.allow_pickle_weights)
    if problem:
        raise ModelError(f"ControlNet folder {path} is corrupt or incomplete: {problem}")
    cn_xl = cfg.get("addition_embed_type") == "text_time"
    if cn_xl != (info.family == "sdxl") or (info.cross_attention_dim and cfg.get("cross_attention_dim")
                                            and cfg["cross_attention_dim"] != info.cross_attention_dim):
        cn_what = "SDXL" if cn_xl else f"SD 1.x/2.x (cross_attention_dim {cfg.get('cross_attention_dim')})"
        raise ModelError(f"ControlNet {name!r} is for {cn_what} but model {info.name!r} is {info.describe()} "
                         f"(cross_attention_dim {info.cross_attention_dim})")
    if cfg.get("in_channels", 4) != 4:
        raise ModelError(f"ControlNet {name!r} takes in_channels={cfg.get('in_channels')}; packshot feeds "
                         f"ControlNets the 4-channel latents")
    return ControlNetInfo(path=path, name=name, variant=_variant(path))


@dataclass(frozen=True)
class IPAdapterInfo:
    root: Path
    subfolder: str
    weight_name: str
    image_encoder_folder: str
    name: str

    @property
    def key(self) -> tuple[str, str, str]:
        return str(self.root), self.subfolder, self.weight_name


def inspect_ip_adapter(ref: str, info: ModelInfo, settings: Settings) -> IPAdapterInfo:
    """Resolve an IP-Adapter: a registry id, a ``.safetensors`` file (image_encoder/ next to it) or a
    folder holding one ``ip-adapter*.safetensors`` (top level or ``models/``) and ``image_encoder/``."""
    path = resolve(ref, settings, kinds=("ip-adapter",))
    spec = MODELS.get(ref)
    if spec is not None:
        base = spec.extra.get("base")
        if base and (base == "sdxl") != (info.family == "sdxl"):
            raise ModelError(f"IP-Adapter {ref!r} is for {base} but model {info.name!r} is {info.describe()}")
        ip = IPAdapterInfo(path, spec.extra["subfolder"], spec.extra["weight_name"],
                           spec.extra["image_encoder_folder"], ref)
    elif path.is_file():
        ip = IPAdapterInfo(path.parent, "", path.name, "image_encoder", path.name)
    else:
        found = [p for sub in ("", "models", "sdxl_models") for p in sorted((path / sub).glob("*.safetensors"))
                 if "ip-adapter" in p.name or "ip_adapter" in p.name]
        if len(found) != 1:
            listed = ", ".join(str(p.relative_to(path)) for p in found) or "none"
            raise ModelError(f"IP-Adapter folder {path} must hold exactly one ip-adapter*.safetensors (found: {listed}); "
                             f"pass the file itself")
        sub = found[0].parent.relative_to(path).as_posix()
        ip = IPAdapterInfo(path, "" if sub == "." else sub, found[0].name, "image_encoder", path.name)
    weights = ip.root / ip.subfolder / ip.weight_name
    header = safetensors_header(weights)  # raises on a truncated file
    if not any(k.startswith("image_proj.") for k in header):
        raise ModelError(f"{weights} is not an IP-Adapter (no image_proj.* weights)")
    enc_dir = (ip.root / ip.image_encoder_folder if "/" in ip.image_encoder_folder
               else ip.root / ip.subfolder / ip.image_encoder_folder)
    problem = check_weights_folder(enc_dir, settings.allow_pickle_weights) if enc_dir.is_dir() else \
        f"{enc_dir} is missing"
    if problem:
        raise ModelError(f"IP-Adapter {ip.name!r}: its image encoder is unusable: {problem}")
    return ip


# -- geometry: uniform scale into the model's range, pad to multiples of 8 -----------------------------

def _ceil8(v: int) -> int:
    return int(math.ceil(v / 8.0) * 8)


@dataclass(frozen=True)
class Geometry:
    """Canvas (W, H) -> working size (w, h) = uniform scale, padded (right/bottom) to multiples of 8."""

    canvas: tuple[int, int]
    work: tuple[int, int]
    padded: tuple[int, int]
    scale: float

    @property
    def resized(self) -> bool:
        return self.work != self.canvas

    def _resize(self, a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        if (a.shape[1], a.shape[0]) == size:
            return a
        shrink = size[0] < a.shape[1]
        return cv2.resize(a, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)

    def to_work(self, a: np.ndarray, pad_value: float | None = None) -> np.ndarray:
        """Canvas-size image/mask -> padded working size. Pads by edge replication, or ``pad_value``."""
        dtype = a.dtype
        r = self._resize(a, self.work)
        if dtype == np.uint8:
            r = np.clip(r, 0, 255).astype(np.uint8)
        pw, ph = self.padded
        w, h = self.work
        if (pw, ph) == (w, h):
            return np.ascontiguousarray(r)
        if pad_value is None:
            return cv2.copyMakeBorder(r, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)
        return cv2.copyMakeBorder(r, 0, ph - h, 0, pw - w, cv2.BORDER_CONSTANT, value=pad_value)

    def to_canvas(self, a: np.ndarray) -> np.ndarray:
        """Padded working-size HxWx3 uint8 -> the exact canvas size (crop the padding, resize back)."""
        w, h = self.work
        crop = a[:h, :w]
        out = self._resize(crop, self.canvas)
        return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))


def plan_geometry(canvas: tuple[int, int], info: ModelInfo) -> Geometry:
    """Choose the working size for ``canvas`` on ``info``'s model, or raise ModelError if it cannot.

    The working area is kept within (0.5 * native)^2 .. (1.5 * native)^2 by one uniform scale (the
    output is resized back to the canvas, the product pasted back at full resolution), then padded to
    multiples of 8. Sides must then lie in [min_side, 4 * native]: a canvas too elongated for the
    model is refused rather than squeezed.
    """
    W, H = canvas
    native = info.native
    lo, hi = (AREA_RANGE[0] * native) ** 2, (AREA_RANGE[1] * native) ** 2
    area = float(W * H)
    s = 1.0
    if area > hi:
        s = math.sqrt(hi / area)
    elif area < lo:
        s = math.sqrt(lo / area)
    w, h = max(1, round(W * s)), max(1, round(H * s))
    pw, ph = _ceil8(w), _ceil8(h)
    max_side = MAX_SIDE_FACTOR * native
    if min(pw, ph) < info.min_side or max(pw, ph) > max_side:
        raise ModelError(
            f"canvas {W}x{H} is a size model {info.name!r} cannot take: at its working scale (native {native} px) "
            f"it would be {pw}x{ph}, and the model takes sides of {info.min_side}..{max_side} px; "
            f"use a less elongated canvas")
    return Geometry(canvas=(W, H), work=(w, h), padded=(pw, ph), scale=s)


# -- conditioning images ---------------------------------------------------------------------------

def canny_control(layer: Layer) -> np.ndarray:
    """Canny edges of the placed product (and its outline), HxWx3 uint8, white edges on black."""
    a = layer.alpha[..., None]
    grey = np.full_like(layer.rgb, 127)
    comp = np.clip(layer.rgb * a + grey * (1 - a), 0, 255).astype(np.uint8)
    edges = cv2.Canny(cv2.cvtColor(comp, cv2.COLOR_RGB2GRAY), 100, 200)
    outline = cv2.Canny((layer.alpha >= 0.5).astype(np.uint8) * 255, 100, 200)
    e = np.maximum(edges, outline)
    return np.dstack([e, e, e])


def depth_control(layer: Layer) -> np.ndarray:
    """Pseudo-depth of the layout (bright = near), HxWx3 uint8, for a depth ControlNet.

    No depth model: a floor that comes nearer towards the bottom of the canvas (0.15 -> 0.55 below
    the product's base line, a far wall above it) and the product as a near, gently rounded body
    (0.75..0.95 from its distance-to-edge). Enough to pin the product's place and silhouette.
    """
    H, W = layer.alpha.shape
    y = np.arange(H, dtype=np.float32)[:, None]
    floor = layer.placement.floor_y if layer.placement.floor_y is not None else int(H * 0.75)
    horizon = max(0, min(H - 1, int(floor - 0.35 * H)))
    depth = np.where(y < horizon, 0.15, 0.15 + 0.4 * (y - horizon) / max(1, H - 1 - horizon))
    depth = np.broadcast_to(depth, (H, W)).astype(np.float32).copy()
    m = (layer.alpha >= 0.5).astype(np.uint8)
    if m.any():
        dist = cv2.distanceTransform(m, cv2.DIST_L2, 5)
        body = 0.75 + 0.2 * np.sqrt(dist / max(1.0, float(dist.max())))
        depth = np.where(m > 0, body, depth)
    d = (np.clip(depth, 0, 1) * 255).round().astype(np.uint8)
    return np.dstack([d, d, d])


def ring_mask(alpha: np.ndarray, width: int) -> np.ndarray:
    """A band of ``width`` px on both sides of the product's edge (float32 HxW, 1 in the band)."""
    m = (alpha >= 0.5).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    ring = cv2.dilate(m, k) - cv2.erode(m, k)
    return ring.astype(np.float32)


def cover_crop(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``rgb`` uniformly to cover ``size`` (w, h) and centre-crop: never stretched."""
    w, h = size
    ih, iw = rgb.shape[:2]
    s = max(w / iw, h / ih)
    nw, nh = max(w, round(iw * s)), max(h, round(ih * s))
    r = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    x, y = (nw - w) // 2, (nh - h) // 2
    return np.ascontiguousarray(r[y:y + h, x:x + w])


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0).round().astype(np.uint8)


# -- the plan: every check before torch is imported -------------------------------------------------

@dataclass
class Plan:
    mode: str                      # recorded: inpaint | outpaint | text2img | img2img
    task: str                      # pipeline task: inpaint | text2img | img2img
    info: ModelInfo
    geometry: Geometry
    controlnet: ControlNetInfo | None = None
    ip_adapter: IPAdapterInfo | None = None
    reference: np.ndarray | None = None      # HxWx3 uint8 (img2img init and/or IP-Adapter image)
    notes: list[str] = field(default_factory=list)


class LoadedPipeline:
    """A loaded pipeline plus ``from_pipe`` views of other classes on the same modules.

    ``lock`` serialises calls: a diffusers pipeline (its scheduler) is not safe to run twice at once.
    """

    def __init__(self, pipe: Any, load_seconds: float, notes: list[str]):
        self.pipe = pipe
        self.lock = threading.Lock()
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
            with _quiet():
                v = getattr(diffusers, class_name).from_pipe(self.pipe)
            v.set_progress_bar_config(disable=True)
            self._views[class_name] = v
        return self._views[class_name]

    def release(self) -> None:
        """Called on LRU eviction: drop the views; the modules go when the last user lets go
        (a render still running on this pipeline keeps it alive until it ends)."""
        self._views.clear()


class DiffusionEngine:
    """Background engine ``diffusion``: see the module docstring."""

    name = "diffusion"
    # most candidates in one call on CPU; the free-RAM estimate may allow fewer (bench: one batched
    # call of 4 took 0.94x the time of 4 single calls at 384x288, up to 1.1x at 512 px)
    cpu_batch: int = 16

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()

    # 1. check inputs -----------------------------------------------------------------------------
    def plan(self, job: SceneJob) -> Plan:
        """Everything that can be checked without torch: model, mode, size, conditioning, notes."""
        req = job.request
        s = self.settings
        given = getattr(req, "model_fields_set", set())
        notes: list[str] = []
        if req.mode not in ("auto", "inpaint", "text2img", "img2img"):
            raise InvalidInputError(f"mode {req.mode!r} is not one of auto, inpaint, text2img, img2img")

        # the model: given, or the first default present
        if req.model:
            path = resolve(req.model, s, kinds=PIPELINE_KINDS)
            name = req.model if req.model in MODELS else path.name
        else:
            want = "text2img" if req.mode in ("text2img", "img2img") else "inpaint"
            path = name = None
            for mid in DEFAULT_MODELS[want]:
                try:
                    path, name = resolve(mid, s), mid
                    break
                except MissingWeightsError:
                    continue
            if path is None:
                raise MissingWeightsError(
                    f"the diffusion engine needs a model and none is present (looked for "
                    f"{', '.join(DEFAULT_MODELS[want])} in {s.model_dir} and the Hugging Face cache); fetch one "
                    f"with: packshot models pull {SUGGESTED_MODEL[want]}, or pass --model PATH")
            notes.append(f"model: used {name} (the first present of {', '.join(DEFAULT_MODELS[want])})")
        info = inspect_model(path, name, s)

        # the mode
        mode = req.mode
        if mode == "auto":
            if info.inpaint:
                mode = "inpaint"
            else:
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
        task = mode
        recorded = mode
        if mode == "inpaint":
            pl = job.layer.placement
            same = job.photo is not None and pl.keep_framing and job.photo.size == job.layer.size
            recorded = "inpaint" if same else "outpaint"

        # strength x steps must leave at least one denoising step
        if task in ("inpaint", "img2img") and int(req.steps * req.strength) < 1:
            raise InvalidInputError(f"steps {req.steps} x strength {req.strength} leaves no denoising step; "
                                    f"use at least {math.ceil(1 / req.strength)} steps")
        if task in ("inpaint", "img2img") and req.strength < 1:
            notes.append(f"strength {req.strength:g}: {int(req.steps * req.strength)} of {req.steps} steps run")

        geometry = plan_geometry(job.layer.size, info)
        if geometry.resized:
            notes.append(f"generated at {geometry.work[0]}x{geometry.work[1]} (model {info.name} is native "
                         f"{info.native} px) and resized to {job.layer.size[0]}x{job.layer.size[1]}; the product "
                         f"is pasted back at full resolution")

        # settings that do not apply to this mode are reported, never dropped silently
        if task == "text2img" and "strength" in given:
            notes.append(f"strength {req.strength:g} does not apply to text2img (nothing to denoise from): ignored")
        if "control_image" in given and not req.controlnet:
            notes.append(f"control_image {req.control_image!r} needs a ControlNet (--controlnet): ignored")
        if req.reference_image and task != "img2img" and not req.ip_adapter:
            notes.append("reference_image is used by img2img and IP-Adapter only: ignored in " + recorded)
        if req.guidance <= 1.0:
            notes.append(f"guidance {req.guidance:g} <= 1 turns classifier-free guidance off: "
                         f"the negative prompt is not used")

        plan = Plan(mode=recorded, task=task, info=info, geometry=geometry, notes=notes)
        if req.controlnet:
            plan.controlnet = inspect_controlnet(req.controlnet, info, s)
        if req.ip_adapter:
            if not req.reference_image:
                raise InvalidInputError("ip_adapter takes the style of a reference photo: give reference_image "
                                        "(--reference-image PATH)")
            plan.ip_adapter = inspect_ip_adapter(req.ip_adapter, info, s)
        if req.reference_image and (task == "img2img" or plan.ip_adapter):
            from ..io import load_image
            plan.reference = load_image(req.reference_image, max_pixels=s.max_pixels).rgb
        return plan

    # 2. load (cached) ------------------------------------------------------------------------------
    def cache_key(self, plan: Plan, rt) -> tuple:
        s = self.settings
        return ("diffusion", str(plan.info.path), plan.info.kind, rt.dtype_name, rt.device,
                str(plan.controlnet.path) if plan.controlnet else None,
                plan.ip_adapter.key if plan.ip_adapter else None,
                s.cpu_offload, s.attention_slicing, s.vae_tiling)

    def load(self, plan: Plan, rt) -> tuple[LoadedPipeline, bool]:
        """The cached pipeline for ``plan`` (loading it once). Returns (pipeline, loaded_now)."""
        loaded_now = []

        def loader() -> LoadedPipeline:
            loaded_now.append(True)
            return self._load(plan, rt)

        holder = model_cache(self.settings).get(self.cache_key(plan, rt), loader)
        return holder, bool(loaded_now)

    def _load(self, plan: Plan, rt) -> LoadedPipeline:
        from ..models.devices import apply_memory_options
        _torch, diffusers = _import_stack()
        info, s = plan.info, self.settings
        t0 = time.perf_counter()
        task = "inpaint" if info.inpaint else "text2img"
        with _quiet():  # importing a pipeline module pulls transformers' image processors (chatty)
            cls = getattr(diffusers, _CLASSES[(info.family, task, plan.controlnet is not None)])
        kw: dict[str, Any] = {"torch_dtype": rt.dtype, "local_files_only": True}
        part = "pipeline"
        try:
            with _quiet():
                if plan.controlnet is not None:
                    part = f"ControlNet {plan.controlnet.path}"
                    cn_kw = {"torch_dtype": rt.dtype, "local_files_only": True}
                    if plan.controlnet.variant:
                        cn_kw["variant"] = plan.controlnet.variant
                    if not s.allow_pickle_weights:
                        cn_kw["use_safetensors"] = True
                    kw["controlnet"] = diffusers.ControlNetModel.from_pretrained(plan.controlnet.path, **cn_kw)
                part = f"model {info.path}"
                if info.format == "diffusers":
                    comps = pipeline_components(info.path)
                    for unused in ("safety_checker", "feature_extractor"):
                        if unused in comps:
                            kw[unused] = None
                    if "safety_checker" in comps:
                        kw["requires_safety_checker"] = False
                    if info.variant:
                        kw["variant"] = info.variant
                    if not s.allow_pickle_weights:
                        kw["use_safetensors"] = True
                    pipe = cls.from_pretrained(info.path, **kw)
                else:
                    pipe = cls.from_single_file(str(info.path), config=str(info.config_dir), **kw)
                if plan.ip_adapter is not None:
                    part = f"IP-Adapter {plan.ip_adapter.root / plan.ip_adapter.subfolder / plan.ip_adapter.weight_name}"
                    ip = plan.ip_adapter
                    pipe.load_ip_adapter(str(ip.root), subfolder=ip.subfolder, weight_name=ip.weight_name,
                                         image_encoder_folder=ip.image_encoder_folder, local_files_only=True)
                    pipe.set_ip_adapter_scale(IP_ADAPTER_SCALE)
        except (ModelError, DependencyMissingError):
            raise
        except Exception as e:
            msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
            raise ModelError(f"cannot load {part} ({info.describe()}): {type(e).__name__}: {msg}") from None
        unet = getattr(pipe, "unet", None)
        if unet is not None and int(unet.config.in_channels) != info.in_channels:
            raise ModelError(f"model {info.name!r} loaded a UNet with in_channels={unet.config.in_channels}, "
                             f"expected {info.in_channels}")
        notes = apply_memory_options(pipe, rt, s)
        pipe.set_progress_bar_config(disable=True)
        return LoadedPipeline(pipe, time.perf_counter() - t0, notes)

    # 3-7. render ----------------------------------------------------------------------------------
    def render(self, job: SceneJob, progress: ProgressFn = no_progress) -> list[Scene]:
        placement = job.layer.placement
        if placement.background_rgb is not None:
            return self._plain(job)
        t_start = time.perf_counter()
        plan = self.plan(job)
        req = job.request
        torch, diffusers = _import_stack()
        from ..models.devices import runtime
        rt = runtime(self.settings)
        with _quiet():
            scheduler_cls = self._scheduler_class(req.scheduler, diffusers) if req.scheduler else None
        progress("background", 0.0, f"loading {plan.info.name}")
        holder, loaded_now = self.load(plan, rt)
        notes = plan.notes + holder.notes
        g = plan.geometry
        with holder.lock, _quiet():
            pipe = holder.view(_CLASSES[(plan.info.family, plan.task, plan.controlnet is not None)])
            if scheduler_cls is not None:
                pipe.scheduler = scheduler_cls.from_config(holder.scheduler_config)
            else:
                pipe.scheduler = holder.scheduler_class.from_config(holder.scheduler_config)
            sampler = type(pipe.scheduler).__name__
            notes += self._prompt_notes(pipe, req)

            inputs = self._inputs(plan, job)
            ring = max(4, round(SEAM_RING * min(g.work))) if req.seam_pass else 0
            chunk = self._chunk(len(job.seeds), g, rt)
            calls = math.ceil(len(job.seeds) / chunk) * (2 if req.seam_pass else 1)
            counter = {"call": 0}

            def callback(p, i, t, kw):
                n = max(1, int(getattr(p, "num_timesteps", 0) or req.steps))
                frac = (counter["call"] + (i + 1) / n) / calls
                progress("background", min(1.0, frac), f"step {i + 1}/{n}")
                return kw

            t_gen = time.perf_counter()
            outs = self._batched(pipe, torch, plan, req, inputs, job.seeds, chunk, callback, counter, rt)
            t_gen = time.perf_counter() - t_gen
            firsts = list(outs)
            t_seam = 0.0
            if req.seam_pass:
                t_seam = time.perf_counter()
                outs = self._seam(holder, torch, plan, req, inputs, outs, job.seeds, ring, chunk, callback,
                                  counter, rt, scheduler_cls)
                t_seam = time.perf_counter() - t_seam

        params: dict[str, Any] = {"Steps": req.steps, "Sampler": sampler, "CFG scale": req.guidance}
        if plan.task != "text2img":
            params["Denoising strength"] = req.strength
        params.update({"Model": plan.info.name, "Mode": plan.mode, "Device": f"{rt.device} {rt.dtype_name}"})
        if g.resized or g.padded != g.work:
            params["Working size"] = f"{g.padded[0]}x{g.padded[1]}"
        if plan.controlnet:
            params["ControlNet"] = f"{plan.controlnet.name} ({req.control_image})"
        if plan.ip_adapter:
            params["IP-Adapter"] = f"{plan.ip_adapter.name} (scale {IP_ADAPTER_SCALE})"
        if req.seam_pass:
            params["Seam pass"] = f"strength {SEAM_STRENGTH}, ring {ring} px"
        n = len(job.seeds)
        timings = {"model_load": holder.load_seconds if loaded_now else 0.0, "denoise": t_gen / n,
                   "seam_pass": t_seam / n, "engine_total": (time.perf_counter() - t_start) / n}
        scenes = []
        for seed, first, final in zip(job.seeds, firsts, outs):
            rgb = g.to_canvas(final)
            if plan.task == "inpaint":
                raw = g.to_canvas(first)          # the model's own pixels under the product (pass 1)
            elif req.seam_pass:
                raw = rgb.copy()                  # the seam pass saw (and re-rendered) the product
            else:
                raw = None                        # background only: the model never saw the product
            scenes.append(Scene(rgb=rgb, seed=seed, engine=self.name, floor_y=placement.floor_y,
                                needs_shadow=plan.task != "inpaint", generated=True, raw_product=raw,
                                notes=tuple(dict.fromkeys(notes)), params=dict(params), timings=dict(timings)))
        progress("background", 1.0, f"{n} candidate{'s' if n > 1 else ''} from {plan.info.name}")
        return scenes

    # -- helpers -----------------------------------------------------------------------------------
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
        cls = getattr(diffusers, match)
        if type(cls).__name__ == "DummyObject":
            raise DependencyMissingError(f"scheduler {match} (it needs the torchsde package)", "ai")
        return cls

    @staticmethod
    def _prompt_notes(pipe: Any, req) -> list[str]:
        """CLIP reads 77 tokens: say what a long prompt loses instead of dropping it silently."""
        tok = getattr(pipe, "tokenizer", None)
        out = []
        if tok is None:
            return out
        limit = int(getattr(tok, "model_max_length", 77) or 77)
        for label, text in (("prompt", req.prompt), ("negative prompt", req.negative_prompt)):
            if not text:
                continue
            ids = tok(text, truncation=False).input_ids
            if len(ids) > limit:
                kept = tok.decode(ids[1:limit - 1]).strip()
                dropped = text[len(kept):].strip() if text.lower().startswith(kept.lower()[:20]) else ""
                out.append(f"{label} is {len(ids)} tokens; the model reads the first {limit}"
                           + (f": ignored '{dropped[:60]}'" if dropped else ""))
        return out

    def _inputs(self, plan: Plan, job: SceneJob) -> dict[str, Any]:
        """PIL images at the padded working size for this plan."""
        from PIL import Image
        g, layer, req = plan.geometry, job.layer, job.request
        out: dict[str, Any] = {}
        alpha_w = g.to_work(layer.alpha.astype(np.float32), pad_value=0.0)
        out["alpha"] = alpha_w
        out["layer_rgb"] = g.to_work(layer.rgb)
        if plan.task == "inpaint" or req.seam_pass:
            if plan.mode == "inpaint":
                init = job.photo.rgb
            else:
                fill = self._fill_colour(job)
                a = layer.alpha[..., None]
                init = np.clip(layer.rgb * a + np.asarray(fill, np.float32) * (1 - a), 0, 255).astype(np.uint8)
            out["init"] = Image.fromarray(g.to_work(init))
            keep = g.to_work((layer.alpha >= KEEP_ALPHA).astype(np.float32), pad_value=0.0) >= 0.5
            out["mask"] = Image.fromarray(np.where(keep, 0, 255).astype(np.uint8), "L")
        if plan.task == "img2img":
            pw, ph = g.padded
            out["reference"] = Image.fromarray(cover_crop(plan.reference, (pw, ph)))
        if plan.controlnet is not None:
            ctrl = canny_control(layer) if req.control_image == "canny" else depth_control(layer)
            out["control"] = Image.fromarray(g.to_work(ctrl, pad_value=0 if req.control_image == "canny" else None))
        if plan.ip_adapter is not None:
            out["ip_image"] = Image.fromarray(plan.reference)
        return out

    @staticmethod
    def _fill_colour(job: SceneJob) -> tuple[float, float, float]:
        """Neutral fill for a new canvas: the median of the photo's border (its backdrop), else grey."""
        if job.photo is None:
            return (127.0, 127.0, 127.0)
        p = job.photo.rgb
        border = np.concatenate([p[0], p[-1], p[:, 0], p[:, -1]]).reshape(-1, 3)
        return tuple(float(v) for v in np.median(border, axis=0))

    def _chunk(self, n: int, g: Geometry, rt) -> int:
        """Candidates per call: all of them in one batch unless free memory says fewer (GPU memory on
        an accelerator, available RAM on CPU, capped by ``cpu_batch``)."""
        from ..models.devices import free_memory_bytes
        if rt.device == "cpu":
            try:
                import psutil
                free = psutil.virtual_memory().available
            except ImportError:  # pragma: no cover - psutil comes with accelerate (the ai extra)
                return max(1, min(n, self.cpu_batch))
            per = g.padded[0] * g.padded[1] * PX_BYTES_PER_IMAGE * 2
            return max(1, min(n, self.cpu_batch, int(free * 0.5 // per)))
        free = free_memory_bytes(rt.device)
        if free is None:  # mps: no free-memory query; the OOM fallback halves the batch
            return n
        per = g.padded[0] * g.padded[1] * PX_BYTES_PER_IMAGE * (2 if rt.dtype_name == "float32" else 1)
        return max(1, min(n, int(free * 0.7 // per)))

    def _call_kwargs(self, plan: Plan, req, inputs: dict, k: int, task: str, controlnet: bool) -> dict:
        g = plan.geometry
        kw: dict[str, Any] = {"prompt": [req.prompt] * k, "negative_prompt": [req.negative_prompt] * k,
                              "num_inference_steps": req.steps, "guidance_scale": req.guidance, "output_type": "np"}
        if task == "inpaint":
            kw.update(image=[inputs["init"]] * k, mask_image=[inputs["mask"]] * k, strength=req.strength,
                      height=g.padded[1], width=g.padded[0])
            if controlnet:
                kw["control_image"] = [inputs["control"]] * k
        elif task == "text2img":
            kw.update(height=g.padded[1], width=g.padded[0])
            if controlnet:
                kw["image"] = [inputs["control"]] * k
        else:  # img2img: the size is the reference's (already the padded working size)
            kw.update(image=[inputs["reference"]] * k, strength=req.strength)
            if controlnet:
                kw.update(control_image=[inputs["control"]] * k, height=g.padded[1], width=g.padded[0])
        if plan.ip_adapter is not None:
            kw["ip_adapter_image"] = inputs["ip_image"]
        return kw

    def _run_chunks(self, pipe, torch, seeds, chunk, make_kwargs, callback, counter, rt) -> list[np.ndarray]:
        """Run ``seeds`` in batches of ``chunk``; on GPU out-of-memory halve the batch and retry."""
        outs: list[np.ndarray] = []
        i = 0
        while i < len(seeds):
            part = seeds[i:i + chunk]
            gens = [torch.Generator("cpu").manual_seed(int(s)) for s in part]
            try:
                with torch.inference_mode():
                    res = pipe(**make_kwargs(i, len(part)), generator=gens, callback_on_step_end=callback)
            except torch.OutOfMemoryError:
                if chunk > 1:
                    chunk = max(1, chunk // 2)
                    if rt.device.startswith("cuda"):
                        torch.cuda.empty_cache()
                    continue
                raise ModelError(f"out of accelerator memory at {self._size_text(make_kwargs)} even for one image; "
                                 f"enable cpu_offload, attention_slicing or vae_tiling, or use a smaller canvas") from None
            except (ValueError, RuntimeError) as e:  # a size/shape the model cannot take
                msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
                raise ModelError(f"the model cannot run this request: {type(e).__name__}: {msg}") from None
            outs.extend(_to_uint8(np.asarray(x)) for x in res.images)
            counter["call"] += 1
            i += len(part)
        return outs

    @staticmethod
    def _size_text(make_kwargs) -> str:
        kw = make_kwargs(0, 1)
        return f"{kw.get('width', '?')}x{kw.get('height', '?')}"

    def _batched(self, pipe, torch, plan, req, inputs, seeds, chunk, callback, counter, rt):
        cn = plan.controlnet is not None
        return self._run_chunks(pipe, torch, list(seeds), chunk,
                                lambda start, k: self._call_kwargs(plan, req, inputs, k, plan.task, cn),
                                callback, counter, rt)

    def _seam(self, holder, torch, plan, req, inputs, outs, seeds, ring, chunk, callback, counter, rt,
              scheduler_cls):
        """Second pass: re-noise a thin ring around the pasted-back product at low strength, blend it in."""
        from PIL import Image
        pipe = holder.view(_CLASSES[(plan.info.family, "inpaint", False)])
        pipe.scheduler = (scheduler_cls or holder.scheduler_class).from_config(holder.scheduler_config)
        g = plan.geometry
        a = inputs["alpha"][..., None]
        band = ring_mask(inputs["alpha"], ring)
        feather = cv2.GaussianBlur(band, (0, 0), max(1.0, ring / 2.0))[..., None]
        mask = Image.fromarray((band * 255).astype(np.uint8), "L")
        steps = max(req.steps, math.ceil(1.0 / SEAM_STRENGTH))
        pasted = [np.clip(inputs["layer_rgb"] * a + o * (1 - a), 0, 255).astype(np.uint8) for o in outs]
        base_kw = {"num_inference_steps": steps, "guidance_scale": req.guidance, "strength": SEAM_STRENGTH,
                   "height": g.padded[1], "width": g.padded[0], "output_type": "np"}
        if plan.ip_adapter is not None:
            base_kw["ip_adapter_image"] = inputs["ip_image"]

        def make(start: int, k: int) -> dict:
            kw = dict(base_kw)
            kw.update(prompt=[req.prompt] * k, negative_prompt=[req.negative_prompt] * k,
                      image=[Image.fromarray(pasted[j]) for j in range(start, start + k)], mask_image=[mask] * k)
            return kw

        results = self._run_chunks(pipe, torch, list(seeds), chunk, make, callback, counter, rt)
        return [np.clip(o * (1 - feather) + r * feather, 0, 255).round().astype(np.uint8)
                for o, r in zip(outs, results)]
