"""Resolving a prompt into one scene's look: colours, materials, camera geometry and light.

:func:`resolve` turns the parsed prompt, the product's :class:`Setting` (what its photo says:
view, frame edges, light side, noise, colour cast) and one seed's random draws into a
:class:`Look`, everything the drawing code of :mod:`packshot.backgrounds.studio` needs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from ..prompts import ParsedPrompt
from ..prompts.vocabulary import PALETTES, VOCABULARY, colour_rgb
from .textures import F32, LUMA as _LUMA, shade as _shade

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


@dataclass(frozen=True)
class Setting:
    """What the product and its photo ask of every scene of one request (the same for each seed).

    ``view``: front | high | top (flat lay); ``base_ratio``: height/width of the product's base
    ellipse (the podium's top matches it); ``edges``: photo borders that cut the product (then no
    surface or podium is drawn under it); ``light_hint``: (dx, reason) from the product's own
    shading, or None; ``noise``: the product's measured sensor noise at the output size (the
    scene's grain matches it); ``cast``: the colour cast of the photo's light (r, g, b gains);
    ``exposure``: how bright the photo's key light renders its backdrop (0..1, see
    :func:`packshot.backgrounds.view.photo_exposure`), None when the photo does not tell.
    """

    view: str = "front"
    base_ratio: float = 0.0
    edges: tuple[str, ...] = ()
    light_hint: tuple[float, str] | None = None
    noise: float = 0.0035
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exposure: float | None = None

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
    if floor_kind == "wood":
        extra["species"] = p.surface.material     # oak, walnut, pine... (textures.SPECIES)
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
