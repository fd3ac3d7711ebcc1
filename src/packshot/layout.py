"""Layout stage: cutout + request -> Placement (canvas size, uniform scale, offset) -> Layer.

Canvases: the photo's own framing, an aspect ratio, an explicit size, or a marketplace preset.
The product is only ever scaled uniformly: never stretched, never cropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import InvalidInputError, UnknownNameError
from .schema import ASPECTS, GenerateRequest
from .types import Box, Cutout, Layer, Placement, Size


@dataclass(frozen=True)
class Preset:
    name: str
    size: Size
    fill: float                        # product's longer side / canvas's longer side
    anchor: str                        # "center" | "surface"
    background_rgb: tuple[int, int, int] | None
    shadow: bool
    rules: str                         # shown in the README and `packshot presets`


PRESETS: dict[str, Preset] = {
    "amazon": Preset(
        "amazon", (2000, 2000), 0.85, "center", (255, 255, 255), False,
        "Main image: pure white background RGB 255,255,255 (the prompt's scene is not used); "
        "product fills 85% of the longer side; 2000x2000 px (>= 1600 px enables zoom); square; "
        "centred; no added shadow, props or text."),
    "ebay": Preset(
        "ebay", (1600, 1600), 0.80, "center", None, True,
        "1600x1600 px square (eBay recommends >= 1600 px on the longer side, minimum 500); "
        "product fills 80%; any clean background from the prompt; no borders or text."),
    "shopify": Preset(
        "shopify", (2048, 2048), 0.80, "surface", None, True,
        "2048x2048 px square (Shopify's recommended size for zoom); product fills 80%, standing on "
        "the surface; background from the prompt."),
    "etsy": Preset(
        "etsy", (2000, 1500), 0.75, "surface", None, True,
        "2000x1500 px, 4:3 landscape (Etsy's thumbnail crops to 4:3; shortest side >= 1000 px "
        "recommended); product fills 75% of the longer side, standing on the surface."),
}


DEFAULT_FILL = 0.6  # product's longer side / canvas's longer side when neither scale nor preset says


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError("preset", name, list(PRESETS)) from None


def canvas_for(request: GenerateRequest, photo_size: Size, max_side: int = 4096) -> Size:
    """The canvas size the request asks for."""
    if request.keep_framing:
        return photo_size
    if request.preset:
        return get_preset(request.preset).size
    size = request.canvas_size()
    if size is None:
        pw, ph = photo_size
        if request.aspect == "original":
            size = photo_size
        else:
            aw, ah = ASPECTS[request.aspect]
            long_side = int(min(max(pw, ph, 512), 2048))
            if aw >= ah:
                size = (long_side, max(64, round(long_side * ah / aw)))
            else:
                size = (max(64, round(long_side * aw / ah)), long_side)
    if max(size) > max_side:
        raise InvalidInputError(f"canvas {size[0]}x{size[1]} is larger than the limit of {max_side} px per side")
    return size


def plan(cutout: Cutout, request: GenerateRequest, max_side: int = 4096) -> Placement:
    """Decide canvas, scale and offset for the product."""
    box = cutout.bbox
    if request.keep_framing:
        return Placement(canvas_size=cutout.photo.size, src_box=box, scale=1.0,
                         offset=(box[0], box[1]), keep_framing=True, anchor="keep",
                         floor_y=box[3])
    preset = get_preset(request.preset) if request.preset else None
    W, H = canvas_for(request, cutout.photo.size, max_side)
    bw, bh = box[2] - box[0], box[3] - box[1]
    anchor = preset.anchor if preset else request.placement
    explicit = request.scale is not None or preset is not None
    fill = request.scale if request.scale is not None else (preset.fill if preset else DEFAULT_FILL)
    m = request.margin
    # the longer side of the product is `fill` of the canvas's longer side (the marketplace rule)
    scale = fill * max(W, H) / max(bw, bh)
    if explicit:
        scale = min(scale, W / bw, H / bh)  # an asked-for fill is kept; only never crop
    else:
        scale = min(scale, W * (1 - 2 * m) / bw, H * (1 - 2 * m) / bh)  # default: also keep the margin
    nw, nh = max(1, round(bw * scale)), max(1, round(bh * scale))
    x = (W - nw) // 2
    if anchor == "surface":
        bottom = H - max(round(m * H), (H - nh) // 4)
        y = max(0, min(H - nh, bottom - nh))
    else:
        y = (H - nh) // 2
    return Placement(canvas_size=(W, H), src_box=box, scale=scale, offset=(x, y),
                     preset=preset.name if preset else None, anchor=anchor,
                     background_rgb=preset.background_rgb if preset else None, floor_y=y + nh)


def place(cutout: Cutout, placement: Placement) -> Layer:
    """Render the product onto a transparent canvas: colour + alpha, uniform scale only.

    Resampling uses premultiplied colour so that no dark or backdrop-coloured fringe appears.
    With keep-framing (scale 1) the photo's pixels are copied as they are: bit-exact.
    """
    W, H = placement.canvas_size
    if placement.keep_framing:
        return Layer(rgb=cutout.foreground.copy(), alpha=cutout.alpha.astype(np.float32, copy=True),
                     placement=placement)
    x0, y0, x1, y1 = placement.src_box
    fg = cutout.foreground[y0:y1, x0:x1].astype(np.float32)
    a = cutout.alpha[y0:y1, x0:x1].astype(np.float32)
    px0, py0, px1, py1 = placement.product_box
    nw, nh = px1 - px0, py1 - py0
    interp = cv2.INTER_AREA if placement.scale < 1 else cv2.INTER_CUBIC
    pre = cv2.resize(fg * a[..., None], (nw, nh), interpolation=interp)
    a2 = np.clip(cv2.resize(a, (nw, nh), interpolation=interp), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        col = np.where(a2[..., None] > 1e-4, pre / np.maximum(a2[..., None], 1e-4), 0.0)
    rgb = np.zeros((H, W, 3), np.uint8)
    alpha = np.zeros((H, W), np.float32)
    rgb[py0:py1, px0:px1] = np.clip(np.round(col), 0, 255).astype(np.uint8)
    alpha[py0:py1, px0:px1] = a2
    return Layer(rgb=rgb, alpha=alpha, placement=placement)


def box_of(alpha: np.ndarray, threshold: float = 0.5) -> Box | None:
    ys, xs = np.nonzero(alpha >= threshold)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
