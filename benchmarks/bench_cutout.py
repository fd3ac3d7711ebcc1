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
* ``clicks``  interactive session on a 2400x2400 photo: first preview, then each further click;
* ``robot``   a simulated user clicking on the largest error after the box: IoU per click;
* ``compare`` ``lset`` ``conf`` ``lspeed``: the learned engine (issue 10), see cutout_learned.py.

usage: python benchmarks/bench_cutout.py [--only set,speed,...] [--repeat 5] [--set-dir DIR]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
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

from cutout_learned import SECTIONS as LEARNED_SECTIONS  # noqa: E402

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
    from cutout_learned import backdrop_items

    seg = ClassicSegmenter()
    per_bd, per_obj, rows, times = defaultdict(list), defaultdict(list), [], []
    for path, rgb, truth in backdrop_items(args.set_dir):
        out = path.parent
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


def section_box(args) -> None:
    import cv2

    from packshot.segment.interactive import InteractiveCutout
    from packshot.types import Hints
    from test_segment_real import gt_box, masked_iou, matting_pairs, plain_grabcut

    def mse(a, t, ignore):
        d = (a - t) ** 2
        return float(d[~ignore].mean() if ignore is not None else d.mean())

    rows = []
    for name, rgb, truth, ignore in matting_pairs(DATA):
        box = gt_box(truth)
        t0 = time.perf_counter()
        ours = InteractiveCutout(Photo(rgb, source=name)).commit(Hints(boxes=(box,))).alpha
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        gc_prev = plain_grabcut(rgb, box)
        t_prev = time.perf_counter() - t0
        h, w = truth.shape
        t0 = time.perf_counter()
        gc_full = plain_grabcut(rgb, box, side=max(h, w))
        t_full = time.perf_counter() - t0
        rows.append((name, masked_iou(ours, truth, ignore), mse(ours, truth, ignore), t_ours,
                     masked_iou(gc_prev, truth, ignore), mse(gc_prev, truth, ignore), t_prev,
                     masked_iou(gc_full, truth, ignore), mse(gc_full, truth, ignore), t_full))
    print("\n### Box hint on cluttered photos (ground-truth box + 5% margin)\n")
    print("IoU at alpha >= 0.5 (GrabCut set: its 128 'unknown' band ignored), alpha MSE, seconds. "
          "GrabCut = cv2.grabCut(GC_INIT_WITH_RECT, 5 iterations), at our 400 px preview and at full size.\n")
    print("| photo | ours IoU | ours MSE | ours s | GrabCut@400 IoU | MSE | s | GrabCut full IoU | MSE | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | " + " | ".join(f"{v:.3f}" if i % 3 != 2 else f"{v:.2f}"
                                          for i, v in enumerate(r[1:])) + " |")
    m = np.mean([r[1:] for r in rows], 0)
    print("| **mean** | " + " | ".join(f"**{v:.3f}**" if i % 3 != 2 else f"{v:.2f}" for i, v in enumerate(m)) + " |")


def section_halo(args) -> None:
    from packshot.segment.refine import halo_delta_e
    from test_segment_classic import halo_scene

    seg = ClassicSegmenter()
    print("\n### Halo: red mug on a saturated green backdrop, cut out, composited on white\n")
    print("Mean CIEDE2000 in the edge band (3 px either side of the true edge, and every soft truth "
          "pixel) against the truth composited on white. 800x600.\n")
    print("| photo encoding | ours (decontaminated) | same matte, photo colours (no despill) | truth matte, photo colours |")
    print("|---|---|---|---|")
    for q, label in ((92, "JPEG q92, 4:2:0 chroma"), (None, "lossless")):
        rgb, alpha, fg = halo_scene(q)
        m = seg.segment(Photo(rgb))
        print(f"| {label} | {halo_delta_e(m.alpha, m.foreground, alpha, fg):.2f} | "
              f"{halo_delta_e(m.alpha, rgb, alpha, fg):.2f} | {halo_delta_e(alpha, rgb, alpha, fg):.2f} |")


def section_clicks(args) -> None:
    import cv2

    from packshot.segment.interactive import InteractiveCutout
    from packshot.types import Hints

    scenes = []
    soap = DATA / SEEDS["soap 2400x2400"]
    if soap.exists():
        scenes.append(("soap 2400x2400 (plain backdrop)", _rgb(soap), (450, 500, 1950, 1950),
                       [(1200, 1200, 1), (300, 300, 0), (1000, 1800, 1), (2300, 2300, 0), (800, 800, 1),
                        (1700, 700, 0)]))
    troll = DATA / "matting/am_GT04_troll_dolls_image.png"
    if troll.exists():
        big = cv2.resize(_rgb(troll), (2400, 2400), interpolation=cv2.INTER_CUBIC)
        scenes.append(("troll dolls upscaled to 2400x2400 (clutter)", big, (230, 0, 2400, 2400),
                       [(1000, 1500, 1), (300, 2000, 0), (1700, 1200, 1), (2300, 300, 0), (900, 600, 1),
                        (100, 100, 0)]))
    print("\n### Interactive session on 2400x2400 photos (seconds)\n")
    print("preview() gets the full click list every time (pure function of the hints).\n")
    print("| photo | new session | first preview (box) | further clicks: median | max | commit (full size) |")
    print("|---|---|---|---|---|---|")
    for name, rgb, box, clicks in scenes:
        t0 = time.perf_counter()
        s = InteractiveCutout(Photo(rgb, source=name))
        t_new = time.perf_counter() - t0
        t0 = time.perf_counter()
        s.preview(Hints(boxes=(box,)))
        t_first = time.perf_counter() - t0
        pos, neg, ts = [], [], []
        for x, y, positive in clicks:
            (pos if positive else neg).append((x, y))
            hints = Hints(points=tuple(pos), neg_points=tuple(neg), boxes=(box,))
            t0 = time.perf_counter()
            s.preview(hints)
            ts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        s.commit(hints)
        t_commit = time.perf_counter() - t0
        print(f"| {name} | {t_new:.3f} | {t_first:.3f} | {statistics.median(ts):.3f} | {max(ts):.3f} | "
              f"{t_commit:.3f} |")


def section_robot(args) -> None:
    """Simulated user (the usual interactive-segmentation protocol): after the box, each click
    goes to the centre of the largest error region (positive on a miss, negative on a false
    positive); IoU after each click."""
    import cv2

    from packshot.segment.interactive import InteractiveCutout
    from packshot.types import Hints
    from test_segment_real import gt_box, masked_iou, matting_pairs

    def next_click(pred, t, ignore):
        fn, fp = (t >= 0.5) & (pred < 0.5), (t < 0.5) & (pred >= 0.5)
        if ignore is not None:
            fn, fp = fn & ~ignore, fp & ~ignore
        best = None
        for err, positive in ((fn, True), (fp, False)):
            d = cv2.distanceTransform(np.pad(err, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
            if best is None or d.max() > best[0]:
                y, x = np.unravel_index(int(d.argmax()), d.shape)
                best = (d.max(), (int(x), int(y)), positive)
        return best[1], best[2]

    k = 5
    rows, times = [], []
    for name, rgb, truth, ignore in matting_pairs(DATA):
        box = gt_box(truth)
        s = InteractiveCutout(Photo(rgb, source=name))
        pos, neg, row = [], [], []
        hints = Hints(boxes=(box,))
        for i in range(k + 1):
            t0 = time.perf_counter()
            pv = s.preview(hints)
            if i:
                times.append(time.perf_counter() - t0)
            up = cv2.resize(pv, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
            row.append(masked_iou(up, truth, ignore))
            p, positive = next_click(up, truth, ignore)
            (pos if positive else neg).append(p)
            hints = Hints(boxes=(box,), points=tuple(pos), neg_points=tuple(neg))
        rows.append((name, row))
    print(f"\n### Clicks after the box (simulated user, preview IoU after each click)\n")
    print("| photo | box | " + " | ".join(f"+{i} click{'s' if i > 1 else ''}" for i in range(1, k + 1)) + " |")
    print("|---|" + "---|" * (k + 1))
    for name, row in rows:
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    m = np.mean([r for _, r in rows], 0)
    print("| **mean** | " + " | ".join(f"**{v:.3f}**" for v in m) + " |")
    print(f"\npreview time per click (photos <= 800 px): median {statistics.median(times) * 1000:.0f} ms")


SECTIONS = {"set": section_set, "speed": section_speed, "box": section_box, "halo": section_halo,
            "clicks": section_clicks, "robot": section_robot}
SECTIONS.update(LEARNED_SECTIONS)  # compare, lset, conf, lspeed: the learned engine (cutout_learned.py)


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
