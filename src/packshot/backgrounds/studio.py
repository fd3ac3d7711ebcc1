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

import time
import zlib

import cv2
import numpy as np

from ..prompts import ParsedPrompt, parse_prompt
from ..types import Box, Photo, ProgressFn, Scene, Size, no_progress
from . import SceneJob
from . import light as lighting
from . import props, surfaces
from .look import Look, Setting, resolve
from .photo import photo_scene
from .textures import F32, smoothstep as _smoothstep
from .view import estimate_light, photo_cast, photo_exposure, product_noise

WORK_SIDE = (640, 1024)  # internal render's longer side: half the canvas's, within these bounds


def work_side_for(size: Size, bounds: tuple[int, int] = WORK_SIDE) -> int:
    """Longer side of the internal render for a canvas: half the canvas's, clamped to ``bounds``."""
    long_side = max(size)
    return int(min(long_side, max(bounds[0], min(bounds[1], long_side // 2))))


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
                out.append(flat_scene((W, H), placement.background_rgb, seed, self.name,
                                      prompt_given="prompt" in job.request.model_fields_set))
            elif background:
                out.append(photo_scene(background if isinstance(background, Photo) else str(background),
                                       (W, H), seed, self.name, max_pixels))
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
    exposure = photo_exposure(job.photo.rgb) if job.photo is not None else None
    return Setting(view=pl.view, base_ratio=pl.base_ratio, edges=pl.edges, light_hint=hint,
                   noise=product_noise(rgb, alpha), cast=cast, exposure=exposure)


def flat_scene(size: Size, rgb: tuple[int, int, int], seed: int, engine: str = "studio", *,
               prompt_given: bool = True) -> Scene:
    """A plain backdrop of exactly ``rgb`` (marketplace rule, e.g. Amazon's pure white). The note
    that the prompt is not used is only for a user who gave one."""
    t0 = time.perf_counter()
    W, H = size
    img = np.empty((H, W, 3), np.uint8)
    img[:] = np.array(rgb, np.uint8)
    r, g, b = (int(v) for v in rgb)
    return Scene(rgb=img, seed=seed, engine=engine, light_dir=(0.0, 1.0), floor_y=None, gloss=0.0,
                 shadow_strength=0.5, needs_shadow=True, generated=False,
                 notes=(f"plain background RGB {r},{g},{b} required by the preset: the prompt's scene is not used",)
                 if prompt_given else (),
                 params={"Background": f"plain {r} {g} {b}"},
                 timings={"studio": time.perf_counter() - t0})


# -- resolving the prompt into one look ------------------------------------------------------------
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
    # grading to the photo's exposure is the expected case: recorded in the parameters, not a note
    gain = _match_photo(img, setting) if not look.pure else 1.0
    img8 = np.clip(img * F32(255) + F32(0.5), 0, 255).astype(np.uint8)
    if (w, h) != (W, H):
        img8 = cv2.resize(img8, (W, H), interpolation=cv2.INTER_CUBIC)
    if not look.pure:
        lighting.add_grain(img8, setting.noise, int(seed))
    floor_full = int(round(look.horizon / ky)) if look.horizon is not None else None
    scene = _scene(img8, seed, engine, look, floor_full, notes, parsed, t0)
    if gain != 1.0:
        scene.params["Exposure match"] = f"scene graded to {gain:.0%} of its brightness (the photo's exposure)"
    return scene


def needs_generative_note(words: tuple[str, ...]) -> str:
    """The one-line note for scene words only a generative engine can draw."""
    quoted = ", ".join(f"'{w}'" for w in words)
    return (f"needs a generative engine: {quoted} cannot be drawn by the studio engine (it drew a studio "
            f"scene instead); use --engine diffusion (needs model weights) or --background PHOTO "
            f"(your own photo of the place)")


EXPOSURE_BOUNDS = (0.8, 1.0)  # the scene is darkened by at most 20 %, never brightened (a dark mood stays)
KEY_PERCENTILE = 97          # the scene's key brightness: its brightest few per cent (its lit part)


def _match_photo(img: np.ndarray, setting: Setting) -> float:
    """Grade the scene to the product photo's light, in place (the product's pixels are never
    touched: they are composited over the scene afterwards).

    White balance: toward the colour cast of the photo's light (70 %), so a product shot under
    warm light does not sit in a cold scene. Brightness: the scene's key brightness (the
    ``KEY_PERCENTILE`` of its luminance) toward the photo's exposure (how bright its key light
    renders the backdrop, :func:`~packshot.backgrounds.view.photo_exposure`), by one gain within
    ``EXPOSURE_BOUNDS``: a dim, under-exposed product photo does not sit in a glaring scene, its
    whites greyer than the scene's. Only darkening: a well-exposed photo (white backdrop, about
    1.0) leaves the scene as drawn, and a dark, moody scene is never lifted. Returns the gain."""
    gains = np.asarray(setting.cast, F32)
    if float(np.abs(gains - 1).max()) >= 0.01:
        img *= (F32(1) + F32(0.7) * (gains / F32(gains.mean()) - F32(1)))
    gain = exposure_gain(img, setting.exposure)
    if gain != 1.0:
        img *= F32(gain)
    return gain


def exposure_gain(img: np.ndarray, exposure: float | None) -> float:
    """The brightness gain that brings the scene's key (float image 0..1) to ``exposure``, bounded."""
    if exposure is None:
        return 1.0
    small = img[::4, ::4] @ np.array([0.299, 0.587, 0.114], F32)
    key = float(np.percentile(small, KEY_PERCENTILE))
    if key < 1e-3:
        return 1.0
    gain = float(np.clip(exposure / key, *EXPOSURE_BOUNDS))
    return 1.0 if abs(gain - 1.0) < 0.01 else gain


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
    if parsed.generative:
        params["Needs generative engine"] = ", ".join(parsed.generative)
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
