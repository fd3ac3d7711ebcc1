"""Measure an image file the way a marketplace's checker would, without knowing its matte.

Everything is measured on the stored file (format, bytes, mode, ICC profile, XMP) and on its
pixels decoded to sRGB by :func:`packshot.io.load_image` (transparent pixels flattened on white).

* **borders** (per side, px): the run of uniform lines (>= 97% of the line within 8 of its
  median colour) at an edge whose colour jumps by more than 12 from the uniform lines further in,
  or (runs up to 1.5% of the shorter side) from the mean of the first non-uniform line (a frame
  around a scene).
* **plain background**: the outer frame (inside any border) is >= 95% within 16 of its median
  colour; ``background_rgb`` is that median. Only then are fill, purity and text measured (a
  lifestyle scene has no backdrop to tell the product from).
* **frame purity**: :func:`packshot.score.compliance.border_purity` (the same frame the generator's
  compliance score reads) at pure white.
* **product**: pixels differing from the backdrop colour by more than 16 (any channel), opened
  3x3; connected components of at least 5% of the largest one are the product; **fill** is the
  longer side of their joint box over the image's longer side, the same definition as
  :func:`packshot.score.compliance.fill`.
* **background purity**: share of backdrop pixels (not product, not mark, at least 1% of the
  shorter side (>= 3 px) away from both, borders excluded) that are exactly 255,255,255.
* **text / watermark** (heuristic): the remaining small components on the backdrop that look like
  glyphs (height 0.4-12% of the shorter side, aspect 0.08-3, ink 8-95% of their box) and line up
  in a row of at least 3 (centres within half a glyph height, gaps under 1.5 heights) are a line
  of stamped text. Text printed on the product itself is part of the product and is not counted
  (marketplaces allow it); a watermark drawn across the product is not caught.
"""
from __future__ import annotations

import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

from ..errors import ImageLoadError
from ..io import load_image
from ..score.compliance import border_purity
from ..types import Box

UNIFORM_TOL, UNIFORM_SHARE, JUMP = 8, 0.97, 12
PLAIN_TOL, PLAIN_SHARE = 16, 0.95
FG_TOL = 16
KEEP_OUT = 0.01
_XMP_SOURCE = re.compile(rb"DigitalSourceType(?:>|=\")\s*([^<\"\s]+)")
_GEN_KEYS = ("Steps:", "Sampler:", "CFG scale:", "Engine: diffusion")


@dataclass
class Measurements:
    source: str
    format: str | None
    file_bytes: int
    mode: str
    icc: str | None
    width: int
    height: int
    has_alpha: bool
    source_type: str | None
    generated: bool
    borders: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, right, bottom, left
    plain: bool = False
    background_rgb: tuple[int, int, int] | None = None
    frame_purity: float | None = None
    background_purity: float | None = None
    fill: float | None = None
    product_box: Box | None = None
    text_lines: list[Box] = field(default_factory=list)
    rgb: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("rgb", None)
        return d


def _read(src: str | Path | bytes) -> tuple[str, bytes]:
    if isinstance(src, (bytes, bytearray)):
        return "<upload>", bytes(src)
    path = Path(src)
    if not path.is_file():
        raise ImageLoadError(f"{src}: no such file" if not path.exists() else f"{src}: is not a file")
    return str(src), path.read_bytes()


def _file_facts(name: str, data: bytes) -> dict:
    try:
        im = Image.open(io.BytesIO(data))
    except Exception:
        raise ImageLoadError(f"{name}: not an image (unrecognised format)") from None
    icc = im.info.get("icc_profile")
    desc = None
    if icc:
        try:
            desc = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
        except (ImageCms.PyCMSError, OSError):
            desc = "unreadable profile"
    xmp = im.info.get("XML:com.adobe.xmp") or im.info.get("xmp") or b""
    xmp = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    m = _XMP_SOURCE.search(xmp)
    params = im.info.get("parameters") or ""
    if not params and im.format in ("JPEG", "WEBP"):
        raw = im.getexif().get_ifd(0x8769).get(0x9286, b"")
        if isinstance(raw, bytes) and raw.startswith(b"UNICODE\x00"):
            params = raw[8:].decode("utf-16-be", "replace")
    return {"format": im.format, "mode": im.mode, "icc": desc,
            "has_alpha": "A" in im.mode or "transparency" in im.info,
            "source_type": m.group(1).decode("ascii", "replace").rsplit("/", 1)[-1] if m else None,
            "generated": any(k in params for k in _GEN_KEYS)}


def _uniform_run(lines, short_run: int) -> int:
    """Border width at one edge: ``lines`` yields (n, 3) pixel rows from the edge inwards.

    A border is a run of uniform lines of one colour followed either by uniform lines of another
    colour (a frame on a plain backdrop) or, for runs up to ``short_run`` lines, by a line that is
    not uniform and differs in mean colour (a frame around a scene)."""
    colours, after = [], None
    for line in lines:
        med = np.median(line, axis=0)
        if np.mean(np.abs(line.astype(np.int16) - med).max(axis=1) <= UNIFORM_TOL) < UNIFORM_SHARE:
            after = line.mean(axis=0)
            break
        colours.append(med)
    if not colours:
        return 0
    for i in range(len(colours) - 1):
        if np.abs(colours[i] - colours[i + 1]).max() > JUMP:
            # the outer run must itself be one colour
            if all(np.abs(colours[j] - colours[0]).max() <= JUMP for j in range(i + 1)):
                return i + 1
            return 0
    if after is not None and len(colours) <= short_run and np.abs(colours[0] - after).max() > JUMP:
        return len(colours)
    return 0


def borders(rgb: np.ndarray) -> tuple[int, int, int, int]:
    H, W = rgb.shape[:2]
    depth = max(2, min(H, W) // 25)  # borders up to 4% of the shorter side
    short = max(3, round(0.015 * min(H, W)))  # around a scene: up to 1.5%
    return (_uniform_run((rgb[i] for i in range(depth)), short),
            _uniform_run((rgb[:, W - 1 - i] for i in range(depth)), short),
            _uniform_run((rgb[H - 1 - i] for i in range(depth)), short),
            _uniform_run((rgb[:, i] for i in range(depth)), short))


def _frame(rgb: np.ndarray) -> np.ndarray:
    H, W = rgb.shape[:2]
    b = max(2, round(0.005 * min(W, H)))
    return np.concatenate([rgb[:b].reshape(-1, 3), rgb[H - b:].reshape(-1, 3),
                           rgb[:, :b].reshape(-1, 3), rgb[:, W - b:].reshape(-1, 3)])


def _glyph_lines(stats: np.ndarray, labels_small: list[int], short_side: int) -> list[Box]:
    glyphs = []
    for i in labels_small:
        x, y, w, h, area = (int(v) for v in stats[i])
        if 0.004 * short_side <= h <= 0.12 * short_side and 0.08 <= w / h <= 3 and 0.08 <= area / (w * h) <= 0.95:
            glyphs.append((x, y, w, h))
    glyphs.sort()
    lines: list[list[tuple]] = []
    for g in glyphs:
        cy = g[1] + g[3] / 2
        for line in lines:
            last = line[-1]
            hh = max(last[3], g[3])
            if abs(last[1] + last[3] / 2 - cy) <= hh / 2 and g[0] - (last[0] + last[2]) <= 1.5 * hh \
                    and max(last[3], g[3]) <= 2.5 * min(last[3], g[3]):
                line.append(g)
                break
        else:
            lines.append([g])
    out = []
    for line in lines:
        if len(line) >= 3:
            xs = [g[0] for g in line] + [g[0] + g[2] for g in line]
            ys = [g[1] for g in line] + [g[1] + g[3] for g in line]
            out.append((min(xs), min(ys), max(xs), max(ys)))
    return out


def _measure_backdrop(m: Measurements, rgb: np.ndarray) -> None:
    """Fill, purity and text on a plain backdrop (see the module docstring)."""
    t, r, b, l = m.borders
    inner = rgb[t:rgb.shape[0] - b, l:rgb.shape[1] - r]
    H, W = inner.shape[:2]
    if H < 8 or W < 8:
        return
    frame = _frame(inner)
    med = np.median(frame, axis=0)
    if np.mean(np.abs(frame.astype(np.int16) - med).max(axis=1) <= PLAIN_TOL) < PLAIN_SHARE:
        return
    m.plain = True
    m.background_rgb = tuple(int(round(v)) for v in med)
    m.frame_purity = border_purity(rgb, (255, 255, 255))
    diff = cv2.absdiff(inner, np.full_like(inner, m.background_rgb)).max(axis=2)
    mask = cv2.morphologyEx((diff > FG_TOL).view(np.uint8) * np.uint8(255), cv2.MORPH_OPEN,
                            np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    ink = np.zeros(n, bool)
    if n > 1:
        big = 1 + np.flatnonzero(areas >= 0.05 * areas.max())
        small = [i for i in range(1, n) if i not in set(big.tolist())]
        x0 = stats[big, 0].min(); y0 = stats[big, 1].min()
        x1 = (stats[big, 0] + stats[big, 2]).max(); y1 = (stats[big, 1] + stats[big, 3]).max()
        m.product_box = (int(x0 + l), int(y0 + t), int(x1 + l), int(y1 + t))
        m.fill = max(int(x1 - x0), int(y1 - y0)) / max(rgb.shape[1], rgb.shape[0])
        m.text_lines = [(a + l, c + t, e + l, d + t) for a, c, e, d in _glyph_lines(stats, small, min(H, W))]
        ink[1:] = True
    else:
        m.fill = 0.0
    r = max(3, round(KEEP_OUT * min(H, W)))  # the product's soft edge and faint matte tail
    keep_out = cv2.dilate(ink[labels].view(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    bg = keep_out == 0
    total = int(np.count_nonzero(bg))
    white = np.all(inner == 255, axis=2)
    m.background_purity = float(np.count_nonzero(white & bg) / total) if total else 1.0


def measure(src: str | Path | bytes, *, max_pixels: int = 50_000_000) -> Measurements:
    """All measurements of one image file (see the module docstring)."""
    name, data = _read(src)
    if not data:
        raise ImageLoadError(f"{name}: empty file (0 bytes)")
    facts = _file_facts(name, data)
    photo = load_image(data if isinstance(src, (bytes, bytearray)) else src, max_pixels=max_pixels)
    rgb = photo.rgb
    if photo.alpha is not None:  # transparent pixels shown on white, as marketplaces display them
        a = photo.alpha[..., None]
        rgb = np.round(rgb * a + 255.0 * (1 - a)).astype(np.uint8)
    m = Measurements(source=name, file_bytes=len(data), width=photo.size[0], height=photo.size[1],
                     rgb=rgb, **facts)
    measure_pixels(m, rgb)
    return m


def measure_pixels(m: Measurements, rgb: np.ndarray) -> Measurements:
    """(Re)measure the pixel rules of ``m`` on ``rgb`` (borders, backdrop, fill, purity, text)."""
    m.rgb, m.width, m.height = rgb, int(rgb.shape[1]), int(rgb.shape[0])
    m.plain, m.background_rgb, m.frame_purity, m.background_purity = False, None, None, None
    m.fill, m.product_box, m.text_lines = None, None, []
    m.borders = borders(rgb)
    _measure_backdrop(m, rgb)
    return m
