"""Scene suggestions from the product itself: ``suggest(photo, n) -> [Suggestion]``.

Each suggestion is a structured scene prompt (surface, surroundings, background, lighting, mood)
plus its one-line ``prompt``. Every ``prompt`` is made only of words the studio engine renders
(checked with :func:`packshot.prompts.parse_prompt`: no unused words), so it works without weights.

The rules, all deterministic (same photo, same suggestions):

* **Palette** (:mod:`packshot.prompts.measure`): the product's main colour (the most colourful
  swatch holding >= 20 % of it) gives a *complementary* backdrop (the vocabulary colour whose hue
  is nearest to the main hue + 180 deg), two *analogous* ones (+-35 deg) and *neutral* ones
  (dark products get light neutrals, light products darker ones, warm products warm neutrals).
  Backdrops are toned "pale" (or "deep" behind a very light product) so the product stays the
  most saturated thing in the frame. A colourless product gets contrasting and tonal neutrals.
* **Shape and size** decide the arrangement: a top view -> flat lay; a silhouette with a narrow
  top and its widest row in the upper 40 % (a hanger, a strap) -> hanging; tall (h/w >= 1.25) ->
  podium; otherwise tabletop.
* **Finish**: glossy products get reflective surfaces (glossy marble, smoked glass, mirror) and
  softbox light; matte products get soft diffused or window light on matte materials.
* **View and light**: the arrangement follows the view found in the photo, and the light comes
  from the side the product is lit from in the photo (its shading is baked in).
* **Caption** (optional, :mod:`packshot.captioner`): the product noun picks a category whose
  surfaces and surroundings go first (shoes: wooden floor, concrete; cosmetics: marble, water,
  stone; food: countertop, table); the noun goes into ``diffusion_prompt`` only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidInputError
from .categories import CATEGORIES, category_of
from .describe import SceneFields
from .measure import Traits, hue_distance, named_colours

MAX_SUGGESTIONS = 12

@dataclass(frozen=True)
class Suggestion(SceneFields):
    """One structured scene. ``request``: GenerateRequest fields that go with it (prompt,
    placement, and view when the engine takes one)."""

    diffusion_prompt: str
    palette: str                     # complementary | analogous | neutral | tonal | category
    arrangement: str                 # tabletop | podium | flat lay | hanging
    view: str
    why: tuple[str, ...] = ()
    request: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["why"] = list(self.why)
        return d


def arrangement_of(t: Traits, category: str | None = None) -> tuple[str, str]:
    """(arrangement, reason)."""
    if category == "garment" and t.view != "top":
        return "hanging", "a garment: hanging"
    if t.view == "top":
        return "flat lay", "seen from the top: flat lay"
    if t.narrow_top and t.widest_at <= 0.4 and t.shape != "wide":
        return "hanging", "narrow top, widest near the top (a hanger or strap): hanging"
    if t.shape == "tall":
        return "podium", f"tall silhouette (h/w {t.aspect:.2f}): podium"
    return "tabletop", f"{t.shape} silhouette (h/w {t.aspect:.2f}): tabletop"


def _nearest(hue: float, exclude: set[str], min_chroma: float = 20.0) -> tuple[str, float]:
    cands = [(hue_distance(h, hue), n, h) for n, L, c, h in named_colours(True)
             if c >= min_chroma and n not in exclude and " " not in n]
    d, name, h = min(cands)
    return name, h


def _tone(t: Traits) -> str:
    return "deep" if t.lightness >= 75 else "pale"


def backdrops(t: Traits) -> list[tuple[str, str, str]]:
    """[(kind, colour words, reason)]: complementary, neutral, analogous, neutral, analogous."""
    own = {s.name for s in t.palette}
    warm = t.warm
    if t.lightness < 45:
        neutrals = ["ivory", "beige"] if warm else ["off white", "light grey"]
    elif t.lightness > 70:
        neutrals = ["taupe", "charcoal"] if warm else ["light grey", "charcoal"]
    else:
        neutrals = ["cream", "greige"] if warm else ["white", "light grey"]
    neutrals = [n for n in neutrals if n not in own] + ["off white"]
    out: list[tuple[str, str, str]] = []
    if t.achromatic:
        contrast = "charcoal" if t.lightness > 60 else "ivory"
        out.append(("neutral", contrast, f"colourless product (L* {t.lightness:.0f}): contrasting {contrast}"))
        out.append(("neutral", neutrals[0], f"neutral {neutrals[0]}"))
        out.append(("tonal", f"{'light' if t.lightness < 60 else 'dark'} grey",
                    "tonal grey, one step from the product"))
        out.append(("neutral", neutrals[1], f"neutral {neutrals[1]}"))
        out.append(("analogous", "pale sage", "a quiet accent (sage) for a colourless product"))
        return out
    h = t.main.hue
    comp, ch = _nearest((h + 180.0) % 360.0, own)
    a1, ah1 = _nearest((h + 35.0) % 360.0, own | {comp})
    a2, ah2 = _nearest((h - 35.0) % 360.0, own | {comp, a1})
    tone = _tone(t)
    out.append(("complementary", f"{tone} {comp}",
                f"complementary to the product's {t.main.name} (hue {h:.0f} -> {ch:.0f} deg)"))
    out.append(("neutral", neutrals[0], f"neutral {neutrals[0]} for a {'warm' if warm else 'cool'} "
                                        f"product of L* {t.lightness:.0f}"))
    out.append(("analogous", f"{tone} {a1}", f"analogous to {t.main.name} (hue {ah1:.0f} deg)"))
    out.append(("neutral", neutrals[1], f"neutral {neutrals[1]}"))
    out.append(("analogous", f"{tone} {a2}", f"analogous to {t.main.name} (hue {ah2:.0f} deg)"))
    return out


def _surfaces(t: Traits, arrangement: str, category: str | None) -> tuple[list[str], str]:
    """Surface wordings in order of preference, and the reason."""
    if arrangement == "hanging":
        return [""], "hanging: no surface"
    if arrangement == "flat lay":
        return ["on {c} linen", "on {c} paper", "on {c} plaster"], "flat lay: the backdrop is the surface"
    if t.finish == "glossy":
        base = ["on a glossy white marble {n}", "on a black glass {n}", "on a mirror {n}", "on a glossy black marble {n}"]
        why = f"glossy finish ({t.specular:.1%} specular pixels): reflective surfaces"
    else:
        base = ["on a light oak {n}", "on a beige linen {n}", "on a concrete {n}", "on a travertine {n}"]
        why = f"matte finish ({t.specular:.1%} specular pixels): matte materials, soft light"
    noun = "podium" if arrangement == "podium" else "table"
    out = [s.format(n=noun) for s in base]
    if category and arrangement in ("tabletop", "podium"):
        cat = [s for s in CATEGORIES[category]["surfaces"] if s]
        if t.finish == "glossy":  # keep the first reflective surface first
            out = [out[0], *cat, *out[1:]]
        else:
            out = [*cat, *out]
    return list(dict.fromkeys(out)), why


def _lighting(t: Traits, arrangement: str) -> list[str]:
    side = t.light if t.light in ("left", "right") else "front"
    window = f"window light from the {side}" if side != "front" else "soft window light"
    if arrangement == "flat lay":
        return ["soft overhead light", window, "diffused overhead light"]
    if t.finish == "glossy":
        return [f"softbox light from the {side}", window, f"softbox light from the {side}, rim light"]
    return [f"soft diffused light from the {side}", window,
            f"soft natural light from the {side}"]


def _moods(t: Traits, category: str | None) -> list[str]:
    if t.achromatic:
        base = ["minimal", "modern", "elegant", "calm"]
    elif t.warm:
        base = ["warm", "cozy", "natural", "golden hour"]
    else:
        base = ["fresh", "clean", "calm", "airy"]
    if t.finish == "glossy":
        base.insert(1, "premium")
    if category:
        base = [*CATEGORIES[category]["moods"], *base]
    return list(dict.fromkeys(base))


_SURROUNDINGS = ("", "leaves shadows", "soft bokeh", "window shadow", "dappled sunlight", "arch", "haze",
                 "water caustics")


def _compose(surface_t: str, colour: str, arrangement: str) -> tuple[str, str]:
    """(surface text, background text) for one backdrop colour."""
    if arrangement == "flat lay":
        return surface_t.format(c=colour), ""
    if arrangement == "podium":
        return surface_t, f"{colour} backdrop"
    return surface_t, f"{colour} wall"


def suggest_from_traits(t: Traits, n: int = 6, noun: str | None = None) -> list[Suggestion]:
    """The rules of the module docstring on measured traits (and an optional product noun)."""
    from . import build_prompt, parse_prompt

    if not 1 <= int(n) <= MAX_SUGGESTIONS:
        raise InvalidInputError(f"n must be 1..{MAX_SUGGESTIONS}, got {n!r}")
    category = category_of(noun)
    arrangement, why_arr = arrangement_of(t, category)
    surfaces, why_surf = _surfaces(t, arrangement, category)
    lights = _lighting(t, arrangement)
    moods = _moods(t, category)
    surroundings = list(_SURROUNDINGS)
    if category:
        surroundings = list(dict.fromkeys(["", *CATEGORIES[category]["surroundings"], *_SURROUNDINGS]))
    cols = backdrops(t)
    placement = "center" if arrangement in ("hanging", "flat lay") else "surface"
    why_light = f"light from the {t.light} as in the photo" if t.light in ("left", "right") \
        else "frontal light as in the photo"
    out: list[Suggestion] = []
    seen: set[str] = set()
    i = 0
    while len(out) < n and i < 4 * MAX_SUGGESTIONS:
        kind, colour, why_col = cols[i % len(cols)]
        surf_t = surfaces[i % len(surfaces)]
        surface, background = _compose(surf_t, colour, arrangement)
        fields = {"surface": surface, "surroundings": surroundings[(i + i // len(cols)) % len(surroundings)],
                  "background": background, "lighting": lights[i % len(lights)],
                  "mood": moods[i % len(moods)] if i < len(moods) else ", ".join(moods[:2])}
        if i >= len(cols):  # second round: same colours, other surroundings and moods
            fields["mood"] = moods[(i + 1) % len(moods)]
        i += 1
        prompt = build_prompt(fields)
        if prompt in seen or parse_prompt(prompt).unused:
            continue  # a wording the studio engine would not fully render is never offered
        seen.add(prompt)
        diffusion = f"product photo of {_article(noun)} {noun}, {prompt}" if noun else f"product photo, {prompt}"
        req: dict[str, Any] = {"prompt": prompt, "placement": placement}
        if _schema_has("view"):
            req["view"] = t.view
        if noun and _schema_has("product"):
            req["product"] = noun  # named in diffusion prompts
        out.append(Suggestion(**fields, prompt=prompt, diffusion_prompt=diffusion, palette=kind,
                              arrangement=arrangement, view=t.view,
                              why=(why_col, why_arr, why_surf, why_light, f"view: {t.view}"), request=req))
    return out


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _schema_has(name: str) -> bool:
    from ..schema import GenerateRequest

    return name in GenerateRequest.model_fields


def product_traits(image, settings=None, cut=None) -> Traits:
    """Cut the product out (packshot's automatic cutout) and measure it."""
    from ..pipeline import default_pipeline
    from .measure import measure

    cut = cut if cut is not None else default_pipeline(settings).cutout(image)
    return measure(cut.photo.rgb, cut.alpha)


def suggest(image, n: int = 6, *, settings=None, captioner: str | None = None, cut=None) -> list[Suggestion]:
    """n scene suggestions for the product in ``image`` (path, bytes, array or Photo).

    ``captioner``: a captioning model id or folder (default ``settings.captioner``); None and no
    setting: suggestions come from the measured product only.
    """
    from ..config import Settings

    if not 1 <= int(n) <= MAX_SUGGESTIONS:
        raise InvalidInputError(f"n must be 1..{MAX_SUGGESTIONS}, got {n!r}")
    settings = settings or Settings.from_env()
    from ..pipeline import default_pipeline

    cut = cut if cut is not None else default_pipeline(settings).cutout(image)
    traits = product_traits(None, settings, cut)
    noun = None
    ref = captioner or getattr(settings, "captioner", None)
    if ref:
        from ..captioner import product_noun

        noun = product_noun(cut, ref, settings)
    return suggest_from_traits(traits, n, noun)
