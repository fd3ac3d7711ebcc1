"""Evaluate a marketplace's rules (:mod:`.rules`) on an image's measurements (:mod:`.measure`).

Each rule gives ``pass``, ``fail`` (a required rule broken), ``warn`` (a recommended rule
broken) or ``n/a`` (cannot be measured on this image, e.g. fill on a lifestyle scene with no plain
backdrop), always with the measured value.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .measure import Measurements, measure
from .rules import SOURCES, rules_for

Verdict = tuple[bool | None, str]   # (passed, None = not measurable; measured value in words)


def _size(m: Measurements, p: dict) -> Verdict:
    w, h = m.width, m.height
    value = f"{w}x{h} px"
    ok = True
    if "min_long" in p:
        ok &= max(w, h) >= p["min_long"]
    if "max_long" in p:
        ok &= max(w, h) <= p["max_long"]
    if "min_short" in p:
        ok &= min(w, h) >= p["min_short"]
    ok &= w >= p.get("min_w", 0) and h >= p.get("min_h", 0)
    ok &= w <= p.get("max_w", 10**9) and h <= p.get("max_h", 10**9)
    if "max_pixels" in p:
        ok &= w * h <= p["max_pixels"]
        value += f" ({w * h / 1e6:.1f} MP)"
    return ok, value


def _aspect(m: Measurements, p: dict) -> Verdict:
    ratio = m.width / m.height
    return abs(ratio - p["ratio"]) <= p["tolerance"] * p["ratio"], f"{ratio:.3f} ({m.width}:{m.height})"


def _background(m: Measurements, p: dict) -> Verdict:
    if not m.plain:
        return False, "no plain backdrop (the frame is not one colour)"
    purity = min(m.frame_purity, m.background_purity)
    return purity >= p["min_purity"], (f"frame {m.frame_purity:.1%} and background {m.background_purity:.1%} "
                                       f"at 255; backdrop median {m.background_rgb}")


def _fill(m: Measurements, p: dict) -> Verdict:
    if not m.plain or m.fill is None:
        return None, "not measurable: no plain backdrop to tell the product from"
    from ..score.compliance import FILL_TOLERANCE  # the generator's own tolerance on fill
    ok = m.fill >= p.get("min", 0) - FILL_TOLERANCE and m.fill <= p.get("max", 1) + FILL_TOLERANCE
    return ok, f"{m.fill:.1%} of the longer side"


def _borders(m: Measurements, p: dict) -> Verdict:
    t, r, b, l = m.borders
    if not any(m.borders):
        return True, "none"
    return False, f"top {t}, right {r}, bottom {b}, left {l} px"


def _colour(m: Measurements, p: dict) -> Verdict:
    mode_ok = m.mode in ("RGB", "RGBA", "L", "LA", "P", "1")
    icc_ok = m.icc is None or "srgb" in m.icc.lower().replace(" ", "").replace("-", "")
    profile = m.icc or "no profile (taken as sRGB)"
    return mode_ok and icc_ok, f"{m.mode}, {profile}"


def _format(m: Measurements, p: dict) -> Verdict:
    return (m.format or "") in p["formats"], str(m.format)


def _file_size(m: Measurements, p: dict) -> Verdict:
    return m.file_bytes <= p["max_bytes"], f"{m.file_bytes / 1024 / 1024:.2f} MB"


def _text(m: Measurements, p: dict) -> Verdict:
    if not m.plain:
        return None, "not measurable: the heuristic reads marks on a plain backdrop only"
    if not m.text_lines:
        return True, "no text-like marks on the backdrop"
    boxes = "; ".join(",".join(map(str, b)) for b in m.text_lines[:3])
    return False, f"{len(m.text_lines)} line(s) of text-like marks at {boxes}"


def _ai_tag(m: Measurements, p: dict) -> Verdict:
    tag = m.source_type
    if tag and "rainedalgorithmicmedia" in tag.lower():
        return True, f"DigitalSourceType {tag}"
    if m.generated:
        return False, f"generation parameters found but DigitalSourceType is {tag or 'missing'}"
    return True, (f"DigitalSourceType {tag}; no generation parameters" if tag else
                  "no generation metadata (AI use cannot be seen in the pixels)")


EVALUATORS: dict[str, Callable[[Measurements, dict], Verdict]] = {
    "size": _size, "aspect": _aspect, "background": _background, "fill": _fill, "borders": _borders,
    "colour": _colour, "format": _format, "file_size": _file_size, "text": _text, "ai_tag": _ai_tag,
}


@dataclass
class RuleResult:
    check: str
    level: str
    status: str          # pass | fail | warn | n/a
    value: str
    rule: str
    source: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CheckReport:
    source: str
    marketplace: str
    results: list[RuleResult]
    measurements: Measurements

    @property
    def passed(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "fail"]

    def as_dict(self) -> dict:
        return {"source": self.source, "marketplace": self.marketplace, "passed": self.passed,
                "rules": [r.as_dict() for r in self.results]}


def evaluate(m: Measurements, marketplace: str) -> CheckReport:
    results = []
    for r in rules_for(marketplace):
        ok, value = EVALUATORS[r.check](m, r.params)
        status = "n/a" if ok is None else "pass" if ok else ("fail" if r.level == "required" else "warn")
        results.append(RuleResult(r.check, r.level, status, value, r.text, SOURCES[r.source]))
    return CheckReport(m.source, marketplace, results, m)


def check_image(src: str | Path | bytes, marketplace: str, *, max_pixels: int = 50_000_000) -> CheckReport:
    """Measure ``src`` and evaluate ``marketplace``'s rules on it."""
    rules_for(marketplace)  # unknown marketplace: fail before reading anything
    return evaluate(measure(src, max_pixels=max_pixels), marketplace)

