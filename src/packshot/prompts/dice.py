"""The dice: a random scene prompt built only from words the studio engine understands.

Each field is drawn from small phrase templates whose words all come from
:mod:`packshot.prompts.vocabulary` (or are stop-words), so rendering a random prompt with the
studio engine never reports unused words (a test checks this over many seeds).
"""
from __future__ import annotations

import random
from typing import Any

from .build import build_prompt

# Colours that read well on a backdrop / a surface (all in the colour vocabulary).
_BACKDROP_COLOURS = ("white", "off white", "cream", "beige", "greige", "light grey", "sage green",
                     "dusty pink", "blush", "terracotta", "powder blue", "navy", "charcoal",
                     "olive", "lavender", "butter", "peach", "mint", "clay", "black", "pale pink",
                     "deep green", "mustard", "taupe")
# (colours that suit it or "" for the material's own colour, material, noun)
_SURFACES = (
    (("white", "black", "green", "pink", ""), "marble", ("table", "slab", "countertop", "surface")),
    (("", "light", "dark", "white"), "oak", ("table", "tabletop", "board")),
    (("",), "walnut", ("table", "tabletop", "board")),
    (("", "white", "rustic"), "wood", ("table", "tabletop", "floor")),
    (("", "light grey", "dark grey"), "concrete", ("surface", "floor", "slab", "table")),
    (("", "white", "cream", "sage"), "linen", ("tablecloth", "surface")),
    (("", "white", "grey", "pink", "sage green"), "terrazzo", ("surface", "table", "countertop")),
    (("",), "slate", ("slab", "surface", "board")),
    (("",), "sand", ("",)),
    (("", "emerald", "burgundy", "navy", "dusty pink"), "velvet", ("drape", "surface")),
    (("", "black", "white"), "glass", ("surface", "table")),
    (("",), "mirror", ("surface",)),
    (("white", "sage green", "terracotta", "navy", "pink"), "ceramic", ("tiles",)),
    (("", "pale"), "travertine", ("table", "slab", "surface")),
    (("", "white", "cream", "blush"), "silk", ("drape",)),
    (("",), "granite", ("countertop", "slab")),
    (("", "white", "grey", "sand"), "stone", ("podium", "plinth", "pedestal")),
    (("white", "pink", "black", "green"), "marble", ("podium", "plinth", "pedestal")),
    (("", "white", "beige", "terracotta"), "plaster", ("podium", "plinth", "block")),
)
_SURROUNDINGS = ("", "", "with soft leaf shadows", "with palm leaf shadows", "with dappled light",
                 "with window shadows", "with shadows of blinds", "with bokeh lights",
                 "with warm fairy lights", "in front of an arch", "with light haze",
                 "with water caustics", "with a soft glow", "in front of a plaster arch",
                 "in front of a niche")
_BACKGROUND_NOUNS = ("wall", "background", "backdrop", "studio backdrop", "plaster wall",
                     "seamless backdrop", "gradient background")
_SWEEPS = ("seamless paper sweep", "studio sweep", "cyclorama", "gradient studio backdrop",
           "seamless paper backdrop")
_LIGHT_DIRS = ("from the left", "from the right", "from above", "from behind", "from the top left",
               "from the top right", "from the side")
_LIGHTS = ("soft window light {d}", "soft light {d}", "hard sunlight {d}", "diffused light {d}",
           "natural light {d}", "softbox lighting {d}", "spotlight", "backlit", "rim light",
           "warm light {d}", "golden light {d}")
_MOODS = ("calm morning mood", "golden hour", "bright and airy", "minimal", "luxury mood",
          "moody and dramatic", "fresh morning", "cozy evening", "soft pastel palette",
          "warm earthy tones", "clean modern aesthetic", "elegant and serene", "sunset glow",
          "high key", "low key", "natural organic vibe", "cool blue hour", "vintage mood",
          "zen minimal", "premium and elegant")


def _surface(r: random.Random) -> str:
    colours, material, nouns = r.choice(_SURFACES)
    colour, noun = r.choice(colours), r.choice(nouns)
    words = " ".join(w for w in (colour, material, noun) if w)
    if not noun or noun.endswith("s"):
        return f"on {words}"
    return f"on {'an' if words[0] in 'aeiou' else 'a'} {words}"


def random_prompt(seed: int | None = None) -> dict[str, Any]:
    """A random scene: {"prompt": str, "fields": {surface, surroundings, background, lighting,
    mood}}. The same ``seed`` gives the same prompt; None draws a fresh one."""

    r = random.Random(seed if seed is not None else random.SystemRandom().randrange(2**32))
    if r.random() < 0.12:  # no surface: a seamless sweep
        surface = ""
        background = f"{r.choice(_BACKDROP_COLOURS)} {r.choice(_SWEEPS)}"
    else:
        surface = _surface(r)
        colour = r.choice(_BACKDROP_COLOURS)
        background = f"against {'an' if colour[0] in 'aeiou' else 'a'} {colour} {r.choice(_BACKGROUND_NOUNS)}"
    surroundings = r.choice(_SURROUNDINGS)
    lighting = r.choice(_LIGHTS).format(d=r.choice(_LIGHT_DIRS))
    mood = r.choice(_MOODS)
    fields = {"surface": surface, "surroundings": surroundings, "background": background,
              "lighting": lighting, "mood": mood}
    return {"prompt": build_prompt(fields), "fields": fields}
