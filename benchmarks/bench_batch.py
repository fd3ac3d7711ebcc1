"""Catalog-run throughput: `packshot batch` as a process, main image + 2 lifestyle images per SKU.

The catalog: 9 rendered product photos (tests/synth.py mugs, 1200x900, four backdrops) and, when
../shared/data is present, the 3 real 2400x2400 / 1800x1800 seller photos (soap tin, amber bottle,
loafers), read in place through symlinks in a temp folder (never copied). Main image: the Amazon
preset (2000x2000, checked by Amazon's rules); lifestyle: 2 studio scenes at --size (2000x2000).
Each configuration runs into a fresh OUT folder; images/s = images written / wall time of the
process (start-up, worker spawn, report writing included). Also: a second run over the finished
OUT (the resume check) and `packshot check` on every main image.

usage: python benchmarks/bench_batch.py [--workers 1 2] [--size 2000x2000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared/data/seed_products"
SELLER = ("nivedkris_product1_shaving_soap/product1.jpg", "nivedkris_product3_aftershave_bottle/product3.jpg",
          "nivedkris_product4_loafers/product4.jpg")
COLOURS = [(180, 40, 40), (40, 90, 160), (30, 120, 60), (200, 150, 30), (90, 40, 120), (20, 20, 20),
           (220, 90, 140), (60, 160, 170), (120, 80, 40)]


def make_catalog(folder: Path) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from PIL import Image
    from synth import mug_photo

    for i, col in enumerate(COLOURS):
        rgb, _ = mug_photo((1200, 900), ["white", "grey", "paper", "pastel"][i % 4], col, seed=i)
        Image.fromarray(rgb).save(folder / f"mug-{i:02d}.jpg", quality=92)
    n = len(COLOURS)
    for rel in SELLER:
        if (SEED / rel).exists():
            (folder / f"seller-{Path(rel).stem}.jpg").symlink_to(SEED / rel)
            n += 1
    return n


def cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for descendant (the workers too)
    return ru.ru_utime + ru.ru_stime


def run(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t, c = time.perf_counter(), cpu_children()
    r = subprocess.run([sys.executable, "-m", "packshot", *args], capture_output=True, text=True)
    run.cpu = cpu_children() - c
    return time.perf_counter() - t, r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--size", default="2000x2000")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        n = make_catalog(photos)
        for w in a.workers:
            out = Path(tmp) / f"out-{w}"
            load0 = os.getloadavg()[0]
            wall, r = run(["batch", str(photos), "-o", str(out), "--workers", str(w), "--size", a.size,
                           "--lifestyle", "2"])
            cpu = run.cpu
            summary = json.loads((out / "summary.json").read_text())
            images = summary["counts"]["images"]
            resume, _ = run(["batch", str(photos), "-o", str(out), "--workers", str(w), "--size", a.size,
                             "--lifestyle", "2"])
            mains = sorted(str(p) for p in out.glob("*/main.png"))
            chk, rc = run(["check", *mains, "--marketplace", "amazon"])
            rows.append((w, n, summary["counts"]["ok"], images, wall, images / wall, summary["counts"]["main_passed"],
                         resume, chk, (load0 + os.getloadavg()[0]) / 2, cpu))
    print(f"# packshot batch: {n} SKUs, main (amazon 2000x2000) + 2 lifestyle at {a.size}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("| workers | SKUs ok | images | wall | images/s | main images passing amazon | resume run (all done) "
          "| `packshot check` on the mains | load avg (1 min) | CPU time | images per CPU-second |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for w, n, ok, images, wall, ips, passed, resume, chk, load, cpu in rows:
        print(f"| {w} | {ok}/{n} | {images} | {wall:.1f} s | **{ips:.2f}** | {passed}/{ok} | {resume:.1f} s "
              f"| {chk:.1f} s ({chk / max(ok, 1):.2f} s/image) | {load:.1f} | {cpu:.1f} s | {images / cpu:.2f} |")


if __name__ == "__main__":
    main()
