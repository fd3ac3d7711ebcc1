"""Studio engine micro-benchmark: time to render one scene at 1024x1024 and 2048x2048.

Budget (issue 2): the whole ``generate`` of 4 candidates must take <= 1.5 s at 1024 px and
<= 5 s at 2048 px, cutout, composite and scoring included, so one studio scene must stay well
under 0.25 s at 2048 px. Prints a table: median / max milliseconds per scene over seeds, per
prompt, and the mean over all prompts.
usage: python benchmarks/bench_studio.py [--seeds 5] [--sizes 1024x1024,2048x2048]
"""
from __future__ import annotations

import argparse
import statistics
import time

PROMPTS = (
    "pure white studio background",
    "white studio background",
    "on a white marble table, soft morning light from the left",
    "on a light oak table, with soft leaf shadows, against a sage green wall, natural light from the right",
    "on a stone podium, beige seamless backdrop, soft light from the top left",
    "on a terrazzo countertop, with shadows of blinds, against a cream wall, golden hour",
    "on a cream linen tablecloth, in front of a terracotta plaster arch, soft window light",
    "on a grey concrete floor, with bokeh lights, against a navy wall, backlit, blue hour",
    "on black glass, with a soft glow, against a black gradient background, luxury mood",
    "on white ceramic tiles, with water caustics, against a turquoise wall, hard sunlight",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sizes", default="1024x1024,2048x2048")
    args = ap.parse_args()
    from packshot.backgrounds.studio import render_scene
    from packshot.prompts import parse_prompt

    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    render_scene("warm-up marble", (256, 256), 0)
    print(f"{'prompt':<60} " + " ".join(f"{f'{w}x{h} med/max ms':>22}" for w, h in sizes))
    totals: dict[tuple[int, int], list[float]] = {s: [] for s in sizes}
    for prompt in PROMPTS:
        parsed = parse_prompt(prompt)
        cells = []
        for W, H in sizes:
            box = (int(W * 0.38), int(H * 0.3), int(W * 0.62), int(H * 0.85))
            ts = []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                render_scene(parsed, (W, H), seed, product_box=box, floor_y=box[3])
                ts.append((time.perf_counter() - t0) * 1000)
            totals[(W, H)].extend(ts)
            cells.append(f"{statistics.median(ts):10.1f} / {max(ts):8.1f}")
        print(f"{prompt[:60]:<60} " + " ".join(f"{c:>22}" for c in cells))
    print(f"{'mean over all prompts and seeds':<60} "
          + " ".join(f"{statistics.mean(totals[s]):22.1f}" for s in sizes))


if __name__ == "__main__":
    main()
