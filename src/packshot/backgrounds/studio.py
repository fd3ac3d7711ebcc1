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
from . import light as lighting
from . import props, surfaces
from . import textures as T
from .photo import photo_scene
from .view import estimate_light, photo_cast, product_noise
from .textures import F32, LUMA as _LUMA, shade as _shade, smoothstep as _smoothstep

WORK_SIDE = (640, 1024)  # internal render's longer side: half the canvas's, within these bounds


def work_side_for(size: Size, bounds: tuple[int, int] = WORK_SIDE) -> int:
    """Longer side of the internal render for a canvas: half the canvas's, clamped to ``bounds``."""
    long_side = max(size)
    return int(min(long_side, max(bounds[0], min(bounds[1], long_side // 2))))
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
    podium_ratio: float = 0.2                              # podium top ellipse: height / width
    labels: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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
        field_ = (req.get if isinstance(req, dict) else lambda k, d=None: getattr(req, k, d))
        prompt = str(field_("prompt", "") or "")
        background = field_("background", None)
        parsed = parse_prompt(prompt)
        setting = setting_for(job) if placement.background_rgb is None else Setting()
        max_pixels = getattr(self.settings, "max_pixels", None)
        out = []
        for i, seed in enumerate(job.seeds):
            # the preset's forced plain background (amazon white) -- single call site; switch to
            # the resolved value (H9's packshot.resolve.Resolved) once it lands
            if placement.background_rgb is not None:
                out.append(flat_scene((W, H), placement.background_rgb, seed, self.name))
            elif background:
                out.append(photo_scene(str(background), (W, H), seed, self.name, max_pixels))
            else:
                out.append(render_scene(parsed, (W, H), seed, product_box=placement.product_box,
                                        floor_y=placement.floor_y, work_side=self.work_side,
                                        engine=self.name, setting=setting))
            progress("background", (i + 1) / max(1, len(job.seeds)), f"scene {i + 1}/{len(job.seeds)}")
        return out


def setting_for(job: SceneJob) -> Setting:
    """What the product and its photo ask of the scene: view and frame edges (from the layout),
    the light side from the product's shading, its noise, the colour cast of the photo's light."""
    layer, pl = job.layer, job.layer.placement
    x0, y0, x1, y1 = pl.product_box
    rgb, alpha = layer.rgb[y0:y1, x0:x1], layer.alpha[y0:y1, x0:x1]
    hint = estimate_light(rgb, alpha)
    cast = photo_cast(job.photo.rgb) if job.photo is not None else (1.0, 1.0, 1.0)
    return Setting(view=pl.view, base_ratio=pl.base_ratio, edges=pl.edges, light_hint=hint,
                   noise=product_noise(rgb, alpha), cast=cast)


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
@dataclass(frozen=True)
class Setting:
    """What the product and its photo ask of every scene of one request (the same for each seed).

    ``view``: front | high | top (flat lay); ``base_ratio``: height/width of the product's base
    ellipse (the podium's top matches it); ``edges``: photo borders that cut the product (then no
    surface or podium is drawn under it); ``light_hint``: (dx, reason) from the product's own
    shading, or None; ``noise``: the product's measured sensor noise at the output size (the
    scene's grain matches it); ``cast``: the colour cast of the photo's light (r, g, b gains).
    """

    view: str = "front"
    base_ratio: float = 0.0
    edges: tuple[str, ...] = ()
    light_hint: tuple[float, str] | None = None
    noise: float = 0.0035
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def warmth(self) -> float:
        """The photo light's warmth on the grading scale (-1 cool .. +1 warm)."""
        return float(np.clip((self.cast[0] - self.cast[2]) / 0.25, -1.0, 1.0))


# Travel directions in image coordinates (0 deg: to the right, -90 deg: up the image, which on the
# floor is away from the camera). A product photo is lit from the front and one side, so its cast
# shadow falls behind the product, to the other side: the default, and the side read from the
# product's own shading, both travel up-right (or up-left).
DEFAULT_LIGHT_DEG = -32.0    # the default light: from the front left, the same for every seed
PHOTO_LIGHT_DEG = -32.0      # a side light read from the product's shading, from that side
MAX_WARMTH_GAP = 0.35        # the scene may be this much warmer/cooler than the product's light


def _jitter(rng: np.random.Generator, c: np.ndarray, amount: float = 0.04) -> np.ndarray:
    k = F32(1 + rng.uniform(-amount, amount))
    hue = rng.uniform(-amount / 3, amount / 3, 3).astype(F32)
    return np.clip(c * k + hue, 0, 1).astype(F32)


def _light_name(v: tuple[float, float]) -> str:
    sx = 1 if v[0] > 0.38 else (-1 if v[0] < -0.38 else 0)
    sy = 1 if v[1] > 0.38 else (-1 if v[1] < -0.38 else 0)
    return _DIR_NAMES.get((sx, sy), "above")


def resolve_light(p: ParsedPrompt, setting: Setting) -> tuple[tuple[float, float], str]:
    """One light for every seed of a request: ``(travel direction, how it was chosen)``.

    From the prompt's direction words; else from the product's own shading (the side it is lit
    from, from the front); else the fixed default from the front left. Time-of-day words tilt it (low sun:
    flatter; noon: steeper). Never random: every candidate's shadow falls the same way.
    """
    words = [*p.light_words, *(m for m in p.moods if m == p.time)]
    said = f": {', '.join(dict.fromkeys(words))}" if words else ""
    if p.light is not None:
        ang, source = math.atan2(p.light[1], p.light[0]), f"prompt{said}"
    elif p.window:
        ang, source = math.radians(-15.0), f"prompt{said}"
    elif setting.light_hint is not None:
        dx, why = setting.light_hint
        ang = math.radians(PHOTO_LIGHT_DEG if dx > 0 else 180.0 - PHOTO_LIGHT_DEG)
        source = f"photo: {why}" + (f"; prompt{said}" if said else "")
    else:
        ang, source = math.radians(DEFAULT_LIGHT_DEG), "default" + (f"; prompt{said}" if said else "")
    tilt = p.g("tilt")
    if tilt and abs(math.cos(ang)) > 0.2:   # low sun: flatter; noon: steeper
        side = 0.0 if math.cos(ang) > 0 else math.pi
        ang = ang + (side - ang) * 0.45 * max(-1.0, min(1.0, tilt)) if tilt > 0 else \
            ang + (math.pi / 2 - ang) * 0.5 * min(1.0, -tilt)
    light = (round(math.cos(ang), 4), round(math.sin(ang), 4))
    return light, f"from the {_light_name(light)} ({source})"


def _surface_colour(p: ParsedPrompt) -> tuple[str, np.ndarray | None, dict[str, Any]]:
    """(floor material kind, its colour or None, extra texture arguments)."""
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
    return floor_kind, c, extra


def _backdrop(p: ParsedPrompt, rng, c: np.ndarray | None, labels: dict[str, str]):
    """(backdrop colour, second colour or None), jittered per seed; records the choice."""
    named_back = list(p.backdrop.colours)
    palette = p.palette
    back2 = None
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
        elif p.g("brightness") < -0.25:
            choice = str(rng.choice(_DARK_BACKDROPS))
            back = rgb_of(choice)
        else:
            choice = str(rng.choice(PALETTES["neutral"]))
            back = rgb_of(choice)
            if c is not None:  # harmonise a neutral wall with a coloured surface
                back = back * F32(0.8) + _shade(c, 0.5) * F32(0.2)
        if choice:
            labels["Backdrop"] = choice
    if p.backdrop.tone:
        back = _shade(back, p.backdrop.tone)
    if palette == "pastel":
        back = _shade(back, 0.15)
    return _jitter(rng, back), back2


def _walls(p: ParsedPrompt, rng, back, back2) -> tuple[np.ndarray, np.ndarray, str]:
    """(wall colour at the top, at the bottom, wall texture kind)."""
    gradient = p.style == "gradient" or back2 is not None
    if back2 is not None:
        wall_top, wall_bottom = back, _jitter(rng, back2)
    elif gradient:
        dark = float(back @ _LUMA) < 0.45
        wall_top, wall_bottom = (_shade(back, -0.35), _shade(back, 0.35)) if dark else \
            (_shade(back, -0.22), _shade(back, 0.08))
    else:
        wall_top, wall_bottom = _shade(back, -0.03), _shade(back, 0.02)
    bmat = _material(p.backdrop.material)
    wall_kind = bmat["material"] if bmat else ("paper" if p.layout == "sweep" else "plaster")
    return wall_top, wall_bottom, ("plain" if wall_kind in ("mirror", "glass") else wall_kind)


def _podium_look(p: ParsedPrompt, rng, back, labels: dict[str, str]):
    """(podium texture kind, podium colour or None)."""
    pmat = _material(p.podium_part.material)
    podium_kind = pmat["material"] if pmat else "plaster"
    if podium_kind in ("mirror", "glass"):
        podium_kind = "plain"
    if not p.podium:
        return podium_kind, None
    if p.podium_part.colours:
        podium_rgb = rgb_of(p.podium_part.colours[0])
    elif pmat:
        podium_rgb = np.array(pmat["rgb"], F32) / 255
    else:
        podium_rgb = _shade(back, float(rng.choice([-0.12, 0.2, 0.35])))
    if p.podium_part.tone:
        podium_rgb = _shade(podium_rgb, p.podium_part.tone)
    labels["Podium"] = " ".join(x for x in (p.podium_part.material, p.podium) if x)
    return podium_kind, _jitter(rng, podium_rgb, 0.03)


def _gloss(p: ParsedPrompt) -> float:
    """Gloss of what the product stands on: the podium's top when there is one, else the surface."""
    stand = _material(p.podium_part.material) if p.podium else _material(p.surface.material)
    gloss = float(stand["gloss"]) if stand else 0.0
    if p.podium and stand and stand["material"] in ("mirror", "glass"):
        gloss = 0.3
    return float(np.clip(gloss + p.g("gloss_add"), 0.0, 1.0))


def _geometry(p: ParsedPrompt, rng, setting: Setting, h: int, box, base_y: float):
    """(layout, horizon row or None, perspective (r, e, along x), podium ellipse ratio, notes).

    The camera view decides the horizon and how fast the surface converges: seen from the front
    the surface is a thin band just above the product's base (strong convergence); from above
    (``high``) the horizon rises with the base ellipse's ratio and the surface opens up; a flat
    lay (``top``) has no horizon at all. A product cut by the photo's bottom edge stands on
    nothing: the scene is the wall alone.
    """
    ph = max(1.0, box[3] - box[1])
    notes: list[str] = []
    layout = p.layout
    if "bottom" in setting.edges:
        if layout == "tabletop" or p.podium:
            notes.append("the product is cut by the photo's bottom edge: no surface or podium is drawn under it")
        return "wall", None, (2.0, 0.5, True), 0.0, notes
    if setting.view == "top":
        if p.podium:
            notes.append("flat lay (view top): the product lies on the surface, no podium")
        return "flatlay", None, (1.0, 1.0, True), 0.0, notes
    ratio = float(np.clip(setting.base_ratio, 0.06, 0.32)) if setting.view == "high" else 0.09
    horizon = None
    if layout == "tabletop":
        if setting.view == "high":  # looking down: the table opens up, the horizon rises
            up = max((0.35 + 1.1 * ratio) * ph, (0.2 + ratio) * h) + rng.uniform(-0.03, 0.03) * h
        else:                       # level: the table is a band just above the base
            up = rng.uniform(0.16, 0.26) * ph
        horizon = base_y - up - (0.25 * ph if p.podium else 0.0)
        lo, hi = 0.1 * h, base_y - 0.03 * h
        horizon = float(np.clip(horizon, min(lo, hi), max(lo, hi)))
    r = float(rng.uniform(1.35, 1.6)) if setting.view == "high" else float(rng.uniform(1.9, 2.3))
    return layout, horizon, (r, float(rng.uniform(0.38, 0.52)), True), ratio, notes


def _grading(p: ParsedPrompt, setting: Setting, notes: list[str]) -> float:
    """The scene's warmth, held within ``MAX_WARMTH_GAP`` of the product's own light."""
    asked = float(np.clip(p.g("warmth"), -1, 1))
    own = setting.warmth
    warmth = float(np.clip(asked, own - MAX_WARMTH_GAP, own + MAX_WARMTH_GAP))
    if abs(warmth - asked) > 0.05:
        notes.append(f"warmth {asked:+.2f} asked, {warmth:+.2f} used: the scene's light is kept close to "
                     f"the light the product was photographed in ({own:+.2f}), or it would look pasted in")
    return warmth


def resolve(p: ParsedPrompt, rng: np.random.Generator, w: int, h: int,
            box: tuple[float, float, float, float], base_y: float, setting: Setting | None = None) -> Look:
    """Turn the parsed prompt + this seed's random draws into concrete colours, geometry and light."""
    setting = setting or Setting()
    g = p.g
    labels: dict[str, str] = {}
    notes: list[str] = []
    floor_kind, c, extra = _surface_colour(p)
    back, back2 = _backdrop(p, rng, c, labels)
    if c is None:
        # no material: a plain surface in a shade of the backdrop (a painted or paper tabletop)
        c = _shade(back, rng.uniform(-0.1, 0.06))
    if p.surface.tone:
        c = _shade(c, p.surface.tone)
    floor_rgb = _jitter(rng, c, 0.03)
    pure_rgb = None
    if p.pure:
        named = p.backdrop.colours
        pure_rgb = (np.ones(3, F32) if (not named or named[0] == "white")
                    else np.array(colour_rgb(named[0]), F32) / 255)
    wall_top, wall_bottom, wall_kind = _walls(p, rng, back, back2)
    podium_kind, podium_rgb = _podium_look(p, rng, back, labels)
    arch_rgb = None
    if p.arch:
        arch_rgb = (rgb_of(p.backdrop.colours[1]) if len(p.backdrop.colours) > 1
                    else _shade(back, float(rng.choice([-0.14, -0.08, 0.12]))))
    light, light_label = resolve_light(p, setting)
    layout, horizon, persp, ratio, geo_notes = _geometry(p, rng, setting, h, box, base_y)
    notes += geo_notes
    podium = p.podium if layout not in ("wall", "flatlay") else None
    hardness = float(np.clip(0.35 + 0.5 * g("hardness"), 0.0, 1.0))
    shadow = float(np.clip(0.5 + g("shadow") + 0.15 * (hardness - 0.35), 0.15, 0.9))
    vignette = float(np.clip(0.18 + 0.5 * g("vignette") + rng.uniform(-0.04, 0.04), 0.0, 0.75))
    surface_label = p.surface.material or ("plain" if p.layout == "tabletop" else "sweep")
    labels.update({"Layout": layout, "Surface": surface_label, "Light": light_label,
                   "Light direction": f"{light[0]:.3f},{light[1]:.3f}", "View": setting.view})
    if not podium:
        labels.pop("Podium", None)
    if p.palette:
        labels["Palette"] = p.palette
    if p.moods:
        labels["Mood"] = " ".join(p.moods)
    extras = [x for x in (p.gobo and f"{p.gobo} shadows", p.bokeh and "bokeh", p.arch and "arch",
                          g("haze") and "haze", p.caustics and "caustics") if x]
    if extras:
        labels["Surroundings"] = " ".join(extras)
    return Look(
        w=w, h=h, layout=layout, box=box, base_y=base_y, horizon=horizon, wall_top=wall_top,
        wall_bottom=wall_bottom, wall_kind=wall_kind, floor_kind=floor_kind, floor_rgb=floor_rgb,
        floor_extra=extra, gloss=_gloss(p), light=light, light_name=light_label, hardness=hardness,
        shadow=shadow, warmth=_grading(p, setting, notes),
        brightness=float(np.clip(g("brightness"), -0.8, 0.8)), contrast=float(np.clip(g("contrast"), 0.6, 1.5)),
        saturation=float(np.clip(g("saturation"), 0.0, 1.6)), vignette=vignette,
        texture=float(np.clip(g("texture"), 0.0, 2.0)), pure=p.pure, pure_rgb=pure_rgb,
        podium=podium, podium_rgb=podium_rgb, podium_kind=podium_kind, arch_rgb=arch_rgb,
        gobo=p.gobo, bokeh=p.bokeh, haze=float(np.clip(g("haze"), 0, 1)),
        caustics=p.caustics, glow=float(np.clip(g("glow"), 0, 1.2)), spot=float(np.clip(g("spot"), 0, 1)),
        window=p.window, blur=p.blur, persp=persp, podium_ratio=ratio, labels=labels, notes=notes)


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
                 floor_y: int | None = None, work_side: int | None = None, engine: str = "studio",
                 setting: Setting | None = None) -> Scene:
    """Render one studio scene of ``size`` (W, H) for ``seed``.

    ``product_box`` (XYXY, canvas pixels) and ``floor_y`` (the product's base row) place the
    horizon, the podium and the light pool; without them a centred product is assumed.
    ``setting`` carries what the product's photo says (view, frame edges, light, noise, colour
    cast; :class:`Setting`). Returns a :class:`~packshot.types.Scene`, ``rgb`` H x W x 3 uint8.
    """
    t0 = time.perf_counter()
    parsed = prompt if isinstance(prompt, ParsedPrompt) else parse_prompt(prompt)
    setting = setting or Setting()
    W, H = int(size[0]), int(size[1])
    box, base = _box_and_base((W, H), product_box, floor_y)
    k = min(1.0, (work_side or work_side_for((W, H))) / max(W, H))
    w, h = max(8, int(round(W * k))), max(8, int(round(H * k)))
    kx, ky = w / W, h / H
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(parsed.text.encode("utf-8"))])
    wbox = (box[0] * kx, box[1] * ky, box[2] * kx, box[3] * ky)
    look = resolve(parsed, rng, w, h, wbox, base * ky, setting)

    notes: list[str] = list(look.notes)
    if parsed.generative:
        notes.append(needs_generative_note(parsed.generative))
    unused = [u for u in parsed.unused if u not in parsed.generative]
    if unused:
        notes.append("unused words: " + ", ".join(unused))

    if look.pure and look.podium is None and look.layout in ("sweep", "wall", "flatlay"):
        img8 = np.empty((H, W, 3), np.uint8)
        img8[:] = np.round(look.pure_rgb * 255).astype(np.uint8)
        notes.append("pure backdrop: one flat colour for every seed")
        return _scene(img8, seed, engine, look, None, notes, parsed, t0)

    img = _draw(look, rng, h, w)
    if not look.pure:
        _match_photo(img, setting)
    img8 = np.clip(img * F32(255) + F32(0.5), 0, 255).astype(np.uint8)
    if (w, h) != (W, H):
        img8 = cv2.resize(img8, (W, H), interpolation=cv2.INTER_CUBIC)
    if not look.pure:
        lighting.add_grain(img8, setting.noise, int(seed))
    floor_full = int(round(look.horizon / ky)) if look.horizon is not None else None
    return _scene(img8, seed, engine, look, floor_full, notes, parsed, t0)


def needs_generative_note(words: tuple[str, ...]) -> str:
    """The one-line note for scene words only a generative engine can draw."""
    quoted = ", ".join(f"'{w}'" for w in words)
    return (f"needs a generative engine: {quoted} cannot be drawn by the studio engine (it drew a studio "
            f"scene instead); use --engine diffusion (needs model weights) or --background PHOTO "
            f"(your own photo of the place)")


def _match_photo(img: np.ndarray, setting: Setting) -> None:
    """Grade the scene's white balance toward the colour cast of the product photo's light (70 %),
    so a product shot under warm light does not sit in a cold scene. In place."""
    gains = np.asarray(setting.cast, F32)
    if float(np.abs(gains - 1).max()) < 0.01:
        return
    img *= (F32(1) + F32(0.7) * (gains / F32(gains.mean()) - F32(1)))


def _draw(look: Look, rng, h: int, w: int) -> np.ndarray:
    """The scene at work resolution, float32 h x w x 3: wall and surface, light, props, grade."""
    scale = float(w)  # one scene unit = the canvas width
    # 1. backdrop (wall) and surface
    top = int(round(look.horizon)) if look.horizon is not None else h
    top = max(0, min(h, top))
    if look.layout == "flatlay":
        img = surfaces.flatlay(look, rng, h, w, scale)
        wall = img
    else:
        wall = surfaces.wall(look, rng, h, w, scale)
        img = wall.copy()
    if look.layout == "sweep":
        # the sweep's curve: the floor part catches more light, no visible line
        b = look.base_y
        t = _smoothstep(b - 0.22 * h, b + 0.08 * h, np.arange(h, dtype=F32))[:, None, None]
        img *= F32(1) + F32(0.05) * t
    if look.pure:
        img[:top] = look.pure_rgb
    if look.horizon is not None and top < h:
        img[top:] = surfaces.floor(look, rng, wall, top, h, w, scale)
    if look.arch_rgb is not None and look.layout != "flatlay":
        props.arch(look, rng, img, float(top if look.horizon is not None else look.base_y))
    # 2. light: a smooth map at 1/4 resolution, enlarged
    gob = None
    if not look.pure:
        gob = _light(look, rng, img, top, h, w)
    # 3. podium (lit by its own shading so it reads as a solid), grading, haze
    if look.podium:
        props.podium(look, rng, img, scale)
    if not look.pure:
        lighting.grade(img, look)
        if gob is not None and look.warmth > 0:
            # warm light, cooler shade: take part of the warm tint back where the pattern shades
            shade = np.clip((F32(gob.max()) - gob) / F32(max(float(gob.max() - gob.min()), 1e-3)), 0, 1)
            wv = 0.8 * look.warmth
            img *= F32(1) + shade[..., None] * np.array([-0.07 * wv, -0.01 * wv, 0.12 * wv], F32)
        if look.haze > 0:
            hz = look.haze * (F32(1) - _smoothstep(0, h, np.arange(h, dtype=F32)))[:, None, None] * F32(0.45)
            img += (F32(0.92) - img) * hz
    return img


def _light(look: Look, rng, img: np.ndarray, top: int, h: int, w: int) -> np.ndarray | None:
    """Apply the light map, pattern, glow, defocus and bokeh in place; returns the pattern."""
    lh, lw = max(8, h // 4), max(8, w // 4)
    L = lighting.light_map(look, rng, lh, lw, (top / h) if look.horizon is not None else None)
    L = cv2.resize(L, (w, h), interpolation=cv2.INTER_LINEAR)
    gob = None
    if look.gobo:
        gob = cv2.resize(lighting.gobo(look, rng, max(8, h // 2), max(8, w // 2)), (w, h),
                         interpolation=cv2.INTER_LINEAR)
        L *= gob
    img *= L[..., None]
    if look.glow > 0:
        lighting.glow(look, img)
    if look.layout == "flatlay":
        return gob
    limit = top if look.horizon is not None else int(look.base_y)
    if look.blur or look.bokeh:
        img[:limit] = cv2.GaussianBlur(img[:limit], (0, 0), max(1.0, w * 0.004))
    if look.bokeh:
        layer = lighting.bokeh(look, rng, h, w, limit)
        img[:limit] *= F32(0.85)
        img += layer * (F32(1) - _smoothstep(limit * 0.85, limit * 1.02, np.arange(h, dtype=F32)))[:, None, None]
    return gob


def _scene(img8, seed, engine, look: Look, floor_y, notes, parsed: ParsedPrompt, t0) -> Scene:
    params = dict(look.labels)
    params["Scene words"] = word_usage(parsed)
    return Scene(rgb=img8, seed=int(seed), engine=engine, light_dir=look.light, floor_y=floor_y,
                 gloss=round(look.gloss, 3), shadow_strength=round(look.shadow, 3), needs_shadow=True,
                 generated=False, notes=tuple(notes), params=params,
                 timings={"studio": time.perf_counter() - t0})


def word_usage(parsed: ParsedPrompt) -> str:
    """How each word of the prompt was used: 'marble: surface; morning: time; beach: needs a
    generative engine; ...' (recorded in the parameters)."""
    parts = [f"{m.text}: {m.category}" for m in parsed.matches]
    parts += [f"{w}: needs a generative engine" for w in parsed.generative]
    parts += [f"{w}: unused" for w in parsed.unused if w not in parsed.generative]
    return "; ".join(parts)
