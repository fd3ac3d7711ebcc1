"""Generating with trained adapters: what an adapter costs per render (tiny model, CPU, no weights).

On a tiny SD text-to-image pipeline (saved in the diffusers layout; tests/tiny_pipelines.py) and
tiny adapters built with peft/diffusers (tests/tiny_adapters.py), through ``DiffusionEngine.render``:

1. a render without adapters (the baseline);
2. the first render with a LoRA (``load_lora_weights`` + ``set_adapters``) and a second one (kept
   loaded: ``set_adapters`` only);
3. a render without adapters on the pipeline that has the LoRA loaded (``disable_lora``: peft's
   disabled layers call the base layer only) -- the output is bit-identical to (1);
4. the same for a textual inversion (first load, then kept);
5. the up-front check of a request with two adapters (find, metadata, safetensors header, base
   fingerprint; no torch).

Timings are the best of ``--repeats`` (wall and process CPU time); this machine is shared, so CPU
time is the steadier figure. Run: ``.venv/bin/python benchmarks/bench_adapters.py [--size 384x288]
[--steps 4] [--repeats 5]``. Figures are recorded in benchmarks/README-adapters.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))


def timed(fn) -> tuple[float, float, object]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def best(fn, repeats: int) -> tuple[float, float, object]:
    runs = [timed(fn) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[-1][2]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="384x288")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import tiny_adapters as ta
    import tiny_pipelines as tp
    from packshot.backgrounds import SceneJob
    from packshot.backgrounds.diffusion import DiffusionEngine
    from packshot.config import Settings
    from packshot.layout import place, plan
    from packshot.models import ModelCache
    from packshot.schema import GenerateRequest
    from packshot.types import Cutout, Matte, Photo
    from synth import mug_photo

    W, H = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="bench_adapters_"))
    model = tp.build_sd_text2img(tmp / "sd-t2i")
    lora = ta.build_lora(tmp / "lora", model)
    ti = ta.build_ti(tmp / "ti", model)
    rgb, alpha = mug_photo((W, H), jpeg_quality=None, seed=3)
    cut = Cutout(Photo(rgb, source="mug"), Matte(alpha=alpha, engine="truth"))
    settings = Settings(model_dir=tmp / "models", device="cpu")

    def job(*adapters: Path) -> SceneJob:
        req = GenerateRequest(engine="diffusion", model=str(model), mode="text2img", steps=args.steps, n=1, seed=5,
                              prompt="<product> on a wooden table", keep_framing=True,
                              adapters=[str(a) for a in adapters])
        return SceneJob(request=req, layer=place(cut, plan(cut, req)), seeds=(5,), photo=cut.photo)

    engine = DiffusionEngine(settings, models=ModelCache(2))
    engine.render(job())                       # load the base once
    rows = []
    w, c, base = best(lambda: engine.render(job())[0], args.repeats)
    rows.append(("no adapter", w, c))
    w, c, _ = timed(lambda: engine.render(job(lora))[0])
    rows.append(("LoRA, first render (load_lora_weights)", w, c))
    w, c, _ = best(lambda: engine.render(job(lora))[0], args.repeats)
    rows.append(("LoRA, kept loaded", w, c))
    w, c, off = best(lambda: engine.render(job())[0], args.repeats)
    rows.append(("no adapter, LoRA loaded but disabled", w, c))
    same = np.array_equal(off.rgb, base.rgb)
    w, c, _ = timed(lambda: engine.render(job(ti))[0])
    rows.append(("textual inversion, first render (load)", w, c))
    w, c, _ = best(lambda: engine.render(job(ti))[0], args.repeats)
    rows.append(("textual inversion, kept loaded", w, c))
    w, c, _ = best(lambda: engine.check(job(lora, ti).request, settings), args.repeats)
    rows.append(("check() of a request with 2 adapters", w, c))

    print(f"tiny SD text2img, {W}x{H}, {args.steps} steps, torch threads {args.threads}, best of {args.repeats}")
    print("| render | wall s | CPU s |")
    print("|---|---|---|")
    for name, w, c in rows:
        print(f"| {name} | {w:.3f} | {c:.3f} |")
    print(f"no adapter after a LoRA was loaded is bit-identical to before: {same}")
    holder = engine.models._items[engine.models.keys()[0]]
    print(f"adapter loads: {holder.adapters.stats}; base pipeline loads: {engine.models.stats['loads']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
