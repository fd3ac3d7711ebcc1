"""Training speed and memory: steps/s and peak memory of ``packshot.train`` on the tiny SD / SDXL
pipelines (tests/tiny_pipelines.py) for each method at 64 and 128 px, a printed table.

    .venv/bin/python benchmarks/bench_train.py                 # tiny models, CPU (or the GPU if torch sees one)
    .venv/bin/python benchmarks/bench_train.py --steps 40 --sizes 64 128 256
    .venv/bin/python benchmarks/bench_train.py --base /models/sd15 --sizes 512 --methods lora   # real weights
    .venv/bin/python benchmarks/bench_train.py --estimate      # the SD1.5 / SDXL GPU estimate (benchmarks/train_estimate.py)

Each configuration runs in its own process so that its peak RSS (``resource.getrusage``) is its
own; ``rss_base`` is the RSS just before the training loop's first step would allocate (the
process with torch, diffusers and the model loaded), ``peak - base`` what training added. On
CUDA the table adds ``torch.cuda.max_memory_allocated``. steps/s is measured over the loop only
(cut-outs, model loading and saving excluded: see ``timings``), after the first step (warm-up).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

METHODS = ("lora", "dreambooth-lora", "textual-inversion")


def _photos(folder: Path) -> list[Path]:
    from PIL import Image
    from synth import mug_photo

    out = []
    for i in range(3):
        rgb, _ = mug_photo((320, 240), color=(180 - 10 * i, 40, 40), seed=i, jpeg_quality=None)
        p = folder / f"mug-{i}.png"
        Image.fromarray(rgb).save(p)
        out.append(p)
    return out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def child(spec: dict) -> dict:
    """One configuration, in this process: returns its figures."""
    import time

    import torch

    from packshot.train import train

    times: list[float] = []
    rss_at_start: list[float] = []

    def progress(step: int, total: int, loss: float) -> None:
        if not rss_at_start:
            rss_at_start.append(_rss_mb())
        times.append(time.perf_counter())

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    req = {"base": spec["base"], "method": spec["method"], "steps": spec["steps"], "resolution": spec["size"],
           "seed": 0, "rank": spec["rank"], "checkpoint_every": 100000,
           "gradient_checkpointing": spec["gc"], "mixed_precision": spec["mp"]}
    if spec["method"] == "dreambooth-lora" and spec["prior"]:
        req.update(prior_preservation=True, prior_images=2)
    res = train(spec["photos"], req, spec["out"], progress=progress)
    steps_per_s = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    out = {**{k: spec[k] for k in ("family", "method", "size", "rank", "gc", "mp")}, "steps": res.steps,
           "steps_per_s": steps_per_s, "rss_base_mb": rss_at_start[0] if rss_at_start else None,
           "rss_peak_mb": _rss_mb(), "final_loss": res.final_loss, "device": str(res.adapter.meta.get("device", "")),
           "timings": res.timings}
    if torch.cuda.is_available():
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
        out["device"] = torch.cuda.get_device_name()
    else:
        out["device"] = f"cpu x{torch.get_num_threads()} threads"
    return out


def _bases(work: Path, args) -> list[tuple[str, Path]]:
    if args.base:
        from packshot.models.adapters import base_family
        return [(base_family(args.base), Path(args.base))]
    import tiny_pipelines as tp
    out = [("sd", tp.build_sd_text2img(work / "tiny-sd"))]
    if not args.no_sdxl:
        out.append(("sdxl", tp.build_sdxl_text2img(work / "tiny-sdxl")))
    return out


def _table(rows: list[dict]) -> str:
    head = "| base | method | px | steps/s | peak RSS MB | RSS added by training MB | CUDA peak MB | final loss |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        added = r["rss_peak_mb"] - r["rss_base_mb"] if r.get("rss_base_mb") else float("nan")
        cuda = f"{r['cuda_peak_mb']:.0f}" if "cuda_peak_mb" in r else "-"
        lines.append(f"| tiny {r['family']} | {r['method']} | {r['size']} | {r['steps_per_s']:.2f} | "
                     f"{r['rss_peak_mb']:.0f} | {added:.0f} | {cuda} | {r['final_loss']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--base", help="a real SD / SDXL pipeline folder instead of the tiny ones")
    ap.add_argument("--no-sdxl", action="store_true", help="tiny SD only")
    ap.add_argument("--prior", action="store_true", help="dreambooth-lora with prior preservation (2 class images)")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--mixed-precision", default="no", choices=("no", "fp16", "bf16"))
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--estimate", action="store_true", help="print the SD1.5 / SDXL GPU estimate and exit")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print("ROW " + json.dumps(child(json.loads(args.child))))
        return 0
    if args.estimate:
        return subprocess.call([sys.executable, str(Path(__file__).with_name("train_estimate.py"))])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = [str(p) for p in _photos(work)]
        for family, base in _bases(work, args):
            for method in args.methods:
                for size in args.sizes:
                    spec = {"family": family, "base": str(base), "method": method, "size": size, "steps": args.steps,
                            "rank": args.rank, "photos": photos, "out": str(work / f"out-{family}-{method}-{size}"),
                            "gc": args.gradient_checkpointing, "mp": args.mixed_precision, "prior": args.prior}
                    r = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                       text=True)
                    row = next((json.loads(ln[4:]) for ln in r.stdout.splitlines() if ln.startswith("ROW ")), None)
                    if row is None:
                        print(f"{family} {method} {size}px failed: {r.stderr.strip().splitlines()[-1:]}",
                              file=sys.stderr)
                        continue
                    rows.append(row)
                    print(f"{family:5} {method:18} {size:4}px {row['steps_per_s']:6.2f} steps/s  "
                          f"peak RSS {row['rss_peak_mb']:.0f} MB", file=sys.stderr)
    if rows:
        print(f"device: {rows[0]['device']}; {args.steps} steps, 3 photos, batch 1, rank {args.rank}, "
              f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}, "
              f"mixed precision {args.mixed_precision}; load average at the end: "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
