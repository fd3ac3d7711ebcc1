"""The studio engine's vocabulary, as data: category -> word -> effect.

Every word or phrase the studio engine understands is listed here, with what it does. The parser
(:func:`packshot.prompts.parse_prompt`) matches these (longest phrase first, simple plurals and
suffixes stripped), the renderer (:mod:`packshot.backgrounds.studio`) reads the effects, the dice
(:mod:`packshot.prompts.dice`) draws from them, and ``docs/vocabulary.md`` is generated from them
(:func:`vocabulary_markdown`; ``packshot prompt vocab --markdown``). Words that are not here and are
not stop-words are reported in the scene's notes as "unused words: ...", never dropped silently.

Effect keys (each entry is a dict; ``doc`` is the human description):

* ``target``: ``surface`` | ``backdrop`` | ``podium``: a noun that the colours and materials just
  before it describe ("white marble *table*", "sage *wall*", "stone *podium*").
* ``layout``: ``tabletop`` (a surface meeting a wall at a contact line) or ``sweep`` (seamless).
* ``podium``: ``cylinder`` | ``box``: a plinth under the product.
* ``material``: a texture kind of :mod:`packshot.backgrounds.textures`; ``rgb`` its default colour
  (sRGB 0..255); ``gloss`` 0..1 (glossy surfaces get a reflection from the compositor).
* ``rgb`` alone: a colour. ``tone``: lighter (+) / darker (-) for the next colour, else the scene.
* ``palette``: a colour family used when no colour is named, and a grade when one is.
* ``light``: (dx, dy) direction the light *travels* in image coordinates (x right, y down);
  several are averaged. ``hardness`` 0 (soft) .. 1 (hard). ``shadow``: cast-shadow strength.
* grading: ``brightness`` (-1..1), ``contrast`` (multiplier), ``saturation`` (multiplier),
  ``warmth`` (-1 cool .. +1 warm), ``vignette`` (0..1), ``texture`` (multiplier of texture contrast),
  ``gloss_add``, ``blur`` (background defocus).
* surroundings: ``gobo`` (leaves | blinds | window | dapple: a shadow pattern thrown by the light),
  ``bokeh``, ``arch``, ``haze``, ``caustics``, ``spot`` (a pool of light behind the product),
  ``glow`` (a soft halo behind the product).
* ``pure``: the backdrop is one exact flat colour (no gradient, vignette or grain).
* ``none``: understood and accepted, changes nothing on its own (grammar, photography words).
"""
from __future__ import annotations

import math
from typing import Any

# words that carry no meaning for the scene; never reported as unused
STOP_WORDS = frozenset("""
a an the on onto upon with within in into of and at to from by for its it some very is are as or
plus over this that these those there here which while where be being set sitting standing
placed place stands sits resting rests like made just slightly subtle subtly softly
beautiful nice lovely pretty against around beside near next under underneath below beneath
between across through all
""".split())

# textual clean-up before matching: British/American spellings and glued words
SPELLINGS = {"gray": "grey", "color": "colour", "colors": "colours", "colored": "coloured",
             "aluminum": "aluminium", "centre": "center", "cosy": "cozy", "catalog": "catalogue",
             "backlight": "backlit", "backlighting": "backlit", "toplight": "overhead",
             "offwhite": "off white", "minimalistic": "minimalist", "marbled": "marble",
             "tabletops": "tabletop", "countertops": "countertop", "e-commerce": "ecommerce"}

# places and things only a generative engine can paint: the studio engine says so in a note
# (offering --engine diffusion or --background PHOTO) instead of silently drawing a sweep
GENERATIVE_SCENES = frozenset("""
beach sea ocean coast shore seaside waves surf lake river pool waterfall island tropical palm
kitchen bathroom bedroom bed sofa couch living room office cafe coffeeshop restaurant bar shop store
boutique supermarket street city urban road car garage porch balcony terrace patio garden park
forest woods jungle tree trees field meadow grass lawn flowers mountain mountains hill desert
snow ice sky clouds space galaxy fireplace fire rocks cave farm barn vineyard gym stadium
christmas rooftop windowsill bookshelf library classroom hospital airport train
""".split())

SUFFIXES = (("ies", "y"), ("es", ""), ("s", ""), ("ed", "e"), ("ed", ""), ("ing", ""), ("ish", ""),
            ("y", ""), ("en", ""))


def _dir(angle_deg: float) -> tuple[float, float]:
    """A unit travel direction from an angle: 0 deg = travelling right (+x), 90 deg = down (+y)."""
    a = math.radians(angle_deg)
    return round(math.cos(a), 3), round(math.sin(a), 3)


def _c(r: int, g: int, b: int, doc: str = "") -> dict[str, Any]:
    return {"rgb": (r, g, b), "doc": doc or f"colour #{r:02x}{g:02x}{b:02x}"}


def _m(kind: str, rgb: tuple[int, int, int], gloss: float, doc: str) -> dict[str, Any]:
    return {"material": kind, "rgb": rgb, "gloss": gloss, "doc": doc}


_NONE = "understood; changes nothing on its own"

# category -> {"doc": what the category does, "words": word/phrase -> effect}
VOCABULARY: dict[str, dict[str, Any]] = {
    "layout": {
        "doc": "Scene nouns. Colours and materials just before them describe that part of the scene. "
               "A surface noun or a surface material gives a tabletop (a surface meeting a wall at a "
               "contact line above the product's base); otherwise the backdrop is a seamless sweep.",
        "words": {
            "table": {"target": "surface", "layout": "tabletop", "doc": "tabletop under the product"},
            "tabletop": {"target": "surface", "layout": "tabletop", "doc": "tabletop under the product"},
            "counter": {"target": "surface", "layout": "tabletop", "doc": "tabletop under the product"},
            "countertop": {"target": "surface", "layout": "tabletop", "doc": "tabletop under the product"},
            "desk": {"target": "surface", "layout": "tabletop", "doc": "tabletop under the product"},
            "shelf": {"target": "surface", "layout": "tabletop", "doc": "tabletop under the product"},
            "floor": {"target": "surface", "layout": "tabletop", "doc": "floor under the product"},
            "ground": {"target": "surface", "layout": "tabletop", "doc": "floor under the product"},
            "surface": {"target": "surface", "layout": "tabletop", "doc": "tabletop under the product"},
            "slab": {"target": "surface", "layout": "tabletop", "doc": "tabletop under the product"},
            "board": {"target": "surface", "layout": "tabletop", "doc": "tabletop under the product"},
            "tablecloth": {"target": "surface", "layout": "tabletop", "doc": "a cloth-covered surface under the product"},
            "drape": {"target": "surface", "layout": "tabletop", "doc": "draped cloth under the product"},
            "wall": {"target": "backdrop", "doc": "the backdrop behind the product"},
            "background": {"target": "backdrop", "doc": "the backdrop behind the product"},
            "backdrop": {"target": "backdrop", "doc": "the backdrop behind the product"},
            "studio": {"target": "backdrop", "layout": "sweep", "doc": "seamless studio sweep (unless a surface is named)"},
            "sweep": {"target": "backdrop", "layout": "sweep", "doc": "seamless paper sweep, no horizon line"},
            "seamless": {"layout": "sweep", "doc": "seamless sweep, no horizon line"},
            "cyclorama": {"target": "backdrop", "layout": "sweep", "doc": "seamless sweep, no horizon line"},
            "cyc": {"target": "backdrop", "layout": "sweep", "doc": "seamless sweep, no horizon line"},
            "infinity": {"layout": "sweep", "doc": "seamless sweep, no horizon line"},
            "infinity cove": {"target": "backdrop", "layout": "sweep", "doc": "seamless sweep, no horizon line"},
            "gradient": {"target": "backdrop", "style": "gradient", "doc": "strong top-to-bottom gradient; two colours blend"},
            "ombre": {"target": "backdrop", "style": "gradient", "doc": "strong top-to-bottom gradient; two colours blend"},
            "podium": {"target": "podium", "podium": "cylinder", "doc": "round plinth under the product"},
            "pedestal": {"target": "podium", "podium": "cylinder", "doc": "round plinth under the product"},
            "cylinder": {"target": "podium", "podium": "cylinder", "doc": "round plinth under the product"},
            "riser": {"target": "podium", "podium": "cylinder", "doc": "round plinth under the product"},
            "display stand": {"target": "podium", "podium": "cylinder", "doc": "round plinth under the product"},
            "plinth": {"target": "podium", "podium": "box", "doc": "square block under the product"},
            "block": {"target": "podium", "podium": "box", "doc": "square block under the product"},
            "cube": {"target": "podium", "podium": "box", "doc": "square block under the product"},
            "pure": {"pure": True, "doc": "one exact flat colour: no gradient, vignette or grain"},
            "plain": {"texture": 0.4, "plain": True, "doc": "quiet backdrop: less texture"},
            "solid": {"texture": 0.4, "plain": True, "doc": "quiet backdrop: less texture"},
            "flat": {"texture": 0.4, "plain": True, "doc": "quiet backdrop: less texture"},
        },
    },
    "surface": {
        "doc": "Materials: a procedural texture (deterministic per seed). They describe the noun that "
               "follows (\"marble podium\", \"concrete wall\"); alone they are the surface the "
               "product stands on (paper alone is a seamless sweep).",
        "words": {
            "marble": _m("marble", (236, 234, 230), 0.35, "white marble with soft grey veins (dark colours get light veins, gold gets gold veins)"),
            "wood": _m("wood", (158, 112, 74), 0.1, "wood planks with grain"),
            "wooden": _m("wood", (158, 112, 74), 0.1, "wood planks with grain"),
            "timber": _m("wood", (158, 112, 74), 0.1, "wood planks with grain"),
            "oak": _m("wood", (196, 158, 112), 0.1, "light oak planks"),
            "walnut": _m("wood", (104, 68, 46), 0.15, "dark walnut planks"),
            "teak": _m("wood", (150, 96, 56), 0.12, "teak planks"),
            "pine": _m("wood", (214, 180, 130), 0.05, "pale pine planks"),
            "bamboo": _m("wood", (210, 186, 130), 0.1, "bamboo-coloured planks"),
            "concrete": _m("concrete", (168, 166, 161), 0.05, "mottled concrete with pits"),
            "cement": _m("concrete", (168, 166, 161), 0.05, "mottled concrete with pits"),
            "linen": _m("linen", (216, 206, 188), 0.0, "woven linen with soft wrinkles"),
            "cotton": _m("linen", (226, 220, 210), 0.0, "woven cotton with soft wrinkles"),
            "canvas": _m("linen", (206, 196, 176), 0.0, "coarse woven canvas"),
            "paper": _m("paper", (238, 236, 232), 0.0, "smooth paper with faint fibres (alone: a paper sweep)"),
            "cardboard": _m("paper", (186, 150, 108), 0.0, "kraft cardboard"),
            "kraft": _m("paper", (186, 150, 108), 0.0, "kraft paper"),
            "terrazzo": _m("terrazzo", (226, 221, 213), 0.25, "terrazzo: stone chips in a light binder"),
            "slate": _m("slate", (66, 70, 76), 0.1, "dark layered slate"),
            "sand": _m("sand", (216, 196, 160), 0.0, "fine sand with wind ripples"),
            "fabric": _m("fabric", (205, 196, 186), 0.0, "draped fabric with soft folds"),
            "cloth": _m("fabric", (205, 196, 186), 0.0, "draped fabric with soft folds"),
            "velvet": _m("velvet", (92, 44, 58), 0.05, "velvet: deep folds with sheen"),
            "silk": _m("silk", (232, 218, 204), 0.3, "silk: folds with bright sheen"),
            "satin": _m("silk", (232, 218, 204), 0.3, "satin: folds with bright sheen"),
            "glass": _m("glass", (52, 58, 64), 0.6, "dark smoked glass, glossy (reflection)"),
            "acrylic": _m("glass", (230, 232, 235), 0.55, "clear acrylic, glossy (reflection)"),
            "mirror": _m("mirror", (150, 152, 156), 0.9, "mirror: reflects the backdrop and the product"),
            "tile": _m("tiles", (236, 236, 232), 0.25, "square tiles with grout lines"),
            "tiled": _m("tiles", (236, 236, 232), 0.25, "square tiles with grout lines"),
            "ceramic": _m("tiles", (236, 236, 232), 0.3, "glazed ceramic tiles"),
            "stone": _m("stone", (178, 172, 162), 0.05, "mottled natural stone"),
            "limestone": _m("stone", (216, 210, 194), 0.05, "pale limestone"),
            "travertine": _m("travertine", (222, 206, 180), 0.1, "travertine: banded with small pits"),
            "granite": _m("granite", (130, 128, 126), 0.3, "speckled granite"),
            "plaster": _m("plaster", (226, 220, 210), 0.0, "cloudy hand-finished plaster"),
            "stucco": _m("plaster", (226, 220, 210), 0.0, "cloudy hand-finished plaster"),
            "limewash": _m("plaster", (226, 220, 210), 0.0, "cloudy limewash"),
            "metal": _m("metal", (162, 164, 168), 0.5, "brushed metal, glossy"),
            "steel": _m("metal", (162, 164, 168), 0.5, "brushed steel, glossy"),
            "aluminium": _m("metal", (176, 178, 182), 0.5, "brushed aluminium, glossy"),
        },
    },
    "colour": {
        "doc": "Named colours (sRGB). They describe the next scene noun or material; otherwise the "
               "backdrop. Two colours on a backdrop make a gradient.",
        "words": {
            "white": _c(244, 243, 240), "off white": _c(238, 234, 226), "ivory": _c(241, 237, 224),
            "cream": _c(240, 229, 208), "beige": _c(224, 208, 183), "greige": _c(200, 192, 180),
            "taupe": _c(176, 162, 148), "tan": _c(208, 178, 138), "camel": _c(192, 152, 106),
            "brown": _c(120, 84, 58), "chocolate": _c(82, 56, 42), "caramel": _c(190, 132, 74),
            "grey": _c(188, 188, 186), "silver": _c(200, 201, 205), "charcoal": _c(60, 62, 66),
            "black": _c(24, 24, 26), "blue": _c(70, 110, 178), "navy": _c(28, 42, 76),
            "navy blue": _c(28, 42, 76), "sky blue": _c(152, 192, 226), "baby blue": _c(184, 212, 236),
            "powder blue": _c(176, 200, 224), "teal": _c(32, 110, 116), "turquoise": _c(64, 178, 178),
            "aqua": _c(124, 200, 204), "mint": _c(178, 224, 202), "green": _c(72, 128, 84),
            "sage": _c(164, 176, 146), "sage green": _c(164, 176, 146), "olive": _c(112, 116, 68),
            "forest green": _c(36, 80, 52), "emerald": _c(22, 108, 76), "pink": _c(238, 182, 192),
            "blush": _c(236, 204, 198), "rose": _c(214, 142, 152), "dusty pink": _c(202, 154, 152),
            "dusty rose": _c(198, 146, 148), "coral": _c(238, 128, 104), "peach": _c(244, 196, 166),
            "apricot": _c(244, 182, 132), "terracotta": _c(190, 102, 72), "clay": _c(196, 142, 112),
            "rust": _c(168, 82, 46), "orange": _c(234, 132, 52), "burnt orange": _c(198, 92, 34),
            "yellow": _c(240, 210, 84), "mustard": _c(204, 160, 44), "butter": _c(246, 230, 164),
            "gold": _c(200, 162, 72), "rose gold": _c(204, 148, 132), "brass": _c(180, 146, 72),
            "copper": _c(184, 112, 72), "bronze": _c(150, 110, 62), "red": _c(188, 42, 46),
            "burgundy": _c(110, 26, 42), "wine": _c(114, 32, 46), "maroon": _c(110, 32, 36),
            "purple": _c(122, 72, 150), "lavender": _c(202, 188, 226), "lilac": _c(206, 182, 216),
            "plum": _c(104, 56, 86), "mauve": _c(190, 156, 170),
        },
    },
    "tone": {
        "doc": "Lighter or darker: applies to the colour that follows (\"pale pink\", \"dark grey\"), "
               "else to the whole scene.",
        "words": {
            "pale": {"tone": 0.45, "doc": "lighter colour"},
            "light": {"tone": 0.35, "doc": "lighter colour (before a colour; otherwise a lighting word)"},
            "soft": {"tone": 0.2, "doc": "slightly lighter colour (before a colour; otherwise a mood)"},
            "dark": {"tone": -0.45, "doc": "darker colour (alone: a darker scene)"},
            "deep": {"tone": -0.35, "doc": "darker, richer colour (alone: a darker scene)"},
            "rich": {"tone": -0.2, "saturation": 1.15, "doc": "darker, more saturated colour"},
            "dusty": {"tone": 0.05, "saturation": 0.7, "doc": "greyed colour"},
        },
    },
    "palette": {
        "doc": "Colour families: the backdrop colour is drawn from the family per seed when no colour "
               "is named; named colours are graded toward it.",
        "words": {
            "neutral": {"palette": "neutral", "doc": "off-whites, light greys, greige"},
            "warm": {"palette": "warm", "warmth": 0.35, "doc": "creams, beiges, peach, warm light"},
            "cool": {"palette": "cool", "warmth": -0.35, "doc": "powder blue, mint, silver, cool light"},
            "cold": {"palette": "cool", "warmth": -0.45, "doc": "powder blue, mint, silver, cold light"},
            "pastel": {"palette": "pastel", "doc": "blush, lavender, mint, butter, baby blue"},
            "earthy": {"palette": "earthy", "warmth": 0.2, "doc": "terracotta, clay, olive, tan, sage"},
            "earth tones": {"palette": "earthy", "warmth": 0.2, "doc": "terracotta, clay, olive, tan, sage"},
            "monochrome": {"palette": "monochrome", "saturation": 0.0, "doc": "greys only, desaturated"},
            "monochromatic": {"palette": "monochrome", "saturation": 0.0, "doc": "greys only, desaturated"},
            "black and white": {"palette": "monochrome", "saturation": 0.0, "doc": "greys only, desaturated"},
            "muted": {"saturation": 0.65, "doc": "less saturated"},
            "vibrant": {"palette": "vibrant", "saturation": 1.35, "doc": "saturated bold colours"},
            "bold": {"palette": "vibrant", "saturation": 1.3, "doc": "saturated bold colours"},
            "colourful": {"palette": "vibrant", "saturation": 1.3, "doc": "saturated bold colours"},
            "tonal": {"palette": "tonal", "doc": "backdrop and surface in shades of one colour"},
        },
    },
    "light": {
        "doc": "Lighting: direction (where the light comes from; the cast shadow falls the other way, "
               "Scene.light_dir is the direction it travels), quality and shape. Directions combine "
               "(\"top left\").",
        "words": {
            "left": {"light": _dir(22), "doc": "light from the left: shadows fall right"},
            "right": {"light": _dir(158), "doc": "light from the right: shadows fall left"},
            "side": {"light": _dir(18), "hardness": 0.1, "doc": "side light (from the left unless a side is named)"},
            "above": {"light": _dir(90), "shadow": 0.05, "doc": "light from above: short shadow under the product"},
            "top": {"light": _dir(90), "shadow": 0.05, "doc": "light from above: short shadow under the product"},
            "overhead": {"light": _dir(90), "shadow": 0.05, "doc": "light from above: short shadow under the product"},
            "behind": {"light": _dir(90), "glow": 0.6, "doc": "backlight: glow behind the product, shadow toward the camera"},
            "backlit": {"light": _dir(90), "glow": 0.8, "doc": "backlight: glow behind the product, shadow toward the camera"},
            "rim": {"glow": 0.5, "doc": "rim light: a glow behind the product"},
            "front": {"light": _dir(-90), "shadow": -0.1, "doc": "light from the front: shadow falls behind the product"},
            "frontal": {"light": _dir(-90), "shadow": -0.1, "doc": "light from the front: shadow falls behind the product"},
            "window": {"window": True, "hardness": -0.2, "doc": "soft window light from the side (left unless named), bright side of the backdrop"},
            "window light": {"window": True, "hardness": -0.2, "doc": "soft window light from the side (left unless named), bright side of the backdrop"},
            "sunlight": {"hardness": 0.55, "warmth": 0.15, "shadow": 0.15, "doc": "hard warm sunlight, crisp shadows"},
            "sun": {"hardness": 0.55, "warmth": 0.15, "shadow": 0.15, "doc": "hard warm sunlight, crisp shadows"},
            "sunny": {"hardness": 0.55, "warmth": 0.15, "shadow": 0.15, "doc": "hard warm sunlight, crisp shadows"},
            "daylight": {"hardness": 0.2, "warmth": 0.0, "doc": "neutral daylight"},
            "natural light": {"hardness": 0.0, "warmth": 0.05, "doc": "soft neutral daylight"},
            "hard": {"hardness": 0.7, "shadow": 0.2, "doc": "hard light: crisp, strong shadows"},
            "harsh": {"hardness": 0.8, "shadow": 0.25, "doc": "hard light: crisp, strong shadows"},
            "diffused": {"hardness": -0.5, "shadow": -0.15, "doc": "diffused light: gentle shadows"},
            "diffuse": {"hardness": -0.5, "shadow": -0.15, "doc": "diffused light: gentle shadows"},
            "softbox": {"hardness": -0.4, "shadow": -0.1, "doc": "softbox: even light, gentle shadows"},
            "overcast": {"hardness": -0.6, "shadow": -0.2, "warmth": -0.1, "doc": "overcast: flat cool light"},
            "spotlight": {"spot": 1.0, "hardness": 0.4, "doc": "a pool of light behind the product, darker around"},
            "spot": {"spot": 1.0, "hardness": 0.4, "doc": "a pool of light behind the product, darker around"},
            "candlelight": {"warmth": 0.8, "brightness": -0.3, "glow": 0.4, "doc": "warm dim light with a glow"},
            "light": {"none": True, "doc": _NONE + " (a lighting word)"},
            "lighting": {"none": True, "doc": _NONE + " (a lighting word)"},
            "lit": {"none": True, "doc": _NONE + " (a lighting word)"},
            "shadow": {"none": True, "doc": _NONE + " (the compositor adds shadows)"},
            "illuminated": {"none": True, "doc": _NONE + " (a lighting word)"},
        },
    },
    "mood": {
        "doc": "Mood: grading of brightness, contrast, colour, vignette and shadows.",
        "words": {
            "soft": {"hardness": -0.3, "contrast": 0.9, "shadow": -0.1, "doc": "soft: low contrast, gentle shadows"},
            "gentle": {"hardness": -0.3, "contrast": 0.9, "shadow": -0.1, "doc": "soft: low contrast, gentle shadows"},
            "calm": {"contrast": 0.9, "saturation": 0.9, "doc": "calm: quieter colour and contrast"},
            "serene": {"contrast": 0.9, "saturation": 0.9, "doc": "calm: quieter colour and contrast"},
            "dramatic": {"contrast": 1.25, "vignette": 0.5, "brightness": -0.2, "shadow": 0.25, "hardness": 0.4, "doc": "dramatic: dark edges, strong falloff and shadows"},
            "moody": {"contrast": 1.2, "vignette": 0.45, "brightness": -0.3, "shadow": 0.2, "doc": "moody: darker, strong vignette"},
            "dark": {"brightness": -0.35, "vignette": 0.3, "doc": "darker scene"},
            "low key": {"brightness": -0.45, "vignette": 0.5, "contrast": 1.2, "doc": "low key: dark scene, bright product area"},
            "bright": {"brightness": 0.25, "vignette": -0.3, "shadow": -0.1, "doc": "bright: lighter, almost no vignette"},
            "airy": {"brightness": 0.3, "contrast": 0.85, "vignette": -0.3, "shadow": -0.15, "doc": "airy: light and open, faint shadows"},
            "high key": {"brightness": 0.4, "contrast": 0.8, "vignette": -0.4, "shadow": -0.2, "doc": "high key: very light scene"},
            "fresh": {"brightness": 0.15, "warmth": -0.1, "saturation": 1.05, "doc": "fresh: light and slightly cool"},
            "clean": {"texture": 0.6, "vignette": -0.2, "doc": "clean: less texture and vignette"},
            "minimal": {"texture": 0.5, "plain": True, "doc": "minimal: quiet texture"},
            "minimalist": {"texture": 0.5, "plain": True, "doc": "minimal: quiet texture"},
            "simple": {"texture": 0.6, "plain": True, "doc": "simple: quiet texture"},
            "luxury": {"brightness": -0.15, "contrast": 1.15, "vignette": 0.35, "gloss_add": 0.15, "accent": "gold", "doc": "luxury: deeper tones, gloss, gold accents"},
            "luxurious": {"brightness": -0.15, "contrast": 1.15, "vignette": 0.35, "gloss_add": 0.15, "accent": "gold", "doc": "luxury: deeper tones, gloss, gold accents"},
            "premium": {"contrast": 1.1, "vignette": 0.25, "gloss_add": 0.1, "doc": "premium: richer contrast, a little gloss"},
            "elegant": {"contrast": 1.05, "vignette": 0.2, "saturation": 0.9, "doc": "elegant: restrained colour, gentle vignette"},
            "cozy": {"warmth": 0.45, "brightness": -0.1, "vignette": 0.2, "doc": "cozy: warm and a little dim"},
            "natural": {"warmth": 0.1, "saturation": 0.95, "doc": "natural: slightly warm, true colour"},
            "organic": {"warmth": 0.15, "saturation": 0.9, "doc": "organic: warm, earthy grade"},
            "modern": {"texture": 0.8, "contrast": 1.05, "doc": "modern: crisp and quiet"},
            "vintage": {"warmth": 0.3, "saturation": 0.75, "contrast": 0.9, "vignette": 0.3, "doc": "vintage: faded warm grade, vignette"},
            "rustic": {"warmth": 0.3, "texture": 1.3, "doc": "rustic: warm, stronger texture"},
            "romantic": {"warmth": 0.25, "brightness": 0.1, "glow": 0.3, "doc": "romantic: warm glow"},
            "zen": {"saturation": 0.8, "contrast": 0.9, "plain": True, "doc": "zen: quiet texture, calm colour"},
            "playful": {"saturation": 1.25, "brightness": 0.1, "doc": "playful: brighter, more colourful"},
            "mood": {"none": True, "doc": _NONE},
            "vibe": {"none": True, "doc": _NONE},
            "atmosphere": {"none": True, "doc": _NONE},
            "aesthetic": {"none": True, "doc": _NONE},
        },
    },
    "time": {
        "doc": "Time of day: colour of the light, its angle and the brightness.",
        "words": {
            "morning": {"warmth": 0.1, "brightness": 0.15, "hardness": -0.1, "tilt": 0.6, "doc": "morning: bright, fresh, low side light"},
            "sunrise": {"warmth": 0.45, "tilt": 0.9, "glow": 0.3, "doc": "sunrise: warm low light"},
            "dawn": {"warmth": 0.2, "brightness": -0.05, "hardness": -0.3, "tilt": 0.8, "doc": "dawn: soft low light"},
            "noon": {"hardness": 0.5, "shadow": 0.15, "brightness": 0.1, "tilt": -0.5, "doc": "noon: high hard light"},
            "midday": {"hardness": 0.5, "shadow": 0.15, "brightness": 0.1, "tilt": -0.5, "doc": "midday: high hard light"},
            "afternoon": {"warmth": 0.15, "tilt": 0.3, "doc": "afternoon: slightly warm side light"},
            "golden hour": {"warmth": 0.8, "tilt": 1.0, "glow": 0.5, "shadow": 0.1, "doc": "golden hour: warm low side light, long shadows, glow"},
            "golden": {"warmth": 0.6, "tilt": 0.8, "glow": 0.35, "doc": "golden light: warm low side light"},
            "sunset": {"warmth": 0.9, "tilt": 1.0, "glow": 0.5, "brightness": -0.1, "doc": "sunset: warm orange low light, glow"},
            "dusk": {"warmth": -0.2, "brightness": -0.3, "tilt": 0.8, "doc": "dusk: dim, cooling light"},
            "evening": {"warmth": 0.3, "brightness": -0.25, "vignette": 0.2, "doc": "evening: dimmer, warm"},
            "twilight": {"warmth": -0.5, "brightness": -0.3, "doc": "twilight: dim blue light"},
            "blue hour": {"warmth": -0.7, "brightness": -0.3, "doc": "blue hour: dim blue light"},
            "night": {"warmth": -0.4, "brightness": -0.5, "vignette": 0.4, "shadow": 0.1, "doc": "night: dark blue scene"},
            "nighttime": {"warmth": -0.4, "brightness": -0.5, "vignette": 0.4, "shadow": 0.1, "doc": "night: dark blue scene"},
        },
    },
    "surroundings": {
        "doc": "What is around the product, rendered as light and shape (the diffusion engine paints "
               "real objects).",
        "words": {
            "leaf": {"gobo": "leaves", "doc": "soft leaf shadows thrown across the scene"},
            "leaves": {"gobo": "leaves", "doc": "soft leaf shadows thrown across the scene"},
            "foliage": {"gobo": "leaves", "doc": "soft leaf shadows thrown across the scene"},
            "palm": {"gobo": "leaves", "doc": "soft palm-leaf shadows thrown across the scene"},
            "botanical": {"gobo": "leaves", "doc": "soft leaf shadows thrown across the scene"},
            "dappled": {"gobo": "dapple", "doc": "dappled light through trees"},
            "blinds": {"gobo": "blinds", "doc": "striped shadows of window blinds"},
            "shutters": {"gobo": "blinds", "doc": "striped shadows of window blinds"},
            "stripes": {"gobo": "blinds", "doc": "striped light and shadow"},
            "window shadow": {"gobo": "window", "window": True, "doc": "the bright shape of a window pane thrown on the backdrop"},
            "window frame": {"gobo": "window", "window": True, "doc": "the bright shape of a window pane thrown on the backdrop"},
            "bokeh": {"bokeh": True, "blur": True, "doc": "out-of-focus light circles in the background"},
            "fairy lights": {"bokeh": True, "warmth": 0.2, "doc": "warm out-of-focus light circles"},
            "string lights": {"bokeh": True, "warmth": 0.2, "doc": "warm out-of-focus light circles"},
            "city lights": {"bokeh": True, "doc": "out-of-focus light circles"},
            "sparkle": {"bokeh": True, "doc": "small out-of-focus highlights"},
            "arch": {"arch": True, "target": "backdrop", "doc": "an arch shape in the wall behind the product (colours before it: the wall's)"},
            "archway": {"arch": True, "target": "backdrop", "doc": "an arch shape in the wall behind the product (colours before it: the wall's)"},
            "niche": {"arch": True, "target": "backdrop", "doc": "an arch-shaped niche behind the product (colours before it: the wall's)"},
            "haze": {"haze": 0.5, "doc": "light haze: lifted, softer background"},
            "mist": {"haze": 0.5, "doc": "light haze: lifted, softer background"},
            "fog": {"haze": 0.7, "doc": "fog: lifted, softer background"},
            "water": {"caustics": True, "gloss_add": 0.2, "doc": "water caustics: rippling light on the surface"},
            "caustics": {"caustics": True, "doc": "rippling caustic light on the surface"},
            "ripple": {"caustics": True, "doc": "rippling caustic light on the surface"},
            "glow": {"glow": 0.6, "doc": "a soft halo of light behind the product"},
            "halo": {"glow": 0.6, "doc": "a soft halo of light behind the product"},
        },
    },
    "finish": {
        "doc": "Surface finish and focus.",
        "words": {
            "glossy": {"gloss_add": 0.35, "doc": "more reflective surface"},
            "polished": {"gloss_add": 0.3, "doc": "more reflective surface"},
            "shiny": {"gloss_add": 0.3, "doc": "more reflective surface"},
            "reflective": {"gloss_add": 0.4, "doc": "more reflective surface"},
            "reflection": {"gloss_add": 0.35, "doc": "more reflective surface"},
            "lacquered": {"gloss_add": 0.3, "doc": "more reflective surface"},
            "wet": {"gloss_add": 0.35, "brightness": -0.05, "doc": "wet look: more reflective, a touch darker"},
            "matte": {"gloss_add": -1.0, "doc": "no reflection"},
            "matt": {"gloss_add": -1.0, "doc": "no reflection"},
            "textured": {"texture": 1.5, "doc": "stronger texture"},
            "rough": {"texture": 1.5, "doc": "stronger texture"},
            "smooth": {"texture": 0.5, "doc": "weaker texture"},
            "blurred": {"blur": True, "doc": "background out of focus"},
            "blurry": {"blur": True, "doc": "background out of focus"},
            "defocused": {"blur": True, "doc": "background out of focus"},
            "depth of field": {"blur": True, "doc": "background out of focus"},
            "shallow": {"blur": True, "doc": "background out of focus (shallow depth of field)"},
            "dof": {"blur": True, "doc": "background out of focus"},
            "out of focus": {"blur": True, "doc": "background out of focus"},
        },
    },
    "style": {
        "doc": "Photography words: understood, and always true of a studio scene.",
        "words": {w: {"none": True, "doc": "always true of a studio product scene"} for w in (
            "product", "photo", "photograph", "photography", "shot", "packshot", "professional",
            "commercial", "ecommerce", "catalogue", "advertising", "editorial", "scene",
            "high quality", "realistic", "photorealistic", "hd", "4k", "8k", "composition",
            "in front of", "close up", "closeup", "centered", "center", "tones", "tone", "colour",
            "colours", "coloured", "palette", "setting", "setup", "view", "angle", "style")},
    },
}

# colour families for "palette" words; names refer to the colour category ("light grey" = grey + tone)
PALETTES: dict[str, tuple[str, ...]] = {
    "neutral": ("white", "off white", "ivory", "greige", "light grey", "cream"),
    "warm": ("cream", "beige", "peach", "apricot", "light terracotta", "tan"),
    "cool": ("powder blue", "sky blue", "mint", "silver", "light grey", "lavender"),
    "pastel": ("blush", "lavender", "mint", "butter", "baby blue", "peach"),
    "earthy": ("terracotta", "clay", "olive", "tan", "sage", "rust"),
    "monochrome": ("white", "light grey", "grey", "charcoal", "black"),
    "vibrant": ("coral", "turquoise", "yellow", "blue", "orange", "emerald"),
    "tonal": (),  # shades of the named colour (the renderer derives them)
}



def colour_rgb(name: str) -> tuple[int, int, int]:
    """sRGB of a colour name with optional tone words: "sage", "pale pink", "light grey".

    A tone word mixes toward white (lighter) or black (darker) by its ``tone`` amount.
    """
    words_ = name.split()
    colours = VOCABULARY["colour"]["words"]
    tones = VOCABULARY["tone"]["words"]
    i = 0
    tone = 0.0
    while i < len(words_) and words_[i] in tones and " ".join(words_[i:]) not in colours:
        tone += tones[words_[i]]["tone"]
        i += 1
    key = " ".join(words_[i:])
    if key not in colours:
        raise KeyError(f"unknown colour {name!r}")
    r, g, b = colours[key]["rgb"]
    t = max(-1.0, min(1.0, tone))
    if t >= 0:
        mix = [c + (255 - c) * t for c in (r, g, b)]
    else:
        mix = [c * (1 + t) for c in (r, g, b)]
    return tuple(int(round(c)) for c in mix)  # type: ignore[return-value]


def index() -> dict[tuple[str, ...], list[tuple[str, str, dict[str, Any]]]]:
    """Phrase (tuple of words) -> [(category, phrase, effect), ...] in category order."""
    out: dict[tuple[str, ...], list[tuple[str, str, dict[str, Any]]]] = {}
    for cat, data in VOCABULARY.items():
        for phrase, effect in data["words"].items():
            out.setdefault(tuple(phrase.split()), []).append((cat, phrase, effect))
    return out


def words() -> list[str]:
    """Every word and phrase the studio engine understands (sorted, unique)."""
    return sorted({p for data in VOCABULARY.values() for p in data["words"]})


def size() -> dict[str, int]:
    """Number of entries per category."""
    return {cat: len(data["words"]) for cat, data in VOCABULARY.items()}


def _swatch(effect: dict[str, Any]) -> str:
    r, g, b = effect["rgb"]
    return f"`#{r:02x}{g:02x}{b:02x}`"


def vocabulary_markdown() -> str:
    """docs/vocabulary.md, generated from :data:`VOCABULARY` (a test keeps the file in sync)."""
    counts = size()
    lines = [
        "# Studio engine vocabulary",
        "",
        "<!-- Generated by `packshot prompt vocab --markdown > docs/vocabulary.md` from",
        "     src/packshot/prompts/vocabulary.py. Do not edit by hand; a test checks it is in sync. -->",
        "",
        "The `studio` background engine renders scenes from these words and phrases, with no model "
        "weights. Matching ignores case, matches the longest phrase first (\"golden hour\", "
        "\"light from the left\", \"stone podium\") and strips simple plurals and suffixes "
        "(\"tiles\", \"leaves\", \"shadows\"). Every other word (except a few stop-words) is listed "
        "in the candidate's notes as `unused words: ...`: the `diffusion` engine understands free "
        "text, the studio engine only this list.",
        "",
        f"{sum(counts.values())} entries in {len(counts)} categories: "
        + ", ".join(f"{cat} ({n})" for cat, n in counts.items()) + ".",
        "",
        "Stop-words (ignored): " + ", ".join(f"`{w}`" for w in sorted(STOP_WORDS)) + ".",
        "",
        "Each seed draws its own variation: palette colour, texture phase, horizon, podium size, "
        "shadow pattern. The light is one per request (from the prompt, else from the product "
        "photo's shading, else from the upper left). The same seed gives the same image, byte for "
        "byte.",
        "",
    ]
    for cat, data in VOCABULARY.items():
        lines += [f"## {cat} ({counts[cat]})", "", data["doc"], "", "| word | effect |", "|---|---|"]
        for phrase, effect in data["words"].items():
            doc = effect.get("doc", "")
            if cat == "colour":
                doc = f"{_swatch(effect)}"
            elif cat == "surface":
                doc = f"{doc}; default {_swatch(effect)}, gloss {effect['gloss']:.2f}"
            lines.append(f"| {phrase} | {doc} |")
        lines.append("")
    lines += ["## needs a generative engine", "",
              "Places and things the studio engine cannot draw. A prompt that names them gets a note "
              "(CLI, `results.json`, web app) offering `--engine diffusion` or `--background PHOTO` "
              "(your own photo of the place); the studio scene is never passed off as one: "
              + ", ".join(f"`{w}`" for w in sorted(GENERATIVE_SCENES)) + ".", ""]
    lines += ["## palettes", "", "| palette | colours drawn per seed |", "|---|---|"]
    for name, cols in PALETTES.items():
        lines.append(f"| {name} | {', '.join(cols) or '(shades of the named colour)'} |")
    lines.append("")
    return "\n".join(lines)
