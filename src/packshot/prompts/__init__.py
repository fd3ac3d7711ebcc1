"""Prompt helpers: parse a scene prompt, build one from fields, roll the dice, curated examples.

Public names::

    parse_prompt(text) -> ParsedPrompt   # what the studio engine reads, and the unused words
    build_prompt(fields) -> str          # {"surface": ..., "lighting": ...} -> one prompt string
    random_prompt(seed=None) -> dict     # {"prompt": str, "fields": {...}} from the vocabulary
    examples() -> list[dict]             # curated [{"title", "prompt", "engines", "fields"}]
    FIELDS                               # the structured field names, in prompt order

Pure Python (no numpy): cheap to import from the CLI, the API and the web app. The vocabulary is
data in :mod:`packshot.prompts.vocabulary`; docs/vocabulary.md is generated from it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from . import vocabulary as V
from .build import FIELDS, build_prompt
from .dice import random_prompt


# grading keys that add up, and those that multiply (see the vocabulary's module docstring)
_ADD = ("brightness", "warmth", "vignette", "gloss_add", "hardness", "shadow", "tilt", "glow", "spot",
        "haze")
_MUL = ("contrast", "saturation", "texture")


@dataclass(frozen=True)
class Part:
    """One part of the scene (surface, backdrop or podium): a material word and colour names.

    ``colours`` are names :func:`packshot.prompts.vocabulary.colour_rgb` understands ("pale pink").
    ``tone`` comes from tone words before a material.
    """

    material: str | None = None
    colours: tuple[str, ...] = ()
    tone: float = 0.0                  # lighter (+) / darker (-) material ("dark oak")

    def __bool__(self) -> bool:
        return bool(self.material or self.colours)


@dataclass(frozen=True)
class Match:
    """One vocabulary entry found in the prompt: ``phrase`` as listed, read in ``category``.

    ``start``/``end`` index the prompt's word tokens (end exclusive); ``text`` is as written.
    """

    phrase: str
    category: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class ParsedPrompt:
    """What the studio engine understood from a prompt.

    ``layout`` is "tabletop" (a surface meeting a wall) or "sweep" (seamless). ``light`` is the
    averaged unit (dx, dy) travel direction of the named light directions, None when none was
    named. ``grade`` holds the summed additive keys (brightness, warmth, vignette, gloss_add,
    hardness, shadow, tilt, glow, spot, haze) and the multiplied ones (contrast, saturation,
    texture). ``unused`` lists the words (as written, in order, once) the engine does not use.
    """

    text: str
    layout: str = "sweep"
    surface: Part = Part()
    backdrop: Part = Part()
    podium: str | None = None          # "cylinder" | "box"
    podium_part: Part = Part()
    palette: str | None = None
    style: str | None = None           # "gradient"
    pure: bool = False
    plain: bool = False
    light: tuple[float, float] | None = None
    light_words: tuple[str, ...] = ()
    window: bool = False
    gobo: str | None = None            # "leaves" | "blinds" | "window" | "dapple"
    bokeh: bool = False
    arch: bool = False
    caustics: bool = False
    blur: bool = False
    accent: str | None = None
    moods: tuple[str, ...] = ()
    time: str | None = None
    grade: dict[str, float] = field(default_factory=dict)
    matches: tuple[Match, ...] = ()
    unused: tuple[str, ...] = ()
    generative: tuple[str, ...] = ()   # unused words only a generative engine can draw ("beach")

    @property
    def used(self) -> tuple[str, ...]:
        """The vocabulary phrases found, in prompt order."""
        return tuple(m.phrase for m in self.matches)

    def g(self, key: str) -> float:
        """A grading value with its neutral default (0 for additive keys, 1 for multiplied)."""
        return self.grade.get(key, 1.0 if key in _MUL else 0.0)


_TOKEN_RE = re.compile(r"[a-z0-9]+|[,.;:!?()\n]")
_MARK = None  # a clause boundary in the token list


def _tokens(text: str) -> list[str | None]:
    """Lower-case word tokens; punctuation that ends a clause becomes ``None``."""
    t = text.lower().replace("’", "'")
    t = re.sub(r"'s\b", "", t)
    for k, v in V.SPELLINGS.items():
        if "-" in k:
            t = t.replace(k, v)
    out: list[str | None] = []
    for tok in _TOKEN_RE.findall(t.replace("-", " ").replace("&", " and ")):
        if not tok[0].isalnum():
            out.append(_MARK)
            continue
        out.extend(V.SPELLINGS.get(tok, tok).split())
    return out


def _variants(tok: str) -> list[str]:
    """The token and its simple stems ("tiles" -> "tile", "leaves" stays, "sandy" -> "sand")."""
    out = [tok]
    for suf, rep in V.SUFFIXES:
        if tok.endswith(suf) and len(tok) - len(suf) >= 3:
            out.append(tok[: len(tok) - len(suf)] + rep)
    return out


@lru_cache(maxsize=1)
def _index():
    idx = V.index()
    return idx, max(len(k) for k in idx)


def _find(tokens: list[str | None]):
    """Greedy longest-phrase matching. Returns ([(start, end, key, entries)], unused token idx)."""
    idx, maxlen = _index()
    found, unused = [], []
    i, n = 0, len(tokens)
    while i < n:
        if tokens[i] is _MARK:
            i += 1
            continue
        hit = None
        for L in range(min(maxlen, n - i), 0, -1):
            window = tokens[i:i + L]
            if any(t is _MARK for t in window):
                continue
            head = tuple(window[:-1])  # type: ignore[arg-type]
            for last in _variants(window[-1]):  # type: ignore[arg-type]
                key = head + (last,)
                if key in idx:
                    hit = (i, i + L, key, idx[key])
                    break
            if hit:
                break
        if hit:
            found.append(hit)
            i = hit[1]
        else:
            if tokens[i] not in V.STOP_WORDS:
                unused.append(i)
            i += 1
    return found, unused


class _Reader:
    """The state of one :func:`parse_prompt` pass: scene parts being filled, grading, flags."""

    def __init__(self) -> None:
        self.parts: dict[str, dict[str, Any]] = {t: {"material": None, "colours": [], "tone": 0.0}
                                                 for t in ("surface", "backdrop", "podium")}
        self.grade: dict[str, float] = {}
        self.flags: dict[str, Any] = {}
        self.light_vecs: list[tuple[float, float]] = []
        self.light_words: list[str] = []
        self.moods: list[str] = []
        self.matches: list[Match] = []
        self.run: list[tuple[str, str]] = []
        self.pending_tone: list[str] = []
        self.surface_seen = False
        self.surface_named = False
        self.ignored: list[str] = []

    def flush(self, target: str | None = None) -> None:
        """Close the current run of colours/tones/materials onto a scene part."""
        self.pending_tone.clear()
        run = self.run
        if not run:
            return
        mats = [w for k, w in run if k == "material"]
        from_noun = target is not None
        if target == "surface":
            self.surface_named = True
        if target is None:
            if mats and mats[-1] in ("paper", "kraft", "cardboard") and not self.surface_seen:
                target = "backdrop"
            elif mats:
                target = "surface"
            else:
                target = "backdrop"
        if target == "surface" and mats:
            if from_noun is False and self.parts["surface"]["material"] and self.surface_named:
                # a stray material after the surface was named ("... a linen towel"): not rendered
                self.ignored.extend(w for k, w in run if k != "tone")
                run.clear()
                return
            self.surface_seen = True
        part = self.parts[target]
        for kind, word in run:
            if kind == "material":
                part["material"] = word
            elif kind == "tone":
                part["tone"] += float(word)
            else:
                part["colours"].append(word)
        run.clear()

    def add_grade(self, effect: dict[str, Any]) -> None:
        for k in _ADD:
            if k in effect:
                self.grade[k] = self.grade.get(k, 0.0) + float(effect[k])
        for k in _MUL:
            if k in effect:
                self.grade[k] = self.grade.get(k, 1.0) * float(effect[k])

    def word(self, cat: str, phrase: str, effect: dict[str, Any], next_cats: list[str]) -> None:
        """Read one matched phrase of category ``cat`` (``next_cats``: the categories of the
        phrase right after it, if adjacent)."""
        has_material = any(k == "material" for k, _ in self.run)
        if cat == "tone":
            if "colour" in next_cats:
                self.pending_tone.append(phrase)
            elif "surface" in next_cats:
                if has_material:
                    self.flush()
                self.run.append(("tone", str(effect["tone"])))
            else:
                self.grade["brightness"] = self.grade.get("brightness", 0.0) + 0.5 * float(effect["tone"])
            self.add_grade({k: v for k, v in effect.items() if k == "saturation"})
        elif cat == "colour":
            if has_material:
                self.flush()
            self.run.append(("colour", " ".join([*self.pending_tone, phrase])))
            self.pending_tone.clear()
        elif cat == "surface":
            if has_material:
                self.flush()
            self.run.append(("material", phrase))
        else:
            self.effect(cat, phrase, effect)

    def effect(self, cat: str, phrase: str, effect: dict[str, Any]) -> None:
        """Everything that is not a colour, tone or material: scene nouns, flags and grading."""
        if "target" in effect:
            self.flush(effect["target"])
            if effect["target"] == "surface":
                self.surface_seen = True
        if effect.get("layout") == "tabletop":
            self.surface_seen = True
        for k in ("podium", "style", "gobo", "accent", "palette"):
            if k in effect:
                self.flags[k] = effect[k]
        for k in ("pure", "plain", "window", "bokeh", "arch", "caustics", "blur"):
            if effect.get(k):
                self.flags[k] = True
        if "light" in effect:
            self.light_vecs.append(tuple(effect["light"]))
        if cat == "light" and not effect.get("none"):
            self.light_words.append(phrase)
        if cat in ("mood", "time") and not effect.get("none"):
            self.moods.append(phrase)
            if cat == "time":
                self.flags["time"] = phrase
        self.add_grade(effect)

    def light(self) -> tuple[float, float] | None:
        if not self.light_vecs:
            return None
        sx = sum(v[0] for v in self.light_vecs)
        sy = sum(v[1] for v in self.light_vecs)
        norm = (sx * sx + sy * sy) ** 0.5
        return (sx / norm, sy / norm) if norm > 1e-6 else None

    def part(self, t: str) -> Part:
        p = self.parts[t]
        return Part(p["material"], tuple(p["colours"]), p["tone"])


def _pick(entries, next_cats: list[str]) -> tuple[str, str, dict[str, Any]]:
    """The reading of an ambiguous phrase: "light" is a tone before a colour or a material."""
    cats = [c for c, _, _ in entries]
    if "tone" in cats and len(cats) > 1:
        pick = "tone" if ("colour" in next_cats or "surface" in next_cats) else next(c for c in cats if c != "tone")
    else:
        pick = cats[0]
    return next(e for e in entries if e[0] == pick)


def _unused(tokens, unused_idx, ignored) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(unused words once each in order, those of them only a generative engine can draw)."""
    seen: set[str] = set()
    unused: list[str] = []
    for w in [tokens[i] for i in unused_idx] + ignored:
        if w and w not in seen:
            seen.add(w)
            unused.append(w)
    generative = tuple(w for w in unused if any(v in V.GENERATIVE_SCENES for v in _variants(w)))
    return tuple(unused), generative


def parse_prompt(text: str | None) -> ParsedPrompt:
    """Read a scene prompt with the studio vocabulary.

    Colours, tones and materials form a run that describes the next scene noun ("white marble
    *table*", "sage green *wall*", "stone *podium*"); a run that ends without one goes to the
    surface if it holds a material (paper alone: the backdrop), else to the backdrop. A second
    material or a colour after a material closes the run. Commas and full stops close runs too.
    """
    text = "" if text is None else str(text)
    tokens = _tokens(text)
    found, unused_idx = _find(tokens)
    r = _Reader()
    boundaries = {i for i, t in enumerate(tokens) if t is _MARK}
    for j, (start, end, key, entries) in enumerate(found):
        # a clause boundary between the previous match and this one closes the run
        prev_end = found[j - 1][1] if j else 0
        if any(prev_end <= b < start for b in boundaries):
            r.flush()
        nxt = found[j + 1] if j + 1 < len(found) else None
        next_cats = [c for c, _, _ in nxt[3]] if nxt is not None and nxt[0] == end else []
        cat, phrase, effect = _pick(entries, next_cats)
        r.matches.append(Match(phrase, cat, " ".join(t for t in tokens[start:end] if t), start, end))
        r.word(cat, phrase, effect, next_cats)
    r.flush()
    unused, generative = _unused(tokens, unused_idx, r.ignored)
    f = r.flags
    return ParsedPrompt(
        text=text, layout="tabletop" if r.surface_seen else "sweep",
        surface=r.part("surface"), backdrop=r.part("backdrop"), podium=f.get("podium"),
        podium_part=r.part("podium"), palette=f.get("palette"), style=f.get("style"),
        pure=bool(f.get("pure")), plain=bool(f.get("plain")), light=r.light(),
        light_words=tuple(r.light_words), window=bool(f.get("window")), gobo=f.get("gobo"),
        bokeh=bool(f.get("bokeh")), arch=bool(f.get("arch")),
        caustics=bool(f.get("caustics")), blur=bool(f.get("blur")), accent=f.get("accent"),
        moods=tuple(dict.fromkeys(r.moods)), time=f.get("time"), grade=r.grade,
        matches=tuple(r.matches), unused=unused, generative=generative)


@lru_cache(maxsize=1)
def _examples() -> tuple[dict[str, Any], ...]:
    raw = resources.files(__package__).joinpath("examples.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    out = []
    for ex in data:
        prompt = ex.get("prompt") or build_prompt(ex.get("fields", {}))
        out.append({"title": ex["title"], "prompt": prompt, "engines": list(ex["engines"]),
                    "fields": dict(ex.get("fields", {}))})
    return tuple(out)


def examples(engine: str | None = None) -> list[dict[str, Any]]:
    """Curated example prompts: [{"title", "prompt", "engines", "fields"}], optionally only those
    that suit ``engine`` ("studio" or "diffusion")."""
    exs = [json.loads(json.dumps(e)) for e in _examples()]
    if engine is None:
        return exs
    return [e for e in exs if engine in e["engines"]]


__all__ = ["FIELDS", "Match", "ParsedPrompt", "Part", "build_prompt", "examples", "parse_prompt",
           "random_prompt"]
