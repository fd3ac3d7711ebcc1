"""Contact sheet: seller photos x six everyday prompts, this version next to a previous release.

    python examples/contact_sheet.py                       # rendered photos -> docs/images/contact_sheet.jpg
    python examples/contact_sheet.py --photos A.jpg B.jpg C.jpg --background ROOM.jpg \
        --out out/contact_sheet_seed.png                  # your own photos (not for the repo)
    python examples/contact_sheet.py --previous /tmp/prev  # a previous release's checkout to compare
                                                          # (git worktree add /tmp/prev e89ab7d)

Without ``--photos`` it renders three seller-like product photos itself (an amber bottle shot a
little from above, a round cookie shot from straight above, a T-shirt cut by the frame at the
hips) and a "seller background photo" (a wall and a wooden sideboard lit from a window): rendered
by this script, CC0, so the project may ship the sheet. Real seller photos (``../shared/data``)
must never be copied into the repository: their sheet goes to ``out/``.

Each photo gets two rows: the previous release (when ``--previous`` is given), then this one;
columns: the photo, then the six prompts. The previous release has no ``--background``: its
column shows the prompt a seller would have typed instead ("on my kitchen sideboard"). Every
image is made by the CLI as a process (``python -m packshot generate``), seed 1, one candidate.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    ("white studio", ["-p", "pure white studio background"]),
    ("marble, morning light", ["-p", "white marble table, soft morning light"]),
    ("wooden table", ["-p", "wooden table"]),
    ("concrete podium, side light", ["-p", "concrete podium, side light"]),
    ("pastel gradient", ["-p", "pastel gradient"]),
    ("seller background photo", None),  # --background ROOM (previous release: a kitchen prompt)
]
PREVIOUS_BG_PROMPT = "on my kitchen sideboard"
TILE = 300
SIZE = "1024x1024"


# -- rendered seller photos (CC0) ---------------------------------------------------------------
def _aa(draw, w: int, h: int, ss: int = 3) -> np.ndarray:
    m = np.zeros((h * ss, w * ss), np.uint8)
    draw(m, ss)
    return cv2.resize(m.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)


def _finish(img: np.ndarray, rng, path: Path, noise: float = 0.007) -> Path:
    img = img + rng.normal(0, noise, img.shape).astype(np.float32)
    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(path, quality=90)
    return path


def _sweep(w: int, h: int, top, bottom) -> np.ndarray:
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(np.float32(top) * (1 - t) + np.float32(bottom) * t, (h, w, 3)).copy()


def render_bottle(path: Path, w: int = 1600, h: int = 1600) -> Path:
    """Amber glass bottle, black cap, cream label, seen a little from above; white sweep."""
    rng = np.random.default_rng(11)
    cx, bw, top, base, ry = 0.5, 0.15, 0.34, 0.84, 0.03

    def body(m, ss):
        X, Y = (lambda f: int(f * w * ss)), (lambda f: int(f * h * ss))
        cv2.rectangle(m, (X(cx - bw), Y(top)), (X(cx + bw), Y(base)), 255, -1)
        cv2.ellipse(m, (X(cx), Y(base)), (X(bw), Y(ry)), 0, 0, 180, 255, -1)
        cv2.ellipse(m, (X(cx), Y(top)), (X(bw), Y(0.07)), 0, 180, 360, 255, -1)
        cv2.rectangle(m, (X(cx - 0.055), Y(0.2)), (X(cx + 0.055), Y(0.3)), 255, -1)
        cv2.rectangle(m, (X(cx - 0.062), Y(0.13)), (X(cx + 0.062), Y(0.21)), 255, -1)
    alpha = _aa(body, w, h)
    bg = _sweep(w, h, (0.97, 0.97, 0.96), (0.9, 0.9, 0.89))
    sh = np.zeros((h, w), np.float32)
    cv2.ellipse(sh, (int(cx * w) + 30, int(base * h)), (int(bw * w * 1.1), int(ry * h * 1.2)), 0, 0, 360, 1, -1)
    bg *= 1 - (cv2.GaussianBlur(sh, (0, 0), 14) * 0.5)[..., None]
    xx = (np.arange(w, dtype=np.float32)[None, :] / w - cx) / bw
    yy = np.arange(h, dtype=np.float32)[:, None] / h
    shade = 0.45 + 0.55 * np.cos(np.clip(xx + 0.3, -1.57, 1.57))
    glass = np.float32([0.42, 0.2, 0.06])[None, None] * shade[..., None]
    glass += (np.exp(-((xx + 0.55) ** 2) / 0.004) * 0.5)[..., None]  # window highlight
    cap = (yy < 0.21)[..., None] & np.ones((1, w, 1), bool)
    col = np.where(cap, np.float32([0.06, 0.06, 0.07]) * (0.6 + 0.6 * shade[..., None]), glass)
    label = (yy > 0.45) & (yy < 0.74) & (np.abs(xx) < 1.0)
    lab = np.float32([0.93, 0.88, 0.76])[None, None] * (0.55 + 0.5 * shade[..., None])
    col = np.where(label[..., None], lab, col)
    stripe = label & (np.abs(yy - 0.53) < 0.02)
    col = np.where(stripe[..., None], np.float32([0.5, 0.12, 0.1]) * shade[..., None], col)
    img = col * alpha[..., None] + bg * (1 - alpha[..., None])
    return _finish(img, rng, path)


def render_cookie(path: Path, w: int = 1500, h: int = 1500) -> Path:
    """A round cookie on a white plate-like backdrop, shot from straight above."""
    rng = np.random.default_rng(12)

    def disc(m, ss):
        pts = []
        for i in range(90):
            a = 2 * np.pi * i / 90
            r = 0.3 * (1 + 0.025 * np.sin(5 * a + 1) + 0.015 * np.sin(11 * a))
            pts.append((int((0.5 + r * np.cos(a)) * w * ss), int((0.5 + r * np.sin(a)) * h * ss)))
        cv2.fillPoly(m, [np.array(pts, np.int32)], 255)
    alpha = _aa(disc, w, h)
    bg = _sweep(w, h, (0.95, 0.95, 0.94), (0.93, 0.93, 0.92))
    sh = cv2.GaussianBlur(np.roll(alpha, (12, 12), (0, 1)), (0, 0), 16)
    bg *= 1 - 0.35 * sh[..., None]
    n = cv2.resize(rng.standard_normal((60, 60)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 2.5)
    lum = 0.75 + 0.12 * n + 0.25 * fine
    dough = np.float32([0.62, 0.42, 0.24])[None, None] * lum[..., None]
    chips = cv2.GaussianBlur((rng.random((h, w)) > 0.9985).astype(np.float32), (0, 0), 7) > 0.02
    dough = np.where(chips[..., None], np.float32([0.18, 0.1, 0.06]), dough)
    img = dough * alpha[..., None] + bg * (1 - alpha[..., None])
    return _finish(img, rng, path, 0.009)


def render_tshirt(path: Path, w: int = 1200, h: int = 1500) -> Path:
    """A teal T-shirt on a dress form, cut by the frame at the hips; light grey backdrop."""
    rng = np.random.default_rng(13)
    pts = [(0.36, 0.12), (0.64, 0.12), (0.88, 0.24), (0.96, 0.46), (0.82, 0.5), (0.76, 0.38), (0.75, 1.01),
           (0.25, 1.01), (0.24, 0.38), (0.18, 0.5), (0.04, 0.46), (0.12, 0.24)]

    def shirt(m, ss):
        cv2.fillPoly(m, [np.array([(int(x * w * ss), int(y * h * ss)) for x, y in pts], np.int32)], 255)
        cv2.ellipse(m, (int(0.5 * w * ss), int(0.115 * h * ss)), (int(0.1 * w * ss), int(0.045 * h * ss)),
                    0, 0, 180, 0, -1)
    alpha = _aa(shirt, w, h)
    bg = _sweep(w, h, (0.88, 0.88, 0.87), (0.8, 0.8, 0.79))
    xx = np.arange(w, dtype=np.float32)[None, :] / w
    folds = cv2.GaussianBlur(rng.standard_normal((h // 8, w // 8)).astype(np.float32), (0, 0), 3)
    folds = cv2.resize(folds, (w, h), interpolation=cv2.INTER_CUBIC)
    shade = 0.75 + 0.3 * np.cos((xx - 0.4) * 2.2) + 0.25 * folds
    cloth = np.float32([0.1, 0.45, 0.48])[None, None] * shade[..., None]
    print_m = np.zeros((h, w), np.float32)
    cv2.circle(print_m, (w // 2, int(0.4 * h)), int(0.09 * w), 1.0, -1, cv2.LINE_AA)
    cloth = cloth * (1 - print_m[..., None]) + np.float32([0.95, 0.8, 0.3]) * print_m[..., None]
    img = cloth * alpha[..., None] + bg * (1 - alpha[..., None])
    return _finish(img, rng, path)


def render_room(path: Path, w: int = 1600, h: int = 1200) -> Path:
    """A seller's background photo: a plaster wall lit from a window on the left, a wooden
    sideboard top in the lower third, a plant pot out of focus at the right."""
    rng = np.random.default_rng(14)
    xx = np.arange(w, dtype=np.float32)[None, :] / w
    yy = np.arange(h, dtype=np.float32)[:, None] / h
    wall = (0.93 - 0.25 * xx) * (1 - 0.05 * yy)
    img = np.dstack([wall * 0.98, wall * 0.95, wall * 0.9]).astype(np.float32)
    top = yy > 0.64
    grain = cv2.resize(rng.standard_normal((h // 2, 6)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    wood = np.dstack([0.55 + 0 * xx, 0.38 + 0 * xx, 0.24 + 0 * xx]) * (0.9 - 0.25 * xx + 0.05 * grain)[..., None]
    img = np.where(top[..., None], wood * (0.8 + 0.25 * (yy - 0.64))[..., None], img)
    edge = np.abs(yy - 0.64) < 0.004
    img[np.broadcast_to(edge, (h, w))] *= 0.7
    pot = np.zeros((h, w), np.float32)
    cv2.ellipse(pot, (int(0.9 * w), int(0.5 * h)), (int(0.07 * w), int(0.15 * h)), 0, 0, 360, 1, -1)
    cv2.circle(pot, (int(0.9 * w), int(0.3 * h)), int(0.1 * w), 1, -1)
    pot = cv2.GaussianBlur(pot, (0, 0), 18)
    img = img * (1 - pot[..., None]) + np.float32([0.25, 0.4, 0.22]) * pot[..., None]
    return _finish(img, rng, path, 0.006)


# -- running the CLI -----------------------------------------------------------------------------
def _generate(src: Path, photo: Path, args: list[str], out: Path) -> Image.Image:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "packshot", "generate", str(photo), "-n", "1", "--seed", "1", "--size", SIZE,
           "-o", str(out), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    files = sorted(out.glob("candidate_01_*"))
    if proc.returncode != 0 or not files:
        return _text_tile(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    return Image.open(files[0]).convert("RGB")


def _text_tile(text: str) -> Image.Image:
    im = Image.new("RGB", (TILE, TILE), (235, 235, 235))
    d = ImageDraw.Draw(im)
    words, line, y = text.split(), "", 10
    for wd in words:
        if len(line) + len(wd) > 38:
            d.text((8, y), line, fill=(60, 60, 60))
            line, y = "", y + 14
        line += wd + " "
    d.text((8, y), line, fill=(60, 60, 60))
    return im


def _fit(im: Image.Image) -> Image.Image:
    im = im.copy()
    im.thumbnail((TILE, TILE), Image.LANCZOS)
    tile = Image.new("RGB", (TILE, TILE), (255, 255, 255))
    tile.paste(im, ((TILE - im.width) // 2, (TILE - im.height) // 2))
    return tile


def build(photos: list[Path], background: Path, out: Path, previous: Path | None, work: Path) -> Path:
    versions = ([("previous release", previous)] if previous else []) + [("this version", ROOT / "src")]
    label_w, head = 150, 36
    rows = len(photos) * len(versions)
    sheet = Image.new("RGB", (label_w + TILE * (len(PROMPTS) + 1), head + TILE * rows), "white")
    d = ImageDraw.Draw(sheet)
    for j, title in enumerate(["photo"] + [t for t, _ in PROMPTS]):
        d.text((label_w + j * TILE + 8, 12), title, fill=(0, 0, 0))
    r = 0
    for i, photo in enumerate(photos):
        for vname, src in versions:
            y = head + r * TILE
            d.text((8, y + TILE // 2 - 8), f"{photo.stem[:18]}\n{vname}", fill=(0, 0, 0))
            sheet.paste(_fit(Image.open(photo).convert("RGB")), (label_w, y))
            for j, (title, args) in enumerate(PROMPTS):
                if args is None:
                    old = src != ROOT / "src"
                    args = ["-p", PREVIOUS_BG_PROMPT] if old else ["--background", str(background)]
                tile = _generate(src, photo, args, work / f"{i}_{vname[:4]}_{j}")
                sheet.paste(_fit(tile), (label_w + (j + 1) * TILE, y))
            r += 1
            print(f"row {r}/{rows}: {photo.name} ({vname})", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=90) if out.suffix.lower() in (".jpg", ".jpeg") else sheet.save(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", nargs="+", type=Path, help="product photos (default: rendered ones)")
    ap.add_argument("--background", type=Path, help="a seller background photo (default: rendered)")
    ap.add_argument("--previous", type=Path, help="a previous release's checkout (its src/ is used)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "contact_sheet.jpg")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = a.photos or [render_bottle(work / "bottle.jpg"), render_cookie(work / "cookie.jpg"),
                              render_tshirt(work / "tshirt.jpg")]
        background = a.background or render_room(work / "room.jpg")
        previous = (a.previous / "src") if a.previous else None
        print(f"wrote {build(photos, background, a.out, previous, work)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
