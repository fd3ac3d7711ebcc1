"""Product similarity on the real seller photos: product x perturbation -> score, and the time per
candidate.

    .venv/bin/python benchmarks/bench_similarity.py [--parts] [--sizes] [--outputs] [--pipeline]

Each product of tests/similarity_cases.py is cut out of its photo in ../shared/data (read in place)
with packshot's learned engine, then rotated / flipped / relit (should stay high) and painted over /
hue shifted / cut (should drop). Classical parts only unless PACKSHOT_SIMILARITY_MODEL names an
encoder. ``--parts`` adds a table of the parts; ``--sizes`` one of the product drawn smaller; ``--outputs`` scores the
source repository's real Stable Diffusion outputs of the same products;
``--pipeline`` also times the whole score stage per
candidate through Pipeline.generate with the planted engine (cutting the candidate out included).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import similarity_cases as cases  # noqa: E402

from packshot.config import Settings  # noqa: E402
from packshot.score.encoders import image_encoder  # noqa: E402
from packshot.score.similarity import ProductView, ReferenceSet  # noqa: E402

SHARED = Path(os.environ.get("PACKSHOT_SHARED", ROOT.parent / "shared")) / "data"
SHORT = {"similarity_colour": "colour", "similarity_shape": "shape", "similarity_detail": "detail",
         "similarity_embed": "embed"}


def table(rows: dict[str, dict[str, str]], cols: list[str], first: str) -> str:
    out = [f"| {first} | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, row in rows.items():
        out.append(f"| {name} | " + " | ".join(row.get(c, "–") for c in cols) + " |")
    return "\n".join(out)


def measure(settings: Settings, parts: bool):
    encoder = image_encoder(settings)
    scores: dict[str, dict[str, str]] = {}
    detail: dict[str, dict[str, str]] = {}
    times: list[float] = []
    for p in cases.PRODUCTS:
        rgb, alpha = cases.load_cutout(SHARED, p)
        t = time.perf_counter()
        refs = ReferenceSet([ProductView.from_rgba(rgb, alpha, name=p.name)], encoder)
        refs.references[0].keypoints  # noqa: B018  (reference features once, as per generate call)
        t_ref = time.perf_counter() - t
        row, prow = {}, {}
        for name, (r, a) in cases.variants(rgb, alpha, p).items():
            t = time.perf_counter()
            res = refs.score(ProductView.from_rgba(r, a))
            times.append(time.perf_counter() - t)
            row[name] = f"{res.score:.3f}"
            prow[name] = " / ".join(f"{res.parts[k]:.2f}" for k in SHORT if k in res.parts)
        good = min(float(row[n]) for n in cases.GOOD)
        bad = max(float(row[n]) for n in (*cases.BAD, cases.TEXT) if n in row)
        row["margin (worst good - best bad)"] = f"**{good - bad:+.3f}**"
        scores[p.name], detail[p.name] = row, prow
        print(f"{p.name}: reference features {t_ref * 1000:.0f} ms", file=sys.stderr)
    cols = [*cases.GOOD, *cases.BAD, cases.TEXT, "margin (worst good - best bad)"]
    print(table(scores, cols, "product \\ change"))
    if parts:
        print("\nparts (colour / shape / detail" + (" / embed" if encoder else "") + "):\n")
        print(table(detail, [*cases.GOOD, *cases.BAD, cases.TEXT], "product \\ change"))
    times.sort()
    print(f"\nscore per candidate (product cut-out given, {len(times)} candidates): median "
          f"{times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")


def sizes(settings: Settings) -> None:
    """The product drawn smaller in the candidate (rotated 15°): score and detail part per size."""
    rows: dict[str, dict[str, str]] = {}
    for p in cases.PRODUCTS:
        rgb, alpha = cases.load_cutout(SHARED, p)
        refs = ReferenceSet([ProductView.from_rgba(rgb, alpha, name=p.name)], image_encoder(settings))
        rows[p.name] = {}
        for side in SIDES:
            res = refs.score(ProductView.from_rgba(*cases.rotate(*cases.shrink(rgb, alpha, side), 15)))
            rows[p.name][f"{side} px"] = f"{res.score:.3f} ({res.parts.get('similarity_detail', float('nan')):.2f})"
    print("\nproduct drawn at N px (longer side), rotated 15°: score (detail part)\n")
    print(table(rows, [f"{s} px" for s in SIDES], "product \\ size"))


SIDES = (320, 200, 160, 120)


def outputs(settings: Settings) -> None:
    """Real generated candidates: the source repository's Stable Diffusion 2 inpainting outputs of
    the same products (``outputs/*.webp``, 512 px, product NOT pasted back, so it may be altered),
    cut out as the pipeline does (``candidate_view``: 'auto', a box hint where the reference is
    found), scored against the photo's own cut-out."""
    from packshot.io import load_image
    from packshot.pipeline import Pipeline
    from packshot.schema import SegmentOptions
    from packshot.score.references import candidate_view

    pipe = Pipeline(settings)
    seg = pipe.segmenter(pipe.resolve_segmenter(SegmentOptions())[0])
    rows: dict[str, dict[str, str]] = {}
    for p in cases.PRODUCTS:
        files = sorted((SHARED / p.path).parent.glob("outputs/*.webp"))
        if not files:
            continue
        rgb, alpha = cases.load_cutout(SHARED, p)
        refs = ReferenceSet([ProductView.from_rgba(rgb, alpha, name=p.name)], image_encoder(settings))
        rows[p.name] = {}
        for f in files:
            img = load_image(f)
            res = refs.score(candidate_view(seg, refs.references, img.rgb, f.name))  # as the pipeline does
            rows[p.name][f.name] = f"{res.score:.2f} ({' / '.join(f'{res.parts[k]:.2f}' for k in SHORT if k in res.parts)})"
    cols = sorted({c for r in rows.values() for c in r})
    print("\nreal SD2-inpainting outputs (product not pasted back): score (colour / shape / detail)\n")
    print(table(rows, cols, "product \\ output"))


def pipeline_time(settings: Settings) -> None:
    """The score stage per generated candidate through Pipeline.generate (cut-out of the candidate,
    similarity, ranking) on the planted engine, 512 x 512 canvas, 8 candidates."""
    import planted_engine
    from PIL import Image

    from packshot.pipeline import Pipeline

    p = cases.PRODUCTS[0]
    rgb, alpha = cases.load_cutout(SHARED, p)
    with tempfile.TemporaryDirectory() as d:
        for i, (r, a) in enumerate(cases.variants(rgb, alpha, p).values()):
            Image.fromarray(cases.on_backdrop(r, a)).save(Path(d) / f"{i:02d}.png")
        planted_engine.register()
        pipe = Pipeline(settings)
        pipe._engines["planted"] = planted_engine.PlantedEngine(folder=d)  # test-only engine
        req = {"prompt": "x", "engine": "planted", "n": 8, "seed": 1, "size": "512x512"}
        pipe.generate(SHARED / p.path, req)  # warm up (model loads)
        res = pipe.generate(SHARED / p.path, req)
    n = len(res.candidates)
    print(f"score stage through Pipeline.generate (512x512, {n} generated candidates, candidate cut out "
          f"with 'auto'): {res.timings['score'] / n * 1000:.0f} ms per candidate")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", action="store_true")
    ap.add_argument("--pipeline", action="store_true")
    ap.add_argument("--sizes", action="store_true")
    ap.add_argument("--outputs", action="store_true")
    args = ap.parse_args()
    settings = Settings.from_env()
    measure(settings, args.parts)
    if args.sizes:
        sizes(settings)
    if args.outputs:
        outputs(settings)
    if args.pipeline:
        pipeline_time(settings)


if __name__ == "__main__":
    main()
