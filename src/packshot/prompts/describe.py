"""A reference scene photo in the five structured fields: ``describe(photo) -> Description``.

The fields (surface, surroundings, background, lighting, mood) describe the *scene*, never the
product in it, so the result fits any product (the structure of the captioned datasets packshot
grows out of). Two sources:

* **Measured** (no weights): the product, if packshot's automatic cutout finds one, is masked
  out; the upper 55 % of what is left is the background, the lower 30 % the surface. Each gets
  its nearest vocabulary colour (:mod:`packshot.prompts.measure`); the surface is "textured" when
  its fine detail (std of a 5 px high-pass) exceeds 6 L*, else "smooth". Lighting: the brighter
  side (left/right/top, else frontal), "soft" when the scene's L* spread (p95 - p5) is under 55,
  else "hard". Mood: "bright, airy" above a median L* of 70, "dark, moody" below 35, else
  "natural"; "warm" / "cool" when the mean b* is above 12 / below -4.
* **Captioner** (``settings.captioner`` or ``captioner=``): its caption is read with the studio
  vocabulary (:func:`packshot.prompts.parse_prompt`); only scene words are kept (a product noun
  is not in the vocabulary), and fields the caption leaves empty are filled from the measures.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import FIELDS, build_prompt, parse_prompt
from .measure import colour_name, light_side, to_lab


_DIRECTIONS = ("left", "right", "above", "top", "overhead", "behind", "front", "side")


@dataclass(frozen=True)
class SceneFields:
    """The five structured fields of a scene and their one-line prompt."""

    surface: str
    surroundings: str
    background: str
    lighting: str
    mood: str
    prompt: str


@dataclass(frozen=True)
class Description(SceneFields):
    source: dict[str, str]                 # field -> "measured" | "caption"
    measured: dict[str, Any] = field(default_factory=dict)
    caption: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _median_rgb(rgb: np.ndarray, mask: np.ndarray) -> tuple[int, int, int]:
    pix = rgb[mask] if mask.any() else rgb.reshape(-1, 3)
    return tuple(int(v) for v in np.median(pix, axis=0))


def measure_scene(rgb: np.ndarray, product: np.ndarray | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """(fields, numbers) measured on a scene photo; ``product`` (HxW float) is left out."""
    import cv2

    H, W = rgb.shape[:2]
    if H * W > 1_000_000:
        f = (1_000_000 / (H * W)) ** 0.5
        size = (max(1, round(W * f)), max(1, round(H * f)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        if product is not None:
            product = cv2.resize(product.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        H, W = rgb.shape[:2]
    keep = np.ones((H, W), bool) if product is None else product < 0.05
    if keep.sum() < 0.05 * H * W:  # the product fills the frame: measure the whole photo
        keep = np.ones((H, W), bool)
    lab = to_lab(rgb)
    L = lab[..., 0]
    rows = np.arange(H)[:, None]
    back = keep & (rows < 0.55 * H)
    surf = keep & (rows >= 0.70 * H)
    bg_rgb, sf_rgb = _median_rgb(rgb, back), _median_rgb(rgb, surf)
    detail = L - cv2.GaussianBlur(L, (0, 0), 5)
    texture = float(detail[surf].std()) if surf.any() else 0.0
    side = light_side(L, keep.astype(np.float32))
    spread = float(np.percentile(L[keep], 95) - np.percentile(L[keep], 5))
    med = float(np.median(L[keep]))
    warmth = float(lab[..., 2][keep].mean())
    quality = "soft" if spread < 55 else "hard"
    lighting = f"{quality} light from the {side}" if side in ("left", "right") else \
        f"{quality} overhead light" if side == "top" else f"{quality} frontal light"
    mood = "bright, airy" if med > 70 else "dark, moody" if med < 35 else "natural"
    if warmth > 12:
        mood += ", warm"
    elif warmth < -4:
        mood += ", cool"
    fields = {"surface": f"on a {colour_name(sf_rgb)} {'textured' if texture > 6 else 'smooth'} surface",
              "surroundings": "", "background": f"{colour_name(bg_rgb)} backdrop",
              "lighting": lighting, "mood": mood}
    numbers = {"background_rgb": list(bg_rgb), "surface_rgb": list(sf_rgb), "surface_texture": round(texture, 2),
               "median_lightness": round(med, 1), "lightness_spread": round(spread, 1),
               "mean_b": round(warmth, 1), "light": side, "product_masked": product is not None}
    return fields, numbers


def fields_from_caption(caption: str) -> dict[str, str]:
    """Scene words of a caption, sorted into the five fields (empty when the caption has none)."""
    p = parse_prompt(caption)

    def part(x, noun: str) -> str:
        words = [*list(dict.fromkeys(x.colours))[:2], *([x.material] if x.material else [])]
        return f"{' '.join(words)} {noun}".strip() if words else ""

    surface = part(p.surface, "surface")
    if surface:
        surface = "on a " + surface
    if p.podium:
        pod = part(p.podium_part, "podium") or "podium"
        surface = f"{surface}, {pod}" if surface else "on a " + pod
    cats = {m.phrase: m.category for m in p.matches}
    surroundings = ", ".join(w for w, c in cats.items() if c == "surroundings")
    dirs = [w for w in p.light_words if w in _DIRECTIONS]
    kinds = [w for w in p.light_words if w not in _DIRECTIONS]
    lighting = ""
    if p.light_words:
        lighting = " ".join(kinds) or "light"
        lighting += "" if "light" in lighting or kinds and kinds[-1] in ("lit", "backlit") else " light"
        lighting += f" from the {' '.join(dirs)}" if dirs else ""
    mood = ", ".join(p.moods)
    return {"surface": surface, "surroundings": surroundings, "background": part(p.backdrop, "backdrop"),
            "lighting": lighting,
            "mood": mood}


def describe(image, *, settings=None, captioner: str | None = None) -> Description:
    """The five structured fields of a reference scene photo (path, bytes, array or Photo)."""
    from ..config import Settings
    from ..errors import NoProductFoundError
    from ..pipeline import as_photo, default_pipeline

    settings = settings or Settings.from_env()
    photo = as_photo(image, settings)
    try:
        product = default_pipeline(settings).cutout(photo).alpha
    except NoProductFoundError:
        product = None
    fields, numbers = measure_scene(photo.rgb, product)
    source = {f: "measured" for f in FIELDS}
    caption = None
    ref = captioner or getattr(settings, "captioner", None)
    if ref:
        from ..captioner import caption_image

        caption = caption_image(photo.rgb, ref, settings, task="scene")
        for k, v in fields_from_caption(caption).items():
            if v:
                fields[k], source[k] = v, "caption"
    return Description(**fields, prompt=build_prompt(fields), source=source, measured=numbers, caption=caption)
