"""Product categories by noun: the scene vocabulary that suits each (surfaces, surroundings, moods).

Shared by :mod:`packshot.prompts.suggest` (categories steer the suggestions) and
:mod:`packshot.captioner` (a caption's product noun is the last word a category knows); in a
module of its own so neither imports the other.
"""
from __future__ import annotations

from typing import Any

# category -> surfaces (tabletop wording), surroundings and moods that suit it, first choice first
CATEGORIES: dict[str, dict[str, Any]] = {
    "footwear": {"nouns": ("shoe", "shoes", "sneaker", "sneakers", "boot", "boots", "loafer", "loafers",
                           "sandal", "sandals", "heel", "heels", "slipper", "slippers", "trainer", "trainers"),
                 "surfaces": ("on a light oak floor", "on a concrete floor", "on a walnut floor"),
                 "surroundings": ("window shadow", "haze", "dappled sunlight"), "moods": ("modern", "natural")},
    "cosmetics": {"nouns": ("bottle", "bottles", "perfume", "cream", "serum", "lotion", "lipstick", "jar",
                            "soap", "shampoo", "cosmetic", "cosmetics", "tube", "compact", "fragrance",
                            "cologne", "aftershave", "oil", "balm", "tin"),
                  "surfaces": ("on a glossy white marble table", "on a grey stone podium",
                               "on a travertine slab"),
                  "surroundings": ("water caustics", "water ripple", "leaves shadows"),
                  "moods": ("serene", "elegant", "fresh")},
    "food": {"nouns": ("cookie", "cookies", "cake", "bread", "fruit", "apple", "coffee", "tea", "chocolate",
                       "pizza", "burger", "sandwich", "donut", "croissant", "pastry", "biscuit", "snack",
                       "honey", "jam", "sauce", "food", "bowl", "plate"),
             "surfaces": ("on a light oak countertop", "on a beige linen tablecloth", "on a walnut table"),
             "surroundings": ("window shadow", "soft bokeh", "dappled sunlight"), "moods": ("cozy", "natural")},
    "jewellery": {"nouns": ("ring", "rings", "necklace", "bracelet", "earring", "earrings", "watch", "pendant",
                            "jewelry", "jewellery", "brooch"),
                  "surfaces": ("on a deep navy velvet podium", "on a mirror", "on a cream silk drape"),
                  "surroundings": ("sparkle", "soft bokeh", "arch"), "moods": ("luxury", "elegant")},
    "garment": {"nouns": ("shirt", "tshirt", "t", "sweater", "jumper", "dress", "jacket", "coat", "hoodie",
                          "top", "blouse", "skirt", "trousers", "jeans", "scarf", "cardigan"),
                "surfaces": ("", "on a beige linen surface"),
                "surroundings": ("window shadow", "leaves shadows"), "moods": ("natural", "calm")},
    "drink": {"nouns": ("mug", "cup", "glass", "wine", "beer", "can", "drink", "tumbler", "flask"),
              "surfaces": ("on a walnut table", "on a grey slate table", "on a light oak table"),
              "surroundings": ("fairy lights", "window shadow", "soft bokeh"), "moods": ("cozy", "warm")},
    "electronics": {"nouns": ("phone", "smartphone", "laptop", "headphones", "earbuds", "speaker", "camera",
                              "tablet", "keyboard", "mouse", "charger", "console"),
                    "surfaces": ("on a concrete table", "on a black glass table", "on a grey metal desk"),
                    "surroundings": ("city lights", "glow", "haze"), "moods": ("modern", "dramatic")},
}


def category_of(noun: str | None) -> str | None:
    """The category whose noun list holds ``noun`` (plural or singular), else None."""
    if not noun:
        return None
    words = noun.lower().split()
    for w in reversed(words):
        for cat, spec in CATEGORIES.items():
            if w in spec["nouns"] or w.rstrip("s") in spec["nouns"]:
                return cat
    return None
