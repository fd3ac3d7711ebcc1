"""Scene suggestions on the seller photos in ../shared/data (read in place): what packshot measures,
the arrangement it picks, the first suggestions, and the time per photo.

    python benchmarks/bench_suggest.py [--render OUTDIR]

``--render`` also makes one 768x768 studio-engine candidate per suggestion (seed 1) into OUTDIR
(outside the repository: the photos' licence allows test use only).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "data" / "seed_products"
PHOTOS = {
    "shaving-soap tin": "nivedkris_product1_shaving_soap/product1.jpg",
    "amber aftershave bottle": "nivedkris_product3_aftershave_bottle/product3.jpg",
    "brown loafers": "nivedkris_product4_loafers/product4.jpg",
    "cookie (phone photo)": "aibackgrounds_cookie/cookie.jpg",
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--render", type=Path, default=None)
    ap.add_argument("-n", type=int, default=3)
    args = ap.parse_args()
    if not SEEDS.is_dir():
        print(f"{SEEDS} is missing", file=sys.stderr)
        return 1
    from packshot.pipeline import default_pipeline
    from packshot.prompts import parse_prompt
    from packshot.prompts.measure import measure
    from packshot.prompts.suggest import suggest_from_traits

    pipe = default_pipeline()
    print("| photo | palette (share) | finish (specular) | shape h/w | view | light | arrangement | "
          "cutout s | measure + suggest s |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name, rel in PHOTOS.items():
        t0 = time.perf_counter()
        cut = pipe.cutout(SEEDS / rel)
        t1 = time.perf_counter()
        traits = measure(cut.photo.rgb, cut.alpha)
        out = suggest_from_traits(traits, args.n)
        t2 = time.perf_counter()
        assert all(not parse_prompt(s.prompt).unused for s in out)
        pal = ", ".join(f"{s.name} {s.share:.0%}" for s in traits.palette)
        print(f"| {name} | {pal} | {traits.finish} ({traits.specular:.1%}) | {traits.shape} {traits.aspect:.2f} | "
              f"{traits.view} | {traits.light} | {out[0].arrangement} | {t1 - t0:.2f} | {t2 - t1:.2f} |")
        rows.append((name, cut, out))
    print()
    print("| photo | # | palette | suggestion (`prompt`) |")
    print("|---|---|---|---|")
    for name, cut, out in rows:
        for i, s in enumerate(out, 1):
            print(f"| {name} | {i} | {s.palette} | {s.prompt} |")
            if args.render:
                res = pipe.generate(cut, {**s.request, "n": 1, "seed": 1, "size": "768x768"})
                from packshot.io import save_image

                args.render.mkdir(parents=True, exist_ok=True)
                save_image(res.candidates[0].image, args.render / f"{name.split()[0]}-{i}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
