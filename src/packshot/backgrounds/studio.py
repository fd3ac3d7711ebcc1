"""Studio engine: procedural studio and tabletop scenes from the prompt's words. No weights.

What it renders (see docs/vocabulary.md for every word):

* a **seamless sweep** (paper/cyclorama/gradient/pure colour) or a **tabletop**: a surface in
  perspective (marble, wood, concrete, linen, terrazzo, tiles, glass, mirror, ...) meeting a wall
  at a contact line placed above the product's base, so the product stands *on* the surface;
* an optional **podium** (cylinder or block) under the product, an **arch** in the wall;
* **light**: direction (where the light comes from; ``Scene.light_dir`` is where it travels),
  falloff and a pool of light around the product, window light, spotlight, backlight glow,
  shadow patterns (leaves, blinds, window, dapple), bokeh, haze, water caustics;
* **grading** from mood and time of day (warmth, brightness, contrast, saturation, vignette) and
  a little grain.

Determinism: each scene draws from ``numpy.random.default_rng([seed, crc32(prompt)])``: the same
seed and prompt give byte-identical pixels; seeds differ in palette colour, texture phase, light
angle, horizon, podium size and pattern layout.

Speed: everything is computed in float32 at a working resolution (half the canvas's longer side,
640..1024 px, :func:`work_side_for`; smooth fields at 1/4 of that), with noise
from small random grids enlarged by ``cv2.resize``; the result is enlarged to the canvas with
``cv2.resize``. Backdrops in product photos are out of focus, so this costs no visible detail.
"""
from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from ..prompts import ParsedPrompt, parse_prompt
from ..prompts.vocabulary import PALETTES, VOCABULARY, colour_rgb
from ..types import Box, ProgressFn, Scene, Size, no_progress
from . import SceneJob
from . import textures as T

F32 = np.float32
WORK_SIDE = (640, 1024)  # internal render's longer side: half the canvas's, within these bounds


def work_side_for(size: Size, bounds: tuple[int, int] = WORK_SIDE) -> int:
    """Longer side of the internal render for a canvas: half the canvas's, clamped to ``bounds``."""
    long_side = max(size)
    return int(min(long_side, max(bounds[0], min(bounds[1], long_side // 2))))
_LUMA = np.array([0.299, 0.587, 0.114], F32)
_METALS = ("gold", "brass", "copper", "bronze", "rose gold")
_DARK_BACKDROPS = ("charcoal", "black", "navy", "chocolate", "plum", "forest green", "dark taupe")
_DIR_NAMES = {(-1, 0): "right", (1, 0): "left", (0, 1): "above", (0, -1): "front",
              (1, 1): "top left", (-1, 1): "top right", (1, -1): "front left", (-1, -1): "front right"}


@lru_cache(maxsize=512)
def _rgb(name: str) -> tuple[float, float, float]:
    r, g, b = colour_rgb(name)
    return r / 255.0, g / 255.0, b / 255.0


def rgb_of(name: str) -> np.ndarray:
    """Colour name (vocabulary, with tone words) -> float32 (3,) sRGB in [0, 1]."""
    return np.array(_rgb(name), F32)


def _material(word: str | None) -> dict[str, Any] | None:
    return VOCABULARY["surface"]["words"].get(word) if word else None


def _shade(c: np.ndarray, t: float) -> np.ndarray:
    """t > 0 mixes toward white, t < 0 toward black."""
    c = np.asarray(c, F32)
    return np.clip(c + (F32(1) - c) * F32(t) if t >= 0 else c * F32(1 + t), 0, 1).astype(F32)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - F32(e0)) / F32(max(e1 - e0, 1e-6)), 0, 1)
    return t * t * (F32(3) - F32(2) * t)


@dataclass
class Look:
    """Everything one scene needs, resolved from the prompt and the seed (work-resolution pixels)."""

    w: int
    h: int
    layout: str
    box: tuple[float, float, float, float]
    base_y: float
    horizon: float | None
    wall_top: np.ndarray
    wall_bottom: np.ndarray
    wall_kind: str
    floor_kind: str
    floor_rgb: np.ndarray
    floor_extra: dict[str, Any]
    gloss: float
    light: tuple[float, float]
    light_name: str
    hardness: float
    shadow: float
    warmth: float
    brightness: float
    contrast: float
    saturation: float
    vignette: float
    texture: float
    pure: bool
    pure_rgb: np.ndarray | None
    podium: str | None
    podium_rgb: np.ndarray | None
    podium_kind: str
    arch_rgb: np.ndarray | None
    gobo: str | None
    bokeh: bool
    haze: float
    caustics: bool
    glow: float
    spot: float
    window: bool
    blur: bool
    persp: tuple[float, float, bool] = (2.0, 0.5, True)   # (r, e, planks along x)
    labels: dict[str, str] = field(default_factory=dict)


class StudioEngine:
    """Background engine ``studio``: one procedural scene per seed, the canvas's size.

    ``work_side`` fixes the internal render size (longer side, pixels; default: half the canvas's,
    640..1024); the scene is enlarged to the canvas afterwards.
    """

    name = "studio"

    def __init__(self, settings=None, work_side: int | None = None):
        self.settings = settings
        self.work_side = None if work_side is None else int(work_side)

    def render(self, job: SceneJob, progress: ProgressFn = no_progress) -> list[Scene]:
        W, H = job.layer.size
        placement = job.layer.placement
        req = job.request
        prompt = str((req.get("prompt") if isinstance(req, dict) else getattr(req, "prompt", "")) or "")
        parsed = parse_prompt(prompt)
        out = []
        for i, seed in enumerate(job.seeds):
            if placement.background_rgb is not None:
                out.append(flat_scene((W, H), placement.background_rgb, seed, self.name))
            else:
                out.append(render_scene(parsed, (W, H), seed, product_box=placement.product_box,
                                        floor_y=placement.floor_y, work_side=self.work_side,
                                        engine=self.name))
            progress("background", (i + 1) / max(1, len(job.seeds)), f"scene {i + 1}/{len(job.seeds)}")
        return out


def flat_scene(size: Size, rgb: tuple[int, int, int], seed: int, engine: str = "studio") -> Scene:
    """A plain backdrop of exactly ``rgb`` (marketplace rule, e.g. Amazon's pure white)."""
    t0 = time.perf_counter()
    W, H = size
    img = np.empty((H, W, 3), np.uint8)
    img[:] = np.array(rgb, np.uint8)
    r, g, b = (int(v) for v in rgb)
    return Scene(rgb=img, seed=seed, engine=engine, light_dir=(0.0, 1.0), floor_y=None, gloss=0.0,
                 shadow_strength=0.5, needs_shadow=True, generated=False,
                 notes=(f"plain background RGB {r},{g},{b} required by the preset: the prompt's scene is not used",),
                 params={"Background": f"plain {r} {g} {b}"},
                 timings={"studio": time.perf_counter() - t0})


# -- resolving the prompt into one look ------------------------------------------------------------
def _jitter(rng: np.random.Generator, c: np.ndarray, amount: float = 0.04) -> np.ndarray:
    k = F32(1 + rng.uniform(-amount, amount))
    hue = rng.uniform(-amount / 3, amount / 3, 3).astype(F32)
    return np.clip(c * k + hue, 0, 1).astype(F32)


def _light_name(v: tuple[float, float]) -> str:
    sx = 1 if v[0] > 0.38 else (-1 if v[0] < -0.38 else 0)
    sy = 1 if v[1] > 0.38 else (-1 if v[1] < -0.38 else 0)
    return _DIR_NAMES.get((sx, sy), "above")


def resolve(p: ParsedPrompt, rng: np.random.Generator, w: int, h: int,
            box: tuple[float, float, float, float], base_y: float) -> Look:
    """Turn the parsed prompt + this seed's random draws into concrete colours, geometry and light."""
    g = p.g
    x0, y0, x1, y1 = box
    pw, ph = max(1.0, x1 - x0), max(1.0, y1 - y0)
    labels: dict[str, str] = {}

    # colours of the surface (floor), the backdrop and the podium
    mat = _material(p.surface.material)
    floor_kind = mat["material"] if mat else "plain"
    extra: dict[str, Any] = {}
    if p.surface.colours:
        c = rgb_of(p.surface.colours[0])
        if mat and floor_kind == "marble" and p.surface.colours[0] in _METALS:
            extra["vein_rgb"] = c * F32(0.9)
            c = np.array(mat["rgb"], F32) / 255
        elif mat and floor_kind == "wood":
            c = np.array(mat["rgb"], F32) / 255 * F32(0.45) + c * F32(0.55)
    elif mat:
        c = np.array(mat["rgb"], F32) / 255
    else:
        c = None
    if p.accent == "gold" and floor_kind == "marble" and "vein_rgb" not in extra:
        extra["vein_rgb"] = rgb_of("gold") * F32(0.85)

    named_back = list(p.backdrop.colours)
    palette = p.palette
    if named_back:
        back = rgb_of(named_back[0])
        back2 = rgb_of(named_back[1]) if len(named_back) > 1 else None
        labels["Backdrop"] = " / ".join(named_back[:2])
    else:
        if palette == "tonal" and c is not None:
            choice = None
            back = _shade(c, rng.uniform(0.15, 0.35))
        elif palette and PALETTES.get(palette):
            choice = str(rng.choice(PALETTES[palette]))
            back = rgb_of(choice)
        elif g("brightness") < -0.25:
            choice = str(rng.choice(_DARK_BACKDROPS))
            back = rgb_of(choice)
        else:
            choice = str(rng.choice(PALETTES["neutral"]))
            back = rgb_of(choice)
            if c is not None:  # harmonise a neutral wall with a coloured surface
                back = back * F32(0.8) + _shade(c, 0.5) * F32(0.2)
        back2 = None
        if choice:
            labels["Backdrop"] = choice
    if p.backdrop.tone:
        back = _shade(back, p.backdrop.tone)
    if palette == "pastel":
        back = _shade(back, 0.15)
    back = _jitter(rng, back)
    if c is None:
        # no material: a plain surface in a shade of the backdrop (a painted or paper tabletop)
        c = _shade(back, rng.uniform(-0.1, 0.06))
    if p.surface.tone:
        c = _shade(c, p.surface.tone)
    floor_rgb = _jitter(rng, c, 0.03)

    pure = p.pure
    pure_rgb = None
    if pure:
        pure_rgb = (np.ones(3, F32) if (not named_back or named_back[0] == "white")
                    else np.array(colour_rgb(named_back[0]), F32) / 255)

    gradient = p.style == "gradient" or back2 is not None
    if back2 is not None:
        wall_top, wall_bottom = back, _jitter(rng, back2)
    elif gradient:
        dark = float(back @ _LUMA) < 0.45
        wall_top = back if not dark else _shade(back, -0.35)
        wall_bottom = _shade(back, 0.35) if dark else _shade(back, -0.18)
        if not dark:
            wall_top, wall_bottom = _shade(back, -0.22), _shade(back, 0.08)
    else:
        wall_top, wall_bottom = _shade(back, -0.03), _shade(back, 0.02)
    bmat = _material(p.backdrop.material)
    wall_kind = bmat["material"] if bmat else ("paper" if p.layout == "sweep" else "plaster")
    if wall_kind in ("mirror", "glass"):
        wall_kind = "plain"

    # podium
    podium_rgb = None
    pmat = _material(p.podium_part.material)
    podium_kind = pmat["material"] if pmat else "plaster"
    if podium_kind in ("mirror", "glass"):
        podium_kind = "plain"
    if p.podium:
        if p.podium_part.colours:
            podium_rgb = rgb_of(p.podium_part.colours[0])
        elif pmat:
            podium_rgb = np.array(pmat["rgb"], F32) / 255
        else:
            podium_rgb = _shade(back, float(rng.choice([-0.12, 0.2, 0.35])))
        if p.podium_part.tone:
            podium_rgb = _shade(podium_rgb, p.podium_part.tone)
        podium_rgb = _jitter(rng, podium_rgb, 0.03)
        labels["Podium"] = " ".join(x for x in (p.podium_part.material, p.podium) if x)

    arch_rgb = None
    if p.arch:
        arch_rgb = (rgb_of(named_back[1]) if len(named_back) > 1
                    else _shade(back, float(rng.choice([-0.14, -0.08, 0.12]))))

    # light direction: named, or a default from the upper left/right; jittered per seed
    if p.light is not None:
        ang = math.atan2(p.light[1], p.light[0])
        light_name = _light_name(p.light)
    else:
        ang = math.radians(float(rng.choice([58.0, 122.0])) if not p.window else 22.0)
        light_name = "default" if not p.window else "left"
    tilt = g("tilt")
    if tilt and abs(math.cos(ang)) > 0.2:   # low sun: flatter; noon: steeper
        side = 0.0 if math.cos(ang) > 0 else math.pi
        ang = ang + (side - ang) * 0.45 * max(-1.0, min(1.0, tilt)) if tilt > 0 else \
            ang + (math.pi / 2 - ang) * 0.5 * min(1.0, -tilt)
    ang += math.radians(rng.uniform(-9, 9))
    light = (round(math.cos(ang), 4), round(math.sin(ang), 4))
    if p.light is not None and abs(p.light[0]) > 0.3 and (light[0] > 0) != (p.light[0] > 0):
        light = (-light[0], light[1])

    # geometry: horizon (tabletop) and podium
    # gloss of what the product stands on: the podium's top when there is one, else the surface
    stand = pmat if p.podium else mat
    gloss = float(stand["gloss"]) if stand else 0.0
    if p.podium and stand and stand["material"] in ("mirror", "glass"):
        gloss = 0.3
    gloss = float(np.clip(gloss + g("gloss_add"), 0.0, 1.0))
    horizon = None
    if p.layout == "tabletop":
        if p.podium:
            horizon = base_y + rng.uniform(-0.25, 0.05) * ph
        else:
            horizon = base_y - rng.uniform(0.28, 0.5) * ph
        horizon = float(np.clip(horizon, min(0.18 * h, base_y - 0.03 * h), max(0.18 * h, base_y - 0.03 * h)))
    along_x = bool(rng.random() < 0.6)
    persp = (float(rng.uniform(1.6, 2.2)), float(rng.uniform(0.38, 0.52)), along_x)

    hardness = float(np.clip(0.35 + 0.5 * g("hardness"), 0.0, 1.0))
    shadow = float(np.clip(0.5 + g("shadow") + 0.15 * (hardness - 0.35), 0.15, 0.9))
    vignette = float(np.clip(0.18 + 0.5 * g("vignette") + rng.uniform(-0.04, 0.04), 0.0, 0.75))
    mood_words = " ".join(p.moods)
    labels.update({"Layout": p.layout, "Surface": (p.surface.material or ("plain" if p.layout == "tabletop" else "sweep")),
                   "Light": light_name})
    if p.palette:
        labels["Palette"] = p.palette
    if mood_words:
        labels["Mood"] = mood_words
    extras = [x for x in (p.gobo and f"{p.gobo} shadows", p.bokeh and "bokeh", p.arch and "arch",
                          g("haze") and "haze", p.caustics and "caustics") if x]
    if extras:
        labels["Surroundings"] = " ".join(extras)
    return Look(
        w=w, h=h, layout=p.layout, box=box, base_y=base_y, horizon=horizon, wall_top=wall_top,
        wall_bottom=wall_bottom, wall_kind=wall_kind, floor_kind=floor_kind, floor_rgb=floor_rgb,
        floor_extra=extra, gloss=gloss, light=light, light_name=light_name, hardness=hardness,
        shadow=shadow, warmth=float(np.clip(g("warmth"), -1, 1)),
        brightness=float(np.clip(g("brightness"), -0.8, 0.8)), contrast=float(np.clip(g("contrast"), 0.6, 1.5)),
        saturation=float(np.clip(g("saturation"), 0.0, 1.6)), vignette=vignette,
        texture=float(np.clip(g("texture"), 0.0, 2.0)), pure=pure, pure_rgb=pure_rgb,
        podium=p.podium, podium_rgb=podium_rgb, podium_kind=podium_kind, arch_rgb=arch_rgb,
        gobo=p.gobo, bokeh=p.bokeh, haze=float(np.clip(g("haze"), 0, 1)),
        caustics=p.caustics, glow=float(np.clip(g("glow"), 0, 1.2)), spot=float(np.clip(g("spot"), 0, 1)),
        window=p.window, blur=p.blur, persp=persp, labels=labels)


# -- drawing ---------------------------------------------------------------------------------------
def _wall(look: Look, rng, h: int, w: int, scale: float) -> np.ndarray:
    """The backdrop: colour gradient x a soft texture rendered at half resolution (out of focus)."""
    mean = (look.wall_top + look.wall_bottom) * F32(0.5)
    hh, hw = max(2, h // 2), max(2, w // 2)
    amount = 0.8 * look.texture
    tex = T.render(look.wall_kind, rng, hh, hw, scale / 2, mean, amount)
    tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)
    t = _smoothstep(0.0, 1.0, np.linspace(0, 1, h, dtype=F32))[:, None, None]
    grad = look.wall_top[None, None, :] * (F32(1) - t) + look.wall_bottom[None, None, :] * t
    ratio = grad / np.maximum(mean, F32(1e-3))[None, None, :]
    return tex * ratio


def _floor(look: Look, rng, wall: np.ndarray, top: int, h: int, w: int, scale: float) -> np.ndarray:
    """The surface in perspective: a texture in plane coordinates warped by a homography so that
    it spans the canvas at the contact line (far) and ``r`` times less at the bottom (near)."""
    F = h - top
    r, e, along_x = look.persp
    kind = look.floor_kind
    if kind == "mirror":
        # a mirror reflects the wall: row i below the line shows row i above it
        idx = np.clip(top - 1 - np.arange(F), 0, max(top - 1, 0))
        refl = wall[idx] if top > 0 else np.broadcast_to(look.floor_rgb, (F, w, 3))
        refl = cv2.GaussianBlur(np.ascontiguousarray(refl), (0, 0), 1.2)
        return refl * (look.floor_rgb / F32(max(float(look.floor_rgb.max()), 1e-3)) * F32(0.8))
    s = 0.75
    tw = int(round(w * r * s))
    th = int(round(F * r * s / e))
    cap = 2.0 * w * h * s * s
    if tw * th > cap:
        k = math.sqrt(cap / (tw * th))
        tw, th, s = max(8, int(tw * k)), max(8, int(th * k)), s * k
    kw = {"along_x": along_x} if kind == "wood" else {}
    kw.update(look.floor_extra if kind == "marble" else {})
    tex = T.render(kind, rng, th, tw, scale * s * r * 0.5, look.floor_rgb, look.texture, **kw)
    if look.caustics:
        tex *= (F32(1) + F32(0.3) * T.caustics(rng, th, tw, scale * s * r * 0.5))[..., None]
    src = np.float32([[0, 0], [tw, 0], [tw / 2 + tw / (2 * r), th], [tw / 2 - tw / (2 * r), th]])
    dst = np.float32([[0, 0], [w, 0], [w, F], [0, F]])
    M = cv2.getPerspectiveTransform(src, dst)
    floor = cv2.warpPerspective(tex, M, (w, F), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if kind == "glass" and top > 0:
        idx = np.clip(top - 1 - np.arange(F), 0, top - 1)
        floor = floor * F32(0.82) + wall[idx] * F32(0.18)
    # depth of field: the far part of the surface is softer
    soft = cv2.GaussianBlur(floor, (0, 0), 1.6)
    t = (F32(1) - _smoothstep(0.0, 0.35, np.linspace(0, 1, F, dtype=F32)))[:, None, None]
    return floor + (soft - floor) * t


def _mask_ellipse(h, w, c, axes, angle=0.0) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (int(round(c[0] * 4)), int(round(c[1] * 4))), (int(round(axes[0] * 4)), int(round(axes[1] * 4))),
                angle, 0, 360, 255, -1, cv2.LINE_AA, 2)
    return m


def _podium(look: Look, rng, img: np.ndarray, scale: float) -> None:
    """Draw a cylinder or a block under the product, shaded by the light, with a contact shadow."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = look.box
    pw = x1 - x0
    cx = (x0 + x1) / 2
    rx = float(np.clip(pw * rng.uniform(0.62, 0.82), pw * 0.58, 0.46 * w))
    rx = max(rx, 0.08 * w)
    ry = rx * rng.uniform(0.16, 0.24)
    b = look.base_y
    # tall enough to read as a plinth; short enough that its foot stays in the frame when there is room
    room = h - b - 1.3 * ry
    hp = float(np.clip(room * rng.uniform(0.6, 0.85), 0.05 * h, 0.22 * h)) if room > 0.06 * h \
        else h * rng.uniform(0.12, 0.22)
    top_c = b - 0.3 * ry
    bot_c = top_c + hp
    dx = look.light[0]
    # contact shadow on the floor
    sh = _mask_ellipse(h, w, (cx + dx * rx * 0.25, bot_c + ry * 0.15), (rx * 1.12, ry * 1.25)).astype(F32) / 255
    sh = cv2.GaussianBlur(sh, (0, 0), max(1.0, ry * 0.5))
    img *= (F32(1) - F32(0.45) * sh)[..., None]
    ytop = int(max(0, math.floor(top_c - ry - 2)))
    ybot = int(min(h, math.ceil(bot_c + ry + 2)))
    xl = int(max(0, math.floor(cx - rx - 2)))
    xr = int(min(w, math.ceil(cx + rx + 2)))
    if ybot <= ytop or xr <= xl:
        return
    bh, bw = ybot - ytop, xr - xl
    tex = T.render(look.podium_kind, rng, bh, bw, scale, look.podium_rgb, 0.8 * look.texture)
    xs = (np.arange(xl, xr, dtype=F32) - F32(cx)) / F32(rx)
    nx = np.clip(xs, -1, 1)
    nz = np.sqrt(np.clip(F32(1) - nx * nx, 0, 1))
    if look.podium == "box":
        tf = b + 0.55 * ry                      # front edge of the top face
        back_y = tf - 1.6 * ry
        body = np.zeros((h, w), np.uint8)
        cv2.rectangle(body, (int(cx - rx), int(tf)), (int(cx + rx), int(min(h - 1, tf + hp))), 255, -1)
        topm = np.zeros((h, w), np.uint8)
        poly = np.array([[cx - rx, tf], [cx + rx, tf], [cx + rx * 0.9, back_y], [cx - rx * 0.9, back_y]],
                        np.float32)
        cv2.fillPoly(topm, [np.round(poly * 4).astype(np.int32)], 255, cv2.LINE_AA, 2)
        front_shade = F32(0.80) + F32(0.06) * (-F32(dx)) * nx
        face = np.ones((h, w), F32)
        face[:, xl:xr] = front_shade[None, :]
        top_shade = F32(1.06)
    else:
        body = np.zeros((h, w), np.uint8)
        cv2.rectangle(body, (int(round(cx - rx)), int(round(top_c))), (int(round(cx + rx)), int(round(bot_c))), 255, -1)
        body = np.maximum(body, _mask_ellipse(h, w, (cx, bot_c), (rx, ry)))
        topm = _mask_ellipse(h, w, (cx, top_c), (rx, ry))
        lam = F32(0.5) + F32(0.42) * (nx * F32(-dx) * F32(0.85) + nz * F32(0.5))
        lam *= F32(0.82) + F32(0.18) * nz          # darker toward the silhouette (ambient occlusion)
        face = np.ones((h, w), F32)
        face[:, xl:xr] = lam[None, :]
        top_shade = F32(1.05)
    bodyf = body.astype(F32) / 255
    topf = topm.astype(F32) / 255
    region = (slice(ytop, ybot), slice(xl, xr))
    shade = face[region] * (F32(1) - topf[region]) + top_shade * topf[region]
    col = tex * shade[..., None]
    a = np.maximum(bodyf[region], topf[region])[..., None]
    img[region] = img[region] * (F32(1) - a) + col * a
    # a thin highlight on the front rim of the top face
    if look.podium != "box":
        rim = np.zeros((h, w), np.uint8)
        cv2.ellipse(rim, (int(round(cx * 4)), int(round(top_c * 4))), (int(round(rx * 4)), int(round(ry * 4))),
                    0, 10, 170, 255, max(1, int(scale / 400)), cv2.LINE_AA, 2)
        rimf = cv2.GaussianBlur(rim.astype(F32) / 255, (0, 0), 0.8)[region]
        img[region] += (rimf * F32(0.10))[..., None]


def _arch(look: Look, rng, img: np.ndarray, bottom: float) -> None:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = look.box
    pw = x1 - x0
    cx = (x0 + x1) / 2
    aw = float(np.clip(pw * rng.uniform(1.5, 2.1), 0.28 * w, 0.72 * w)) / 2
    top = max(0.06 * h, bottom - max(y1 - y0, 0.3 * h) * rng.uniform(1.1, 1.5) - aw)
    m = np.zeros((h, w), np.uint8)
    cv2.rectangle(m, (int(cx - aw), int(top + aw)), (int(cx + aw), int(bottom)), 255, -1)
    cv2.ellipse(m, (int(round(cx * 4)), int(round((top + aw) * 4))), (int(round(aw * 4)), int(round(aw * 4))),
                0, 180, 360, 255, -1, cv2.LINE_AA, 2)
    mf = m.astype(F32) / 255
    # recess: the edge toward the light casts a thin shadow inside the arch
    dx = look.light[0]
    shift = np.float32([[1, 0, dx * max(2.0, w * 0.012)], [0, 1, max(2.0, h * 0.01)]])
    inner = cv2.warpAffine(mf, shift, (w, h))
    edge = cv2.GaussianBlur(np.clip(mf - inner, 0, 1), (0, 0), max(1.0, w * 0.004))
    col = look.arch_rgb[None, None, :] * (F32(1) - F32(0.35) * edge[..., None])
    img[:] = img * (F32(1) - mf[..., None]) + col * mf[..., None] * (img / np.maximum(
        (look.wall_top + look.wall_bottom)[None, None, :] * F32(0.5), F32(1e-3)))


def _gobo(look: Look, rng, lh: int, lw: int) -> np.ndarray:
    """A light pattern at light-map resolution: 1 = lit, lower = shadowed (h x w float32)."""
    dx, dy = look.light
    m = np.zeros((lh, lw), np.uint8)
    kind = look.gobo
    src_x = 0 if dx > 0.15 else (lw if dx < -0.15 else lw * rng.uniform(0.2, 0.8))
    if kind == "leaves":
        # two or three branches reaching in from the light's side, leaves alternating along them
        from_left = src_x < lw / 2
        for _ in range(int(rng.integers(2, 4))):
            bx = (-0.05 if from_left else 1.05) * lw
            by = rng.uniform(-0.15, 0.55) * lh
            ang = math.radians(rng.uniform(-25, 35)) if from_left else math.pi - math.radians(rng.uniform(-25, 35))
            L = rng.uniform(0.35, 0.65) * lw
            bend = rng.uniform(-0.6, 0.6)
            n = int(rng.integers(6, 10))
            ll0 = rng.uniform(0.07, 0.11) * lw
            pts = []
            for i in range(n + 1):
                t = i / n
                a = ang + bend * t
                pts.append((bx + math.cos(a) * L * t, by + math.sin(a) * L * t))
            cv2.polylines(m, [np.array(pts, np.int32)], False, 255, max(1, lw // 160), cv2.LINE_AA)
            for i in range(1, n + 1):
                t = i / n
                px, py = pts[i]
                a = math.degrees(ang + bend * t)
                side = 1 if i % 2 else -1
                la = a + side * rng.uniform(35, 60)
                ll = ll0 * (1.15 - 0.45 * t)
                ox = math.cos(math.radians(la)) * ll * 0.9
                oy = math.sin(math.radians(la)) * ll * 0.9
                cv2.ellipse(m, (int(px + ox), int(py + oy)), (int(ll), max(1, int(ll * 0.32))), la, 0, 360, 255,
                            -1, cv2.LINE_AA)
        blur = lw * (0.003 + 0.012 * (1 - look.hardness))
        pat = cv2.GaussianBlur(m.astype(F32) / 255, (0, 0), blur)
        return F32(1) - F32(0.42) * pat
    if kind == "blinds":
        # sunlight through blinds: a skewed bright patch from the light's side, striped by slats
        yy, xx = np.mgrid[0:lh, 0:lw].astype(F32)
        slope = F32(rng.uniform(0.25, 0.6) * (1 if dx >= 0 else -1))
        period = F32(lh * rng.uniform(0.05, 0.08))
        stripes = (np.sin((yy + xx * slope) * F32(2 * math.pi) / period) > F32(-0.2)).astype(F32)
        stripes = cv2.GaussianBlur(stripes, (0, 0), max(0.6, lw * 0.003 * (1.5 - look.hardness)))
        # the patch: a window's shape sheared along the light, soft-edged
        u = (xx / F32(lw)) if dx >= 0 else (F32(1) - xx / F32(lw))
        v = yy / F32(lh)
        c0, c1 = rng.uniform(0.05, 0.2), rng.uniform(0.55, 0.8)
        sh = F32(rng.uniform(0.2, 0.5))
        patch = _smoothstep(c0 - 0.1, c0 + 0.05, u - sh * v) * (F32(1) - _smoothstep(c1, c1 + 0.15, u - sh * v))
        patch *= _smoothstep(-0.05, 0.1, v) * (F32(1) - _smoothstep(0.85, 1.0, v))
        return F32(0.82) + F32(0.34) * stripes * patch
    if kind == "window":
        # a bright, skewed window with cross bars, thrown on the wall from the light's side
        cxw = lw * (0.22 if dx > 0 else 0.78) + rng.uniform(-0.06, 0.06) * lw
        wwin, hwin = lw * rng.uniform(0.3, 0.42), lh * rng.uniform(0.45, 0.6)
        topw = lh * rng.uniform(0.02, 0.12)
        skew = (0.35 if dx > 0 else -0.35) * hwin
        pts = np.float32([[cxw - wwin / 2, topw], [cxw + wwin / 2, topw],
                          [cxw + wwin / 2 + skew, topw + hwin], [cxw - wwin / 2 + skew, topw + hwin]])
        cv2.fillPoly(m, [pts.astype(np.int32)], 255, cv2.LINE_AA)
        bar = max(1, int(lw * 0.012))
        mid_top = (pts[0] + pts[1]) / 2
        mid_bot = (pts[2] + pts[3]) / 2
        cv2.line(m, tuple(int(v) for v in mid_top), tuple(int(v) for v in mid_bot), 0, bar, cv2.LINE_AA)
        ml = (pts[0] + pts[3]) / 2
        mr = (pts[1] + pts[2]) / 2
        cv2.line(m, tuple(int(v) for v in ml), tuple(int(v) for v in mr), 0, bar, cv2.LINE_AA)
        pat = cv2.GaussianBlur(m.astype(F32) / 255, (0, 0), max(0.8, lw * 0.006 * (1.5 - look.hardness)))
        return F32(0.86) + F32(0.38) * pat
    # dapple: sunlight through trees
    n = T.fbm(rng, lh, lw, lh / 14.0, lw / 14.0, 3)
    spots = _smoothstep(0.7, 1.1, n)
    return F32(0.82) + F32(0.4) * spots


def _bokeh(look: Look, rng, h: int, w: int, limit: int) -> np.ndarray:
    """Out-of-focus light discs (additive layer, h x w x 3 float32) above ``limit``: two depth
    layers, the farther one smaller, dimmer and softer."""
    out = np.zeros((h, w, 3), F32)
    warm = look.warmth > -0.1
    for depth, (count, rmin, rmax, blur, gain) in enumerate(((22, 0.008, 0.02, 0.004, 0.35),
                                                            (12, 0.018, 0.04, 0.002, 0.5))):
        layer = np.zeros((h, w, 3), F32)
        for _ in range(count):
            r = int(max(2, rng.uniform(rmin, rmax) * w))
            x = int(rng.uniform(0, w))
            y = int(rng.uniform(0.0, 0.92) * max(limit, 4))
            if warm:
                col = np.array([1.0, rng.uniform(0.75, 0.9), rng.uniform(0.45, 0.65)], F32)
            else:
                col = np.array([rng.uniform(0.6, 0.85), rng.uniform(0.75, 0.92), 1.0], F32)
            col *= F32(rng.uniform(0.3, 1.0) * gain)
            cv2.circle(layer, (x, y), r, tuple(float(c) for c in col), -1, cv2.LINE_AA)
            cv2.circle(layer, (x, y), r, tuple(float(c) * 0.5 for c in col), max(1, r // 8), cv2.LINE_AA)
        out += cv2.GaussianBlur(layer, (0, 0), max(1.0, w * blur))
    return out


def _light_map(look: Look, rng, lh: int, lw: int, horizon_frac: float | None) -> np.ndarray:
    """Smooth multiplicative light (lh x lw float32): pool around the product, directional falloff,
    window, spot, glow, contact-line occlusion, vignette."""
    x0, y0, x1, y1 = look.box
    sx, sy = lw / look.w, lh / look.h
    cx, cy = (x0 + x1) / 2 * sx, (y0 + y1) / 2 * sy
    yy = np.arange(lh, dtype=F32)[:, None]
    xx = np.arange(lw, dtype=F32)[None, :]
    dx, dy = look.light
    diag = math.hypot(lw, lh)
    # a pool of light around the product, pushed toward where the light comes from
    px, py = cx - dx * 0.22 * lw, cy - 0.12 * lh - max(dy, 0) * 0.08 * lh
    sigma = diag * (0.5 - 0.12 * look.hardness) * (1 + rng.uniform(-0.08, 0.08))
    pool = np.exp(-((xx - F32(px)) ** 2 + (yy - F32(py)) ** 2) / F32(2 * sigma * sigma))
    falloff = 0.22 + 0.2 * look.hardness + 0.25 * max(0.0, -look.brightness)
    L = F32(1 - falloff) + F32(falloff * 1.15) * pool
    # side light: brighter on the side it comes from
    L *= F32(1) - F32(0.16 * dx) * ((xx - F32(lw / 2)) / F32(lw))
    if look.window:
        band = _smoothstep(0.0, 0.7, (F32(1) - xx / F32(lw)) if dx >= 0 else (xx / F32(lw)))
        L *= F32(0.94) + F32(0.16) * band
    if look.spot > 0:
        pwl, phl = (x1 - x0) * sx, (y1 - y0) * sy
        ssig = max(pwl, phl) * 0.6
        wall_spot = np.exp(-((xx - F32(cx)) ** 2 + (yy - F32(cy - 0.3 * phl)) ** 2) / F32(2 * ssig * ssig))
        by = y1 * sy
        floor_spot = np.exp(-((xx - F32(cx)) ** 2 / F32(2 * (pwl * 1.1) ** 2) + (yy - F32(by)) ** 2 / F32(2 * (phl * 0.18) ** 2)))
        spot = np.maximum(wall_spot, floor_spot)
        L *= F32(1 - 0.62 * look.spot) + F32(0.72 * look.spot) * spot
    if horizon_frac is not None:  # occlusion where the surface meets the wall
        hy = horizon_frac * lh
        L *= F32(1) - F32(0.10) * np.exp(-((yy - F32(hy)) / F32(max(1.0, 0.03 * lh))) ** 2)
        # the surface gets a little darker toward the front edge (away from the light pool)
        L *= F32(1) - F32(0.06) * _smoothstep(hy, lh, yy)
    # vignette (elliptic)
    r2 = ((xx - F32(lw / 2)) / F32(lw / 2)) ** 2 + ((yy - F32(lh / 2)) / F32(lh / 2)) ** 2
    L *= F32(1) - F32(look.vignette * 0.5) * np.clip(r2 - F32(0.15), 0, None)
    return L.astype(F32)


def _glow(look: Look, img: np.ndarray) -> None:
    """Additive halo of light behind the product (rim light, backlight, golden glow)."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = look.box
    lh, lw = max(8, h // 4), max(8, w // 4)
    cx, cy = (x0 + x1) / 2 * lw / w, ((y0 + y1) / 2 - 0.1 * (y1 - y0)) * lh / h
    sig = max(x1 - x0, y1 - y0) * lw / w * 0.55
    yy = np.arange(lh, dtype=F32)[:, None]
    xx = np.arange(lw, dtype=F32)[None, :]
    G = np.exp(-((xx - F32(cx)) ** 2 + (yy - F32(cy)) ** 2) / F32(2 * sig * sig))
    G = cv2.resize(G, (w, h), interpolation=cv2.INTER_LINEAR)
    wv = max(0.0, look.warmth)
    col = np.array([1.0, 0.93 - 0.12 * wv, 0.82 - 0.3 * wv], F32) * F32(0.42 * look.glow)
    img += G[..., None] * col


def _grade(img: np.ndarray, look: Look) -> np.ndarray:
    """Warmth, brightness, contrast (around the mean) and saturation, in place where possible."""
    wv = look.warmth
    if wv:
        img *= np.array([1 + 0.07 * wv, 1 + 0.012 * wv, 1 - 0.11 * wv], F32)
    b = look.brightness
    if b > 0:
        img[:] = F32(1) - (F32(1) - img) * F32(1 - 0.55 * b)
    elif b < 0:
        img *= F32(1 + 0.4 * b)
    luma = img @ _LUMA
    if look.contrast != 1.0:
        m = F32(luma[::8, ::8].mean())
        img[:] = m + (img - m) * F32(look.contrast)
        luma = m + (luma - m) * F32(look.contrast)
    if look.saturation != 1.0:
        img[:] = luma[..., None] + (img - luma[..., None]) * F32(look.saturation)
    return img


def _box_and_base(size: Size, product_box: Box | None, floor_y: int | None) -> tuple[tuple[float, ...], float]:
    W, H = size
    if product_box is None or product_box[2] <= product_box[0] or product_box[3] <= product_box[1]:
        product_box = (int(W * 0.3), int(H * 0.25), int(W * 0.7), int(H * 0.85))
    x0, y0, x1, y1 = (float(v) for v in product_box)
    x0, x1 = max(0.0, min(x0, W - 1.0)), max(1.0, min(x1, float(W)))
    y0, y1 = max(0.0, min(y0, H - 1.0)), max(1.0, min(y1, float(H)))
    base = float(floor_y) if floor_y is not None else y1
    return (x0, y0, x1, y1), float(min(max(base, 1.0), H))


def render_scene(prompt: str | ParsedPrompt, size: Size, seed: int, *, product_box: Box | None = None,
                 floor_y: int | None = None, work_side: int | None = None, engine: str = "studio") -> Scene:
    """Render one studio scene of ``size`` (W, H) for ``seed``.

    ``product_box`` (XYXY, canvas pixels) and ``floor_y`` (the product's base row) place the
    horizon, the podium and the light pool; without them a centred product is assumed.
    Returns a :class:`~packshot.types.Scene` with ``rgb`` H x W x 3 uint8.
    """
    t0 = time.perf_counter()
    parsed = prompt if isinstance(prompt, ParsedPrompt) else parse_prompt(prompt)
    W, H = int(size[0]), int(size[1])
    box, base = _box_and_base((W, H), product_box, floor_y)
    k = min(1.0, (work_side or work_side_for((W, H))) / max(W, H))
    w, h = max(8, int(round(W * k))), max(8, int(round(H * k)))
    kx, ky = w / W, h / H
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(parsed.text.encode("utf-8"))])
    wbox = (box[0] * kx, box[1] * ky, box[2] * kx, box[3] * ky)
    look = resolve(parsed, rng, w, h, wbox, base * ky)
    scale = float(w)  # one scene unit = the canvas width

    notes: list[str] = []
    if parsed.unused:
        notes.append("unused words: " + ", ".join(parsed.unused))

    if look.pure and look.podium is None and look.layout == "sweep":
        img8 = np.empty((H, W, 3), np.uint8)
        img8[:] = np.round(look.pure_rgb * 255).astype(np.uint8)
        notes.append("pure backdrop: one flat colour for every seed (only the light direction varies)")
        return _scene(img8, seed, engine, look, None, notes, parsed, t0)

    # 1. backdrop (wall) and surface
    top = int(round(look.horizon)) if look.horizon is not None else h
    top = max(0, min(h, top))
    wall = _wall(look, rng, h, w, scale)
    img = wall.copy()
    if look.layout == "sweep":
        # the sweep's curve: the floor part catches more light, no visible line
        b = look.base_y
        t = _smoothstep(b - 0.22 * h, b + 0.08 * h, np.arange(h, dtype=F32))[:, None, None]
        img *= F32(1) + F32(0.05) * t
    if look.pure:
        img[:top] = look.pure_rgb
    if look.horizon is not None and top < h:
        img[top:] = _floor(look, rng, wall, top, h, w, scale)
    if look.arch_rgb is not None:
        _arch(look, rng, img, float(top if look.horizon is not None else look.base_y))

    # 2. light: a smooth map at 1/4 resolution, enlarged
    gob = None
    if not look.pure:
        lh, lw = max(8, h // 4), max(8, w // 4)
        L = _light_map(look, rng, lh, lw, (top / h) if look.horizon is not None else None)
        L = cv2.resize(L, (w, h), interpolation=cv2.INTER_LINEAR)
        if look.gobo:
            gob = cv2.resize(_gobo(look, rng, max(8, h // 2), max(8, w // 2)), (w, h),
                             interpolation=cv2.INTER_LINEAR)
            L *= gob
        img *= L[..., None]
        if look.glow > 0:
            _glow(look, img)
        if look.blur or look.bokeh:
            limit = top if look.horizon is not None else int(look.base_y)
            img[:limit] = cv2.GaussianBlur(img[:limit], (0, 0), max(1.0, w * 0.004))
        if look.bokeh:
            limit = top if look.horizon is not None else int(look.base_y)
            layer = _bokeh(look, rng, h, w, limit)
            img[:limit] *= F32(0.85)
            img += layer * (F32(1) - _smoothstep(limit * 0.85, limit * 1.02, np.arange(h, dtype=F32)))[:, None, None]
    # 3. podium (lit by its own shading so it reads as a solid), grading, haze
    if look.podium:
        _podium(look, rng, img, scale)
    if not look.pure:
        _grade(img, look)
        if gob is not None and look.warmth > 0:
            # warm light, cooler shade: take part of the warm tint back where the pattern shades
            shade = np.clip((F32(gob.max()) - gob) / F32(max(float(gob.max() - gob.min()), 1e-3)), 0, 1)
            wv = 0.8 * look.warmth
            img *= F32(1) + shade[..., None] * np.array([-0.07 * wv, -0.01 * wv, 0.12 * wv], F32)
        if look.haze > 0:
            hz = look.haze * (F32(1) - _smoothstep(0, h, np.arange(h, dtype=F32)))[:, None, None] * F32(0.45)
            img += (F32(0.92) - img) * hz
        # a little grain (std ~0.9/255), monochrome
        img += rng.standard_normal((h, w), dtype=F32)[..., None] * F32(0.0035)
    img8 = np.clip(img * F32(255) + F32(0.5), 0, 255).astype(np.uint8)
    if (w, h) != (W, H):
        img8 = cv2.resize(img8, (W, H), interpolation=cv2.INTER_CUBIC)
    floor_full = int(round(look.horizon / ky)) if look.horizon is not None else None
    return _scene(img8, seed, engine, look, floor_full, notes, parsed, t0)


def _scene(img8, seed, engine, look: Look, floor_y, notes, parsed: ParsedPrompt, t0) -> Scene:
    return Scene(rgb=img8, seed=int(seed), engine=engine, light_dir=look.light, floor_y=floor_y,
                 gloss=round(look.gloss, 3), shadow_strength=round(look.shadow, 3), needs_shadow=True,
                 generated=False, notes=tuple(notes), params=dict(look.labels),
                 timings={"studio": time.perf_counter() - t0})
