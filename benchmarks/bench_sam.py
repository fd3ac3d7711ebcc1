"""SAM engine speed: the image embedding once vs each further click, commit and text ranking.

    python benchmarks/bench_sam.py                  # tiny model + ViT-B architecture, 2400x2400
    python benchmarks/bench_sam.py --arch tiny --size 1024
    python benchmarks/bench_sam.py --sam-model PATH  # real weights (folder or registry id)

No weights can be downloaded here, so by default two random-initialised checkpoints are built and
saved in the real on-disk format, then loaded through the public path (``SamSegmenter(model=PATH)``):

* ``tiny``: the test model (128 px input, 2-layer ViT) -- plumbing overhead only;
* ``vit-b``: the default ``SamConfig()`` (ViT-B/16, 1024 px input, 256-d decoder), i.e. the
  architecture of facebook/sam-vit-base. Compute does not depend on the weights' values, so its
  timings are those of the real model; its masks are meaningless. SlimSAM is smaller and faster.

Text ranking uses the tiny CLIP (the real CLIP ViT-B/32 adds ~25-50 ms per crop batch on a CPU).
Prints a markdown table; copy it into benchmarks/README-sam.md.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def build_vit_b(out: Path) -> Path:
    """The facebook/sam-vit-base architecture with random weights, saved like the real one."""
    import torch
    from transformers import SamConfig, SamImageProcessorPil, SamModel

    torch.manual_seed(0)
    model = SamModel(SamConfig()).eval()
    model.save_pretrained(out)
    SamImageProcessorPil().save_pretrained(out)
    return out


def bench(label: str, sam_path: str, clip_path: Path, size: int, clicks: int, text: bool) -> dict:
    import numpy as np

    import synth
    from packshot.config import Settings
    from packshot.types import Hints, Photo
    from packshot.segment.sam import SamSegmenter
    from packshot.segment.text import text_candidates

    rgb, truth = synth.mug_photo((size, size), jpeg_quality=None)
    photo = Photo(rgb=rgb, source=f"mug{size}")
    ys, xs = np.nonzero(truth > 0.5)
    settings = Settings(model_dir=Path(tempfile.gettempdir()) / "packshot-bench-empty")

    t = time.perf_counter()
    seg = SamSegmenter(settings, sam_path, text_model=str(clip_path))
    seg.bundle()
    load = time.perf_counter() - t

    t = time.perf_counter()
    session = seg.session(photo, preview_side=1024)
    embed = time.perf_counter() - t

    rng = np.random.default_rng(0)
    previews, decodes = [], []
    for i in range(clicks):
        k = rng.integers(len(xs))
        session.add_point(int(xs[k]), int(ys[k]), positive=i % 4 != 3)
        t = time.perf_counter()
        session.preview()
        previews.append(time.perf_counter() - t)
        decodes.append(session.timings["sam_decode"])

    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    t = time.perf_counter()
    m = seg.segment(photo, Hints(boxes=(box,)))
    commit = time.perf_counter() - t

    row = {"model": label, "photo": f"{size}x{size}", "load s": load, "embed once s": embed,
           "1st click ms": 1000 * previews[0],
           "further clicks ms (median)": 1000 * statistics.median(previews[1:]),
           "further clicks ms (max)": 1000 * max(previews[1:]),
           "decoder ms (median)": 1000 * statistics.median(decodes),
           "commit s (full res + refine)": commit, "refine s": m.timings.get("sam_refine", 0.0),
           "embeddings computed": seg.stats["embeddings"]}
    if text:
        t = time.perf_counter()
        cands = text_candidates(photo, "the mug", k=5, segmenter=seg)
        row["text top-5 s"] = time.perf_counter() - t
        row["text candidates"] = len(cands)
    row["embeddings computed"] = seg.stats["embeddings"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=["tiny", "vit-b", "both"], default="both")
    ap.add_argument("--sam-model", default=None, help="real SAM weights (folder or registry id) instead")
    ap.add_argument("--size", type=int, default=2400, help="square photo side (px)")
    ap.add_argument("--clicks", type=int, default=10, help="clicks per photo (>= 2)")
    ap.add_argument("--no-text", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)

    import tiny_sam
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tiny_sam.build_tiny_clip(tmp / "clip")
        models = []
        if args.sam_model:
            models.append(("given: " + Path(args.sam_model).name, args.sam_model))
        else:
            if args.arch in ("tiny", "both"):
                models.append(("tiny (random)", str(tiny_sam.build_tiny_sam(tmp / "tiny"))))
            if args.arch in ("vit-b", "both"):
                t = time.perf_counter()
                path = build_vit_b(tmp / "vit-b")
                print(f"(built random ViT-B SAM in {time.perf_counter() - t:.1f}s)", file=sys.stderr)
                models.append(("ViT-B arch (random)", str(path)))
        for label, path in models:
            rows.append(bench(label, path, clip, args.size, args.clicks, not args.no_text))

    import torch
    keys = list(rows[0])
    for r in rows[1:]:
        keys += [k for k in r if k not in keys]
    print(f"\nSAM engine, CPU ({torch.get_num_threads()} torch threads, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end), peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB\n")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        cells = [f"{r[k]:.3f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
