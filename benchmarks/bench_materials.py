"""Studio materials: what each surface material adds to a 2048 px scene, and 100 % crops.

    .venv/bin/python benchmarks/bench_materials.py               # timing table
    .venv/bin/python benchmarks/bench_materials.py --crops out/m  # + 600x400 floor crops per material

The extra cost of a material is the scene's time minus the same scene on a plain (untextured)
table. OpenCV runs on one thread here (``cv2.setNumThreads(1)``) and times are process CPU
seconds (``time.process_time``, median of ``--repeat`` runs): they hold up on a shared, loaded
machine where wall-clock does not; with OpenCV's threads on a quiet machine a scene takes less.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
from PIL import Image

from packshot.backgrounds.studio import render_scene

MATERIALS = ("marble", "wooden", "oak", "walnut", "concrete", "linen", "slate")
SIZE = (2048, 2048)
BOX = (700, 500, 1350, 1500)   # a product standing in the middle, its base at row 1500


def _time(prompt: str, seed: int, repeat: int) -> tuple[float, object]:
    runs, scene = [], None
    for _ in range(repeat):
        t0 = time.process_time()
        scene = render_scene(prompt, SIZE, seed, product_box=BOX, floor_y=BOX[3])
        runs.append(time.process_time() - t0)
    return statistics.median(runs), scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--crops", type=Path, default=None, help="write 600x400 floor crops (100 %%) here")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    base, _ = _time("on a table", a.seed, a.repeat)
    print("| material (2048x2048 scene) | scene CPU s | extra over a plain table, s |")
    print("|---|---|---|")
    print(f"| plain table | {base:.3f} | - |")
    for m in MATERIALS:
        t, scene = _time(f"on a {m} table", a.seed, a.repeat)
        print(f"| {m} | {t:.3f} | {t - base:+.3f} |")
        if a.crops is not None:
            a.crops.mkdir(parents=True, exist_ok=True)
            y0 = max(scene.floor_y + 20, BOX[3] - 100)
            Image.fromarray(scene.rgb[y0:y0 + 400, 1400:2000]).save(a.crops / f"{m}.png")


if __name__ == "__main__":
    main()
