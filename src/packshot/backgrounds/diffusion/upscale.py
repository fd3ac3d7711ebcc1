"""Bringing the generated background up to the output size (``request.upscaler``).

The UNet runs at its native area (:mod:`.resolution`); a larger canvas needs the background
enlarged. In order of preference:

* an **upscaler model**: a super-resolution ONNX network (Real-ESRGAN class: one ``N x 3 x H x W``
  RGB input in [0, 1], an ``N x 3 x sH x sW`` output) by registry id (``packshot models list``,
  kind ``upscaler``) or ``.onnx`` path, run with onnxruntime in overlapping tiles (a 2048 px output
  never needs the whole image in the network at once), then resized to the exact canvas (area);
* ``hires``: Lanczos to the output size, then a low-strength second diffusion pass at that size
  (img2img; on an inpainting model the product is kept out of the mask), ``HIRES_STRENGTH``;
* ``lanczos`` (the default): Lanczos, said in a note.

The product itself is always pasted at full resolution by the compositor. Everything used is
recorded in the parameters ("Upscaler", "Hires pass"). The model is checked up front (file,
loadable graph, RGB in/out, integer scale) by :func:`check_upscaler`, which the engine's
``check()`` runs: a missing, corrupt or wrong-kind model is one line before any work.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...config import Settings
from ...errors import InvalidInputError, MissingWeightsError, ModelError

BUILTIN = ("lanczos", "hires")
HIRES_STRENGTH = 0.3      # low enough to keep the layout and colours, high enough to add real detail
TILE = 256                # tile side (input px) for a model that takes any size
OVERLAP = 16              # input px shared by neighbouring tiles, blended linearly (no seams)
MAX_PASSES = 2            # x4 twice = x16; beyond that the rest is Lanczos (a note says so)


@dataclass(frozen=True)
class Upscaler:
    kind: str                 # "onnx" | "hires" | "lanczos"
    name: str
    path: Path | None = None
    scale: int = 1
    tile: int = TILE
    fixed: bool = False       # the graph takes exactly tile x tile

    def describe(self) -> str:
        if self.kind == "onnx":
            return f"{self.name} (x{self.scale} ONNX)"
        return "Lanczos + a hires pass" if self.kind == "hires" else "Lanczos"


# -- finding and checking the model (no torch) ------------------------------------------------------
def _model_file(ref: str, settings: Settings) -> Path:
    from ...models import MODELS, resolve
    from ...models.download import single_file

    path = Path(ref).expanduser()
    if path.suffix.lower() == ".onnx" or path.is_file():
        if not path.is_file():
            raise MissingWeightsError(f"upscaler {ref!r}: no such file")
        return path
    spec = MODELS.get(ref)
    if spec is None:
        raise InvalidInputError(f"upscaler {ref!r} is not {', '.join(BUILTIN)}, an .onnx file or an upscaler "
                                f"model id (see 'packshot models list')")
    if spec.kind != "upscaler":
        raise ModelError(f"model {ref!r} is a {spec.kind} model, not an upscaler (e.g. realesrgan-x4)")
    try:
        folder = resolve(ref, settings, kinds=("upscaler",))
    except MissingWeightsError:
        raise MissingWeightsError(f"upscaler {ref!r} is not present in {settings.model_dir}; fetch it with: "
                                  f"packshot models pull {ref}") from None
    file = single_file(spec, folder)
    if not file.is_file():
        raise MissingWeightsError(f"upscaler {ref!r}: {file} is missing; fetch it with: packshot models pull {ref}")
    return file


def _session(path: Path, expected_bytes: int | None = None):
    # the cut-out models' session cache: one onnxruntime session per file per process
    from ...segment.onnx_model import _session as cached_session
    return cached_session(path, expected_bytes)


def _dim(v) -> int | None:
    return v if isinstance(v, int) and v > 0 else None


def check_upscaler(ref: str | None, settings: Settings) -> Upscaler | None:
    """``request.upscaler`` -> Upscaler (None when not given). Loads an ONNX model's graph once
    (cached) and checks that it is an RGB super-resolution network with an integer scale."""
    if not ref or not ref.strip():
        return None
    low = ref.strip().lower()
    if low in BUILTIN:
        return Upscaler(low, low)
    from ...models import MODELS
    path = _model_file(ref.strip(), settings)
    spec = MODELS.get(ref.strip())
    sess = _session(path, spec.extra.get("bytes") if spec else None)
    ins, outs = sess.get_inputs(), sess.get_outputs()
    shape = list(ins[0].shape) if len(ins) == 1 else []
    oshape = list(outs[0].shape) if outs else []
    if len(shape) != 4 or shape[1] not in (3, "3") or len(oshape) != 4 or oshape[1] not in (3, "3"):
        raise ModelError(f"{path} is not an upscaler: it takes {[(i.name, i.shape) for i in ins]} and gives "
                         f"{oshape}; an upscaler takes one N x 3 x H x W image and gives N x 3 x sH x sW")
    side = _dim(shape[2]) if _dim(shape[2]) == _dim(shape[3]) else None
    probe = side or 16
    try:
        y = sess.run(None, {ins[0].name: np.zeros((1, 3, probe, probe), np.float32)})[0]
    except Exception as e:
        raise ModelError(f"{path} cannot run as an upscaler ({type(e).__name__}: {str(e)[:120]})") from None
    scale = y.shape[-1] / probe
    if y.ndim != 4 or y.shape[1] != 3 or y.shape[-2] != y.shape[-1] or scale != int(scale) or not 2 <= scale <= 8:
        raise ModelError(f"{path} is not an upscaler: a {probe} px input gave {tuple(y.shape)} "
                         f"(expected 1 x 3 x {2 * probe}..{8 * probe} px)")
    name = ref.strip() if spec else path.name
    return Upscaler("onnx", name, path=path, scale=int(scale), tile=side or TILE, fixed=side is not None)


# -- running the model in tiles ---------------------------------------------------------------------
def _ramp(n: int, fade: int, skip: int) -> np.ndarray:
    """1-D blend weights: about 0 for the ``skip`` px at both ends (what a network sees of a tile's
    zero padding), then rising over ``fade`` px; never 0 (an image border is one tile's edge)."""
    i = np.arange(n, dtype=np.float32)
    return np.clip((np.minimum(i + 1, n - i) - skip) / max(1, fade), 1e-4, 1.0)


def _starts(n: int, tile: int, overlap: int) -> list[int]:
    if n <= tile:
        return [0]
    step = tile - 2 * overlap
    out = list(range(0, n - tile, step))
    return out + [n - tile]


def run_tiled(up: Upscaler, rgb: np.ndarray) -> np.ndarray:
    """One pass of the model over HxWx3 uint8 ``rgb`` -> (sH)x(sW)x3 uint8, tile by tile.

    Tiles overlap by ``OVERLAP`` px each side and are blended with linear ramps, so the output has
    no tile seams; an image smaller than a fixed-size tile is padded (reflect) and cropped back."""
    sess = _session(up.path)
    name = sess.get_inputs()[0].name
    s, T = up.scale, up.tile
    h, w = rgb.shape[:2]
    ph, pw = (max(h, T), max(w, T)) if up.fixed else (h, w)
    img = cv2.copyMakeBorder(rgb, 0, ph - h, 0, pw - w, cv2.BORDER_REFLECT_101) if (ph, pw) != (h, w) else rgb
    x = img.astype(np.float32) / 255.0
    acc = np.zeros((ph * s, pw * s, 3), np.float32)
    wsum = np.zeros((ph * s, pw * s, 1), np.float32)
    ov = min(OVERLAP, T // 4)
    for y0 in _starts(ph, T, ov):
        for x0 in _starts(pw, T, ov):
            tile = x[y0:y0 + T, x0:x0 + T]
            blob = np.ascontiguousarray(tile.transpose(2, 0, 1)[None])
            try:
                out = sess.run(None, {name: blob})[0][0]
            except Exception as e:
                raise ModelError(f"upscaler {up.name}: inference failed ({type(e).__name__}: {str(e)[:120]})") \
                    from None
            th, tw = tile.shape[0] * s, tile.shape[1] * s
            wgt = np.outer(_ramp(th, ov * s, ov * s // 4), _ramp(tw, ov * s, ov * s // 4))[..., None]
            acc[y0 * s:y0 * s + th, x0 * s:x0 * s + tw] += out.transpose(1, 2, 0)[:th, :tw] * wgt
            wsum[y0 * s:y0 * s + th, x0 * s:x0 * s + tw] += wgt
    out = acc / wsum
    return (np.clip(out[:h * s, :w * s], 0.0, 1.0) * 255.0).round().astype(np.uint8)


def model_upscale(up: Upscaler, rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, int]:
    """``rgb`` -> exactly ``size`` (w, h): the model as many passes as needed (at most MAX_PASSES),
    then an area resize down to the size (Lanczos up if the passes were not enough). Returns
    (image, passes)."""
    need = max(size[0] / rgb.shape[1], size[1] / rgb.shape[0])
    passes = min(MAX_PASSES, max(1, math.ceil(math.log(need) / math.log(up.scale) - 1e-9)))
    out = rgb
    for _ in range(passes):
        out = run_tiled(up, out)
    shrink = out.shape[1] >= size[0] and out.shape[0] >= size[1]
    out = cv2.resize(out, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8)), passes


# -- the engine's step --------------------------------------------------------------------------------
def hires_size(canvas: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """The hires pass's working size: the canvas, padded up to the VAE/UNet's multiple."""
    return tuple(multiple * math.ceil(v / multiple) for v in canvas)  # type: ignore[return-value]


def _hires_pass(holder, run, job, images: list[np.ndarray]) -> tuple[list[np.ndarray], str]:
    """img2img of the Lanczos-upscaled backgrounds at the output size, strength ``HIRES_STRENGTH``.
    On an inpainting model the product is pasted in and masked out (it is pasted back exactly
    anyway); a text-to-image background is refined alone (the product is placed later)."""
    from PIL import Image
    from .loading import CLASSES
    from .run import chunk_size, run_chunks
    from .seams import repaint_mask

    plan = run.plan
    W, H = plan.geometry.canvas
    pw, ph = hires_size((W, H), 8 * max(1, plan.info.vae_scale // 8))

    def pad(a):
        return cv2.copyMakeBorder(a, 0, ph - H, 0, pw - W, cv2.BORDER_REPLICATE) if (pw, ph) != (W, H) else a

    inpaint = plan.task == "inpaint"
    steps = max(run.steps, math.ceil(1.0 / HIRES_STRENGTH))
    if inpaint:
        a = pad(np.clip(job.layer.alpha.astype(np.float32), 0.0, 1.0))
        mask = Image.fromarray(repaint_mask(a, plan.info.vae_scale), "L")
        lr = pad(job.layer.rgb).astype(np.float32)
        inits = [np.clip(lr * a[..., None] + pad(im) * (1 - a[..., None]), 0, 255).astype(np.uint8) for im in images]
    else:
        inits = [pad(im) for im in images]
    pipe = holder.view(CLASSES[(plan.info.family, "inpaint" if inpaint else "img2img", False)])
    pipe.scheduler = (run.scheduler_cls or holder.scheduler_class).from_config(holder.scheduler_config)

    def make(start: int, k: int) -> dict[str, Any]:
        kw = run.base_kwargs(k)
        kw.update(num_inference_steps=steps, strength=HIRES_STRENGTH,
                  image=[Image.fromarray(inits[j]) for j in range(start, start + k)])
        if inpaint:
            kw.update(mask_image=[mask] * k, height=ph, width=pw)
        if plan.ip_adapter is not None:
            kw["ip_adapter_image"] = run.inputs["ip_image"]
        return kw

    # the output size needs more memory per candidate than the working size: fewer per call
    hires_run = replace(run, chunk=chunk_size(len(run.seeds), (pw, ph), run.rt, run.chunk))
    outs = run_chunks(pipe, hires_run, make)
    return [np.ascontiguousarray(o[:H, :W]) for o in outs], f"{pw}x{ph}, strength {HIRES_STRENGTH}, {steps} steps"


def to_canvas(holder, run, job, images: list[np.ndarray]) -> tuple[list[np.ndarray], dict[str, str]]:
    """The working-size images brought to the canvas, and the parameters that say how."""
    g, up = run.plan.geometry, run.plan.upscaler
    if not g.upscaled or up is None or up.kind == "lanczos":
        return [g.to_canvas(im) for im in images], ({"Upscaler": "Lanczos"} if g.upscaled else {})
    if up.kind == "hires":
        outs, how = _hires_pass(holder, run, job, [g.to_canvas(im) for im in images])
        return outs, {"Upscaler": "Lanczos + hires pass", "Hires pass": how}
    w, h = g.work
    res = [model_upscale(up, np.ascontiguousarray(im[:h, :w]), g.canvas) for im in images]
    passes = res[0][1]
    tiles = f"{up.tile} px tiles" + ("" if up.fixed else f", overlap {min(OVERLAP, up.tile // 4)} px")
    return [r[0] for r in res], {"Upscaler": f"{up.name} (x{up.scale} ONNX, {passes} pass{'es' if passes > 1 else ''}, "
                                             f"{tiles})"}
