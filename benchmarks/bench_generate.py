"""End-to-end `generate` benchmark: 4 candidates from a 2400x2400 photo at 1024x1024 and 2048x2048.

Each configuration runs in a fresh process (so peak RSS is its own): one warm-up call on a small
photo (imports, numba cache), then REPEAT timed calls of ``packshot.generate`` (load + cutout +
layout + 4 studio scenes + composite + score), and the time to also write the files
(``save_result``: 4 PNGs + cutout + results.json). Targets (issue 2): <= 1.5 s at 1024 px,
<= 5 s at 2048 px, automatic cutout <= 1 s.

The photo: ../shared/data/seed_products/nivedkris_product1_shaving_soap/product1.jpg (a real
2400x2400 seller photo) when ../shared is present, else a rendered 2400x2400 mug.
usage: python benchmarks/bench_generate.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_PHOTO = ROOT.parent / "shared/data/seed_products/nivedkris_product1_shaving_soap/product1.jpg"
PROMPT = "on a white marble table, soft morning light from the left"


def photo_path(tmp: Path) -> Path:
    if SHARED_PHOTO.exists():
        return SHARED_PHOTO
    sys.path.insert(0, str(ROOT / "tests"))
    from PIL import Image
    from synth import mug_photo
    rgb, _ = mug_photo((2400, 2400), "white", seed=3)
    out = tmp / "mug2400.jpg"
    Image.fromarray(rgb).save(out, quality=92)
    return out


def child(photo: str, size: str, repeat: int) -> None:
    import resource

    import packshot
    from packshot.output import save_result

    small = packshot.generate(photo, PROMPT, n=1, seed=0, size="256x256")  # warm-up: imports, caches
    del small
    rows = []
    for i in range(repeat):
        t0 = time.perf_counter()
        res = packshot.generate(photo, PROMPT, n=4, seed=100 + i, size=size)
        t_gen = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as d:
            t1 = time.perf_counter()
            save_result(res, d)
            t_save = time.perf_counter() - t1
        rows.append({"generate": t_gen, "save": t_save, **{f"stage_{k}": v for k, v in res.timings.items()}})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "peak_rss_mb": peak_mb}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=2, metavar=("PHOTO", "SIZE"))
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        photo = photo_path(Path(tmp))
        print(f"photo: {photo.name} (2400x2400), 4 candidates, studio engine, {args.repeat} runs each, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"{'output':>10} | {'generate median':>15} | {'min':>6} | {'cutout':>6} | {'background':>10} | "
              f"{'composite':>9} | {'score':>6} | {'+save 5 PNG':>11} | {'peak RSS':>8}")
        for size in ("1024x1024", "2048x2048"):
            proc = subprocess.run([sys.executable, __file__, "--repeat", str(args.repeat), "--child",
                                   str(photo), size], capture_output=True, text=True, check=True)
            data = json.loads(proc.stdout.strip().splitlines()[-1])
            rows = data["rows"]
            med = lambda k: statistics.median(r[k] for r in rows)  # noqa: E731
            print(f"{size:>10} | {med('generate'):>13.2f} s | {min(r['generate'] for r in rows):>4.2f} s | "
                  f"{med('stage_cutout'):>4.2f} s | {med('stage_background'):>8.2f} s | "
                  f"{med('stage_composite'):>7.2f} s | {med('stage_score'):>4.2f} s | {med('save'):>9.2f} s | "
                  f"{data['peak_rss_mb']:>5.0f} MB")


if __name__ == "__main__":
    main()
