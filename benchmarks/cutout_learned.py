"""Sections of bench_cutout.py for the learned engine (issue 10), run through it:
``python benchmarks/bench_cutout.py --only compare,lset,conf,lspeed``

* ``compare``  ../shared/data/matting, side by side: packshot auto (no hints), packshot with the
               box hint (truth box + 5%), raw u2netp with rembg's own processing, plain GrabCut with
               the same box. IoU (alpha >= 0.5) and alpha MAE; "best on" counts (no hints).
* ``lset``     the plain-backdrop set with the learned engine (no-regression check).
* ``conf``     cut-out confidence on the seller photos and on crops that cut the product at the
               frame, learned and classic engines (pictures written to /tmp/packshot_conf/).
* ``lspeed``   2400x2400 photo: automatic cut-out, box, click preview (median of --repeat).

The model dir is $PACKSHOT_MODEL_DIR (default: Settings' model dir); run
``packshot models pull u2netp`` first.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PACKSHOT_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"

from packshot.config import Settings  # noqa: E402
from packshot.types import Hints, Photo  # noqa: E402


def _learned():
    from packshot.segment.learned import LearnedSegmenter

    return LearnedSegmenter(Settings.from_env())


def _mae(a, t, ignore):
    d = np.abs(a - t)
    return float(d[~ignore].mean() if ignore is not None else d.mean())


def section_compare(args) -> None:
    from test_segment_real import gt_box, masked_iou, matting_pairs, plain_grabcut

    seg = _learned()
    os.environ["U2NET_HOME"] = str(seg._file.parent)  # rembg reads the same file; it never downloads
    from rembg import new_session, remove

    rembg = new_session("u2netp")
    rows = []
    for name, rgb, truth, ign in matting_pairs(DATA):
        photo = Photo(rgb, source=name)
        auto = seg.segment(photo).alpha
        box = gt_box(truth)
        boxed = seg.segment(photo, Hints(boxes=(box,))).alpha
        raw = np.asarray(remove(Image.fromarray(rgb), session=rembg, only_mask=True), np.float32) / 255
        gc = plain_grabcut(rgb, box)
        rows.append((name, *[(masked_iou(a, truth, ign), _mae(a, truth, ign)) for a in (auto, boxed, raw, gc)]))
    print("\n### Side by side on ../shared/data/matting (12 photos with ground truth)\n")
    print("IoU at alpha >= 0.5 / alpha MAE (GrabCut set: its 128 'unknown' band ignored). "
          "Raw u2netp = `rembg.remove(session=new_session('u2netp'))`, the same weights file.\n")
    print("| photo | packshot auto | packshot box | raw u2netp (rembg) | GrabCut box |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | " + " | ".join(f"{iou:.3f} / {mae:.3f}" for iou, mae in r[1:]) + " |")
    means = [np.mean([r[i][0] for r in rows]) for i in range(1, 5)]
    maes = [np.mean([r[i][1] for r in rows]) for i in range(1, 5)]
    print("| **mean** | " + " | ".join(f"**{a:.3f}** / {m:.3f}" for a, m in zip(means, maes)) + " |")
    ours = sum(r[1][0] > r[3][0] + 1e-3 for r in rows)
    theirs = sum(r[3][0] > r[1][0] + 1e-3 for r in rows)
    print(f"\nNo hints, best on: packshot auto {ours} of {len(rows)}, raw u2netp {theirs} "
          f"(ties within 0.001: {len(rows) - ours - theirs}).")


def backdrop_items(set_dir: str | None):
    """(path, rgb, truth alpha) of the plain-backdrop set, built once into ``set_dir`` (or a temp dir)."""
    out = Path(set_dir) if set_dir else Path(tempfile.mkdtemp(prefix="backdrop_set_"))
    if not list(out.glob("*.alpha.png")):
        subprocess.run([sys.executable, str(SHARED / "tools/make_backdrop_set.py"), str(DATA / "matting"),
                        str(out)], check=True, capture_output=True)
    for path in sorted(out.glob("*.jpg")):
        truth = np.asarray(Image.open(str(path)[:-4] + ".alpha.png").convert("L"), np.float32) / 255
        yield path, np.asarray(Image.open(path).convert("RGB")), truth


def section_lset(args) -> None:
    seg = _learned()
    rows = []
    for path, rgb, truth in backdrop_items(args.set_dir):
        a = seg.segment(Photo(rgb, source=path.name)).alpha
        m, t = a >= 0.5, truth >= 0.5
        rows.append(((m & t).sum() / (m | t).sum(), np.abs(a - truth).mean()))
    iou, mae = np.mean(rows, 0)
    print(f"\n### Plain-backdrop set, learned engine ({len(rows)} photos)\n")
    print(f"| engine | mean IoU | mean alpha MAE |\n|---|---|---|\n| learned (auto) | {iou:.4f} | {mae:.4f} |")


def section_conf(args) -> None:
    from packshot.segment.classic import ClassicSegmenter
    from packshot.segment.confidence import with_confidence

    seller = {"cookie on a paper towel": "aibackgrounds_cookie/cookie.jpg",
              "sweater worn, on a rug": "kryptixone_sweater_ref3/ref3.jpg",
              "t-shirt worn": "kryptixone_lion_tshirt/GirlWearingLion_512x784.png",
              "shaving soap": "nivedkris_product1_shaving_soap/product1.jpg",
              "aftershave bottle": "nivedkris_product3_aftershave_bottle/product3.jpg",
              "loafers": "nivedkris_product4_loafers/product4.jpg"}
    engines = {"learned": _learned(), "classic": ClassicSegmenter()}
    outdir = Path(tempfile.gettempdir()) / "packshot_conf"
    outdir.mkdir(exist_ok=True)
    print("\n### Cut-out confidence (pictures in " + str(outdir) + ")\n")
    print("| photo | variant | engine | confidence | reasons |\n|---|---|---|---|---|")
    for label, rel in seller.items():
        rgb = np.asarray(Image.open(DATA / "seed_products" / rel).convert("RGB"))
        h, w = rgb.shape[:2]
        variants = {"whole photo": rgb, "crop cutting it (top-left)": rgb[int(h * 0.45):, int(w * 0.4):]}
        for vname, img in variants.items():
            img = np.ascontiguousarray(img)
            for ename, seg in engines.items():
                m = with_confidence(seg.segment(Photo(img, source=label)))
                stem = f"{label}_{vname}_{ename}".replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
                Image.fromarray(np.dstack([img, np.round(m.alpha * 255).astype(np.uint8)])).save(outdir / f"{stem}.png")
                print(f"| {label} | {vname} | {ename} | {m.confidence:.2f} | {'; '.join(m.reasons) or '-'} |")


def section_lspeed(args) -> None:
    seg = _learned()
    rel = "seed_products/nivedkris_product1_shaving_soap/product1.jpg"
    cases = [("soap 2400x2400 (plain backdrop)", np.asarray(Image.open(DATA / rel).convert("RGB")),
              (450, 500, 1950, 1950), (1200, 1200))]
    import cv2
    troll = DATA / "matting/am_GT04_troll_dolls_image.png"
    big = cv2.resize(np.asarray(Image.open(troll).convert("RGB")), (2400, 2400), interpolation=cv2.INTER_CUBIC)
    cases.append(("troll dolls upscaled to 2400x2400 (in context)", big, (230, 0, 2400, 2400), (1000, 1500)))
    seg.segment(Photo(cases[0][1][::8, ::8].copy()))  # warm-up: the onnxruntime session is loaded once
    print(f"\n### Learned engine speed, 2400x2400 (median of {args.repeat}; 2 shared cores, other test "
          f"runs on the machine at the same time)\n")
    print("| photo | automatic s | box s | click preview s (median) | new session s |\n|---|---|---|---|---|")
    for name, rgb, box, click in cases:
        photo = Photo(rgb, source=name)
        auto, boxed, clicks, new = [], [], [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            seg.segment(photo)
            auto.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            seg.segment(photo, Hints(boxes=(box,)))
            boxed.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        session = seg.session(photo)
        session.preview(Hints())
        new.append(time.perf_counter() - t0)
        for i in range(args.repeat):
            t0 = time.perf_counter()
            session.preview(Hints(points=((click[0] + 10 * i, click[1]),)))
            clicks.append(time.perf_counter() - t0)
        print(f"| {name} | {statistics.median(auto):.3f} | {statistics.median(boxed):.3f} | "
              f"{statistics.median(clicks):.3f} | {new[0]:.3f} |")


SECTIONS = {"compare": section_compare, "lset": section_lset, "conf": section_conf, "lspeed": section_lspeed}
