"""Cut-out benchmark: accuracy and speed of the classic segmenter. Prints tables (markdown).

Sections (``--only NAME`` to run some):

* ``set``     plain-backdrop set (../shared/tools/make_backdrop_set.py on ../shared/data/matting):
              IoU at alpha >= 0.5 and alpha MAE, per backdrop type and per object;
* ``speed``   automatic cut-out of 2400x2400 photos (seller photos from ../shared/data, and a
              rendered mug): wall time of ``ClassicSegmenter.segment`` (decoding excluded), median;
* ``box``     cluttered photos of ../shared/data/matting with the ground-truth box + 5% margin as
              the hint: ours vs plain OpenCV GrabCut on the same box (IoU, alpha MSE, time);
* ``halo``    a mug rendered on a saturated green backdrop, cut out and composited on white:
              mean CIEDE2000 in the edge band against compositing the truth;
* ``clicks``  interactive session on a 2400x2400 photo: first preview, then each further click.

usage: python benchmarks/bench_cutout.py [--only set,speed,...] [--repeat 5] [--set-dir DIR]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PACKSHOT_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from packshot.segment.classic import ClassicSegmenter  # noqa: E402
from packshot.types import Photo  # noqa: E402

SEEDS = {
    "soap 2400x2400": "seed_products/nivedkris_product1_shaving_soap/product1.jpg",
    "bottle 2400x2400": "seed_products/nivedkris_product3_aftershave_bottle/product3.jpg",
    "loafers 1800x1800": "seed_products/nivedkris_product4_loafers/product4.jpg",
}


def _rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _iou(a: np.ndarray, t: np.ndarray, ignore: np.ndarray | None = None) -> float:
    a, t = a >= 0.5, t >= 0.5
    if ignore is not None:
        a, t = a & ~ignore, t & ~ignore
    u = (a | t).sum()
    return float((a & t).sum() / u) if u else 1.0


def section_set(args) -> None:
    out = Path(args.set_dir) if args.set_dir else Path(tempfile.mkdtemp(prefix="backdrop_set_"))
    if not list(out.glob("*.alpha.png")):
        subprocess.run([sys.executable, str(SHARED / "tools/make_backdrop_set.py"), str(DATA / "matting"),
                        str(out)], check=True, capture_output=True)
    seg = ClassicSegmenter()
    per_bd, per_obj, rows, times = defaultdict(list), defaultdict(list), [], []
    for path in sorted(out.glob("*.jpg")):
        truth = np.asarray(Image.open(str(path)[:-4] + ".alpha.png").convert("L"), np.float32) / 255
        rgb = _rgb(path)
        t0 = time.perf_counter()
        alpha = seg.segment(Photo(rgb, source=path.name)).alpha
        times.append(time.perf_counter() - t0)
        r = (_iou(alpha, truth), float(np.abs(alpha - truth).mean()))
        obj, bd = path.stem.split("__")
        per_bd[bd].append(r)
        per_obj[obj].append(r)
        rows.append(r)
    print(f"\n### Plain-backdrop set ({len(rows)} photos, 1200x1200, {out})\n")
    print("| backdrop | photos | mean IoU (alpha>=0.5) | mean alpha MAE |")
    print("|---|---|---|---|")
    for bd, v in sorted(per_bd.items()):
        m = np.mean(v, 0)
        print(f"| {bd} | {len(v)} | {m[0]:.4f} | {m[1]:.4f} |")
    m = np.mean(rows, 0)
    print(f"| **all** | {len(rows)} | **{m[0]:.4f}** | **{m[1]:.4f}** |")
    print("\n| object | mean IoU | mean MAE | worst IoU |")
    print("|---|---|---|---|")
    for obj, v in sorted(per_obj.items()):
        a = np.array(v)
        print(f"| {obj} | {a[:, 0].mean():.4f} | {a[:, 1].mean():.4f} | {a[:, 0].min():.4f} |")
    print(f"\nsegment time per 1200x1200 photo: median {statistics.median(times) * 1000:.0f} ms")


def section_speed(args) -> None:
    from synth import mug_photo

    seg = ClassicSegmenter()
    photos = {k: DATA / v for k, v in SEEDS.items() if (DATA / v).exists()}
    rows = []
    items = [(k, _rgb(p)) for k, p in photos.items()]
    items.append(("rendered mug 2400x2400", mug_photo((2400, 2400), "grey", seed=3)[0]))
    seg.segment(Photo(items[-1][1][::4, ::4].copy()))  # warm-up
    for name, rgb in items:
        ts, parts = [], defaultdict(list)
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            m = seg.segment(Photo(rgb, source=name))
            ts.append(time.perf_counter() - t0)
            for k, v in m.timings.items():
                parts[k].append(v)
        rows.append((name, statistics.median(ts), min(ts),
                     {k: statistics.median(v) for k, v in parts.items()}))
    print(f"\n### Automatic cut-out speed (median of {args.repeat}, decoding excluded)\n")
    print("| photo | median s | best s | preview stage s | full-res refine s |")
    print("|---|---|---|---|---|")
    for name, med, best, parts in rows:
        print(f"| {name} | {med:.3f} | {best:.3f} | {parts.get('segment.preview', 0):.3f} | "
              f"{parts.get('segment.refine', 0):.3f} |")


SECTIONS = {"set": section_set, "speed": section_speed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--set-dir", default=os.environ.get("PACKSHOT_BACKDROP_SET"),
                    help="reuse a built backdrop set")
    args = ap.parse_args()
    import platform
    print(f"# bench_cutout  ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()})")
    if not DATA.is_dir():
        print(f"note: {DATA} is missing: only rendered photos are measured")
    for name in args.only.split(","):
        SECTIONS[name.strip()](args)


if __name__ == "__main__":
    main()
