"""Layout stage: cutout + request -> Placement (canvas size, uniform scale, offset) -> Layer.

Canvases: the photo's own framing, an aspect ratio, an explicit size, or a marketplace preset.
The product is only ever scaled uniformly: never stretched, never cropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import InvalidInputError, UnknownNameError
from .schema import ASPECTS, GenerateRequest, parse_position
from .types import Cutout, Layer, Placement, Size


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


UPSCALE_WARN = 1.5  # enlarging the product more than this is said in a note (soft at 100 %)


def _background_size(request: GenerateRequest, max_pixels: int | None = None) -> Size | None:
    if not getattr(request, "background", None):
        return None
    from .backgrounds.photo import load_background
    return load_background(request.background, max_pixels).size


def canvas_for(request: GenerateRequest, photo_size: Size, max_side: int = 4096) -> Size:
    """The canvas size the request asks for (a background photo's own size when one is given
    and no preset, size or aspect says otherwise, reduced to ``max_side``)."""
    if request.keep_framing:
        return photo_size
    if request.preset:
        return get_preset(request.preset).size
    size = request.canvas_size()
    if size is None:
        bg = _background_size(request)
        if bg is not None and request.aspect == "original":
            k = min(1.0, max_side / max(bg))
            return max(64, round(bg[0] * k)), max(64, round(bg[1] * k))
        pw, ph = bg or photo_size
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


def resolve_view(request: GenerateRequest, cutout: Cutout, edges: tuple[str, ...]) -> tuple[str, float, str | None]:
    """(view, base ellipse ratio, note): the asked-for view, or the one estimated from the photo."""
    from .backgrounds.view import estimate_view
    view, why, ratio = estimate_view(cutout.alpha, edges)
    asked = getattr(request, "view", "auto")
    if asked == "auto":
        return view, ratio, f"view auto: {view} ({why})"
    return asked, ratio if asked != "front" else min(ratio, 0.1), None


def _scale_for(request: GenerateRequest, preset: Preset | None, size: Size, bw: int, bh: int,
               notes: list[str]) -> float:
    """Uniform scale: the fill rule, never cropping, capped by ``max_upscale`` (with notes)."""
    W, H = size
    explicit = request.scale is not None or preset is not None
    fill = request.scale if request.scale is not None else (preset.fill if preset else DEFAULT_FILL)
    m = request.margin
    # the longer side of the product is `fill` of the canvas's longer side (the marketplace rule)
    scale = fill * max(W, H) / max(bw, bh)
    if explicit:
        scale = min(scale, W / bw, H / bh)  # an asked-for fill is kept; only never crop
    else:
        scale = min(scale, W * (1 - 2 * m) / bw, H * (1 - 2 * m) / bh)  # default: also keep the margin
    cap = getattr(request, "max_upscale", None)
    if cap is not None and scale > cap:
        want = scale
        scale = float(cap)
        what = f"preset {preset.name}'s {preset.fill:.0%} fill" if preset else "the asked-for size"
        notes.append(f"max upscale {cap:g}: the product is enlarged {scale:.2f}x instead of {want:.2f}x, "
                     f"smaller than {what}")
    if scale > UPSCALE_WARN:
        need = f"a photo with the product at least {round(max(bw, bh) * scale / UPSCALE_WARN)} px long"
        if preset:
            notes.append(f"upscaled {scale:.1f}x: preset {preset.name} wants the product "
                         f"{round(max(bw, bh) * scale)} px long but the photo has {max(bw, bh)} px; it will "
                         f"look soft at 100 % (use {need}, or --max-upscale)")
        else:
            notes.append(f"upscaled {scale:.1f}x: the product is enlarged from {max(bw, bh)} px to "
                         f"{round(max(bw, bh) * scale)} px and will look soft at 100 % (use {need}, "
                         f"or --max-upscale)")
    return scale


PODIUM_ROOM = 0.26  # a podium under the product needs this much of the canvas below its base


def _offset(anchor: str, size: Size, nw: int, nh: int, m: float, edges: tuple[str, ...],
            position: tuple[float, float] | None, podium: bool = False) -> tuple[int, int]:
    W, H = size
    x = (W - nw) // 2
    if anchor == "surface":
        room = round(PODIUM_ROOM * H) if podium else (H - nh) // 4
        bottom = H - max(round(m * H), room)
        y = max(0, min(H - nh, bottom - nh))
    else:
        y = (H - nh) // 2
    if position is not None:  # the base's centre, fractions of the canvas; never cropped
        x = int(min(max(0, round(position[0] * W - nw / 2)), W - nw))
        y = int(min(max(0, round(position[1] * H - nh)), H - nh))
    # a side cut by the photo's frame stays on the canvas's border (a torso runs off the bottom)
    if "bottom" in edges:
        y = H - nh
    elif "top" in edges:
        y = 0
    if "left" in edges and "right" not in edges:
        x = 0
    elif "right" in edges and "left" not in edges:
        x = W - nw
    return x, y


def _wants_podium(request: GenerateRequest, view: str) -> bool:
    """Whether the studio engine will draw a podium under the product (it needs room below)."""
    if view == "top" or getattr(request, "background", None) or request.engine != "studio":
        return False
    from .prompts import parse_prompt
    return parse_prompt(request.prompt).podium is not None


def plan(cutout: Cutout, request: GenerateRequest, max_side: int = 4096) -> Placement:
    """Decide canvas, scale and offset for the product (and the camera view, the frame edges
    that cut it, and the notes the user should read: upscaling, edges, the view chosen)."""
    from .backgrounds.view import frame_edges
    box = cutout.bbox
    edges = frame_edges(cutout.alpha)
    notes: list[str] = []
    view, ratio, why = resolve_view(request, cutout, edges)
    if request.keep_framing:
        return Placement(canvas_size=cutout.photo.size, src_box=box, scale=1.0,
                         offset=(box[0], box[1]), keep_framing=True, anchor="keep",
                         floor_y=box[3], view=view, base_ratio=ratio, edges=edges,
                         notes=tuple(n for n in (why,) if n))
    preset = get_preset(request.preset) if request.preset else None
    W, H = canvas_for(request, cutout.photo.size, max_side)
    bw, bh = box[2] - box[0], box[3] - box[1]
    anchor = preset.anchor if preset else request.placement
    if view == "top":
        anchor = "center"  # a flat lay: seen from above, the product lies on the surface
    if edges and preset is not None and preset.anchor == "center":
        notes.append(f"the product is cut by the photo's {' and '.join(edges)} edge: preset {preset.name} "
                     f"forbids cropping (the whole product, centred): this photo cannot meet that rule; it is "
                     f"centred as the preset asks; use a photo that shows all of the product")
        edges_used: tuple[str, ...] = ()
    else:
        edges_used = edges
        if edges:
            anchor = "edge"
            notes.append(f"the product is cut by the photo's {' and '.join(edges)} edge: it stays on the "
                         f"canvas's {' and '.join(edges)} edge (no surface or podium under it)")
    scale = _scale_for(request, preset, (W, H), bw, bh, notes)
    nw, nh = max(1, round(bw * scale)), max(1, round(bh * scale))
    position = parse_position(request.position) if getattr(request, "position", None) else None
    x, y = _offset(anchor, (W, H), nw, nh, request.margin, edges_used, position, _wants_podium(request, view))
    if why:
        notes.insert(0, why)
    return Placement(canvas_size=(W, H), src_box=box, scale=scale, offset=(x, y),
                     preset=preset.name if preset else None, anchor=anchor,
                     background_rgb=preset.background_rgb if preset else None,
                     floor_y=None if view == "top" or "bottom" in edges_used else y + nh,
                     view=view, base_ratio=ratio, edges=edges_used, notes=tuple(notes))


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
