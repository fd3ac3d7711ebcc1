"""``--fix``: write a compliant copy where a fix is honest, and say why not where it is not.

Honest fixes (each one listed in the result's ``actions``):

* colour: the pixels are already converted to sRGB on load (ICC profile or CMYK); the copy is
  written as 8-bit RGB with an sRGB profile;
* borders: cropped off (they are not the photo);
* white-background marketplaces (a ``background`` rule), when background, fill, size or aspect
  fail: the product is cut out again with packshot's own segmenter and laid out by the layout stage
  on a square pure-white canvas at the marketplace's fill, with the exact paste-back of the
  compositor (the product's opaque pixels are copied, only uniformly rescaled);
* other marketplaces: the whole image is rescaled to the minimum size, or padded to the aspect with
  the backdrop's own colour when the backdrop is plain;
* format and file size: re-encoded (the source format if allowed, else JPEG quality 92..80).

Refused: stamped text or watermarks (removing them would invent pixels), an image that would need
the product or the photo upscaled more than :data:`MAX_UPSCALE` times to reach the minimum, an
aspect that would need cropping or an invented background.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import PackshotError
from ..io import encode_image, write_atomic
from .check import CheckReport, evaluate
from .measure import Measurements, measure, measure_pixels
from .rules import WHITE, rules_for

MAX_UPSCALE = 2.0


class RefusedFix(PackshotError):
    """A fix that would not be honest (the message says why)."""

    http_status = 422


@dataclass
class FixResult:
    source: str
    output: str | None
    actions: list[str] = field(default_factory=list)
    refused: str | None = None
    after: CheckReport | None = None

    def as_dict(self) -> dict:
        return {"source": self.source, "output": self.output, "actions": self.actions,
                "refused": self.refused, "after": self.after.as_dict() if self.after else None}


def _params(marketplace: str, check: str) -> dict | None:
    r = next((r for r in rules_for(marketplace) if r.check == check), None)
    return None if r is None else r.params


def _min_long(marketplace: str, m: Measurements) -> int:
    p = _params(marketplace, "size") or {}
    return max(p.get("min_long", 0), p.get("min_w", 0), p.get("min_h", 0), p.get("min_short", 0))


def _max_long(marketplace: str) -> int:
    p = _params(marketplace, "size") or {}
    return min(p.get("max_long", 10**9), p.get("max_w", 10**9), p.get("max_h", 10**9))


def _target_fill(marketplace: str, m: Measurements) -> float:
    p = _params(marketplace, "fill")
    if p is None:
        return m.fill or 0.8
    if m.fill is not None and p.get("min", 0) <= m.fill <= p.get("max", 1):
        return m.fill
    return (p["min"] + p["max"]) / 2 if "max" in p else p["min"]


def _on_white(rgb: np.ndarray, marketplace: str, m: Measurements, settings) -> tuple[np.ndarray, str]:
    """Cut out again and lay out centred on a square pure-white canvas at the target fill."""
    from ..composite import compose
    from ..layout import place, plan
    from ..pipeline import default_pipeline
    from ..schema import GenerateRequest
    from ..types import Photo, Scene

    cut = default_pipeline(settings).cutout(Photo(rgb=rgb, source=m.source))
    x0, y0, x1, y1 = cut.bbox
    fill = _target_fill(marketplace, m)
    side = max(rgb.shape[0], rgb.shape[1], _min_long(marketplace, m))
    side = min(side, _max_long(marketplace), 4096)
    if fill == m.fill and side == max(rgb.shape[:2]):
        fill = max(x1 - x0, y1 - y0) / side  # the fill is right: keep the product's pixels unscaled
    upscale = fill * side / max(x1 - x0, y1 - y0)
    if abs(upscale - 1.0) < 1e-9:
        upscale = 1.0
    if upscale > MAX_UPSCALE:
        raise RefusedFix(f"{m.source}: the product is {max(x1 - x0, y1 - y0)} px; {fill:.0%} of a {side} px "
                         f"canvas needs it upscaled {upscale:.1f}x (more than {MAX_UPSCALE:g}x): retake or "
                         "export the photo larger")
    req = GenerateRequest(size=f"{side}x{side}", scale=fill, placement="center", margin=0.0)
    placement = dataclasses.replace(plan(cut, req), background_rgb=WHITE)
    layer = place(cut, placement)
    scene = Scene(rgb=np.full((side, side, 3), 255, np.uint8), seed=0, engine="fix", needs_shadow=False)
    return compose(scene, layer, shadow=False), (
        f"cut out again and placed centred on pure white {side}x{side} at {fill:.0%} fill "
        f"(product scaled {upscale:.2f}x, opaque pixels pasted exactly)")


def _resize_or_pad(rgb: np.ndarray, marketplace: str, m: Measurements, report: CheckReport,
                   actions: list[str]) -> np.ndarray:
    failing = {r.check for r in report.results if r.status in ("fail", "warn")}
    H, W = rgb.shape[:2]
    aspect = _params(marketplace, "aspect")
    if aspect and "aspect" in failing:
        if not m.plain:
            raise RefusedFix(f"{m.source}: aspect {W / H:.3f} needs {aspect['ratio']:.3f}; the backdrop is not "
                             "plain, so padding would invent background and cropping could cut the product")
        ratio = aspect["ratio"]
        nw, nh = (round(H * ratio), H) if W / H < ratio else (W, round(W / ratio))
        top, left = (nh - H) // 2, (nw - W) // 2
        rgb = cv2.copyMakeBorder(rgb, top, nh - H - top, left, nw - W - left, cv2.BORDER_CONSTANT,
                                 value=tuple(int(v) for v in m.background_rgb))
        actions.append(f"padded to {nw}x{nh} with the backdrop colour {m.background_rgb}")
        H, W = rgb.shape[:2]
    need = _min_long(marketplace, m)
    p = _params(marketplace, "size") or {}
    short_rule = "min_short" in p
    have = min(W, H) if (short_rule or "min_w" in p) else max(W, H)
    if have < need:
        f = need / have
        if f > MAX_UPSCALE:
            raise RefusedFix(f"{m.source}: {W}x{H} px would need upscaling {f:.1f}x to reach {need} px "
                             f"(more than {MAX_UPSCALE:g}x): retake or export the photo larger")
        rgb = cv2.resize(rgb, (round(W * f), round(H * f)), interpolation=cv2.INTER_LANCZOS4)
        actions.append(f"rescaled {f:.2f}x to {rgb.shape[1]}x{rgb.shape[0]}")
    top = _max_long(marketplace)
    if max(rgb.shape[:2]) > top:
        f = top / max(rgb.shape[:2])
        rgb = cv2.resize(rgb, (int(rgb.shape[1] * f), int(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
        actions.append(f"scaled down to {rgb.shape[1]}x{rgb.shape[0]}")
    return rgb


def _encode(rgb: np.ndarray, marketplace: str, m: Measurements) -> tuple[bytes, str]:
    formats = (_params(marketplace, "format") or {}).get("formats", ("JPEG", "PNG"))
    limit = (_params(marketplace, "file_size") or {}).get("max_bytes", 10**12)
    fmt = m.format if m.format in ("PNG", "JPEG", "WEBP") and m.format in formats else "JPEG"
    data = encode_image(rgb, fmt.lower())
    if len(data) > limit and fmt != "JPEG":
        fmt, data = "JPEG", encode_image(rgb, "jpeg", quality=92)
    for q in (92, 88, 84, 80):
        if len(data) <= limit:
            break
        data = encode_image(rgb, "jpeg", quality=q)
    if len(data) > limit:
        raise RefusedFix(f"{m.source}: still {len(data) / 1048576:.1f} MB as JPEG quality 80, over the "
                         f"{limit / 1048576:g} MB limit")
    return data, fmt


def fix_image(src: str | Path, marketplace: str, output: str | Path, settings=None) -> FixResult:
    """Write a compliant copy of ``src`` to ``output`` (its suffix follows the chosen format)."""
    m = measure(src)
    report = evaluate(m, marketplace)
    res = FixResult(source=m.source, output=None)
    bad = {r.check for r in report.results if r.status == "fail"}
    if not bad:
        res.after = report
        res.refused = "nothing to fix: every required rule passes"
        return res
    try:
        if "text" in bad:
            raise RefusedFix(f"{m.source}: text-like marks on the backdrop ({report_value(report, 'text')}): "
                             "removing them would invent pixels; remove them at the source")
        rgb = m.rgb
        if "colour" in bad:
            res.actions.append(f"converted {m.mode} ({m.icc or 'no profile'}) to 8-bit sRGB")
            # the converted pixels may break pixel rules (CMYK white is rarely 255): measure them
            m = measure_pixels(dataclasses.replace(m), rgb)
            report = evaluate(m, marketplace)
            bad |= {r.check for r in report.results if r.status == "fail"}
        t, r, b, l = m.borders
        if any(m.borders):
            rgb = rgb[t:rgb.shape[0] - b, l:rgb.shape[1] - r]
            res.actions.append(f"cropped the border (top {t}, right {r}, bottom {b}, left {l} px)")
        layout_bad = bad & {"background", "fill", "size", "aspect"}
        if _params(marketplace, "background") is not None and layout_bad:
            rgb, action = _on_white(np.ascontiguousarray(rgb), marketplace, m, settings)
            res.actions.append(action)
        else:
            rgb = _resize_or_pad(rgb, marketplace, m, report, res.actions)
        data, fmt = _encode(np.ascontiguousarray(rgb), marketplace, m)
        if fmt != m.format or "file_size" in bad or "format" in bad:
            res.actions.append(f"written as {fmt} ({len(data) / 1048576:.2f} MB)")
    except RefusedFix as e:
        res.refused = str(e)
        return res
    out = Path(output).with_suffix({"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}[fmt])
    write_atomic(out, data)
    res.output = str(out)
    res.after = evaluate(measure(out), marketplace)
    return res


def report_value(report: CheckReport, check: str) -> str:
    return next((r.value for r in report.results if r.check == check), "")
