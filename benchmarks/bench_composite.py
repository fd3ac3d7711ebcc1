"""Composite + score benchmark: per-candidate time at 1024x1024 and 2048x2048.

A rendered mug (exact alpha, no segmenter) is laid out by the real layout stage; four scenes with
different light directions and gloss are composed (shadows + reflection + light wrap + exact paste)
and scored, as ``Pipeline.generate`` does for n=4. "first" includes the per-layer preparation
(silhouette, rings, shadow grid), paid once per request; "each" is a further candidate (new scene,
new light direction on the first call, cached after). Budget (issue 2): the whole generate for 4
candidates <= 1.5 s at 1024 px and <= 5 s at 2048 px, so compose should stay well under 0.3 s.
usage: python benchmarks/bench_composite.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

LIGHTS = [((0.7, 0.7), 0.0), ((-0.7, 0.7), 0.4), ((0.35, 0.94), 0.0), ((0.9, 0.44), 0.8)]


def layer_for(size: str):
    from synth import mug_photo

    from packshot.layout import place, plan
    from packshot.schema import GenerateRequest
    from packshot.types import Cutout, Matte, Photo

    rgb, alpha = mug_photo((1600, 1200), "grey", jpeg_quality=None)
    cut = Cutout(Photo(rgb), Matte(alpha=alpha, engine="truth"))
    pl = plan(cut, GenerateRequest(size=size))
    return place(cut, pl)


def scenes_for(layer):
    from packshot.types import Scene

    W, H = layer.size
    t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    out = []
    for i, (light, gloss) in enumerate(LIGHTS):
        rng = np.random.default_rng(i)
        base = np.float32([236, 232, 226]) * (1 - 0.12 * t) + rng.normal(0, 2, (H, W, 3)).astype(np.float32)
        out.append(Scene(rgb=np.clip(base, 0, 255).astype(np.uint8), seed=i, engine="bench",
                         light_dir=light, gloss=gloss))
    return out


def run(size: str, repeat: int) -> dict[str, float]:
    from packshot.composite import compose
    from packshot.score import score_candidate
    from packshot.types import Candidate

    firsts_c, firsts_s, each_c, each_s, totals = [], [], [], [], []
    for _ in range(repeat):
        layer = layer_for(size)  # a fresh layer: nothing cached
        scenes = scenes_for(layer)
        t_all = time.perf_counter()
        for i, sc in enumerate(scenes):
            t0 = time.perf_counter()
            img = compose(sc, layer)
            t1 = time.perf_counter()
            score_candidate(Candidate(image=img, seed=sc.seed, engine="bench", prompt="", parameters={},
                                      scene=sc), layer, layer.placement)
            t2 = time.perf_counter()
            (firsts_c if i == 0 else each_c).append(t1 - t0)
            (firsts_s if i == 0 else each_s).append(t2 - t1)
        totals.append(time.perf_counter() - t_all)
    med = statistics.median
    return {"compose first": med(firsts_c), "compose each": med(each_c), "score first": med(firsts_s),
            "score each": med(each_s), "4 candidates": med(totals)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rows = [(size, run(size, args.repeat)) for size in ("1024x1024", "2048x2048")]
    cols = list(rows[0][1])
    print(f"{'canvas':<11}" + "".join(f"{c:>16}" for c in cols))
    for size, r in rows:
        print(f"{size:<11}" + "".join(f"{r[c] * 1000:>13.1f} ms" for c in cols))
    print(f"(median of {args.repeat}; composite + score of 4 candidates with shadows, reflection, light wrap)")


if __name__ == "__main__":
    main()
