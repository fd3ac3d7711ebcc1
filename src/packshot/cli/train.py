"""packshot train PHOTO... --base MODEL --method lora|dreambooth-lora|textual-inversion -o ADAPTER_DIR

The training options are generated from ``schema.TrainRequest`` (see ``cli.options``).
"""
from __future__ import annotations

import sys
import time

from .common import later


def register(sub) -> None:
    p = sub.add_parser("train", help="learn a product from 3-20 photos: a LoRA / DreamBooth-LoRA / "
                                     "textual-inversion adapter",
                       description="Train an adapter on 3-20 photos of one product (packshot's own cut-outs "
                                   "mask the loss, so the table it was shot on is not learned). Use it with "
                                   "'packshot generate --adapter DIR' and '<product>' in the prompt.")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="photos of the product (3 to 20)")
    p.add_argument("-o", "--output", metavar="ADAPTER_DIR",
                   help="adapter folder (default: <model dir>/adapters/<name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the newest checkpoint in ADAPTER_DIR")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    later(p, _options)


def _options(p) -> None:
    from ..schema import TrainRequest
    from .options import add_options

    add_options(p, TrainRequest, prefix="train.", title="training")


class StepBar:
    """``\\rstep 12/400 [####....] loss 0.1234  3.1 s`` on a terminal's stderr; silent otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.shown = False

    def __call__(self, step: int, total: int, loss: float) -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(round(width * step / max(total, 1)))
        sys.stderr.write(f"\rtrain {step:>6}/{total} [{'#' * filled}{'.' * (width - filled)}] loss {loss:.4f} "
                         f"{time.perf_counter() - self.t0:6.1f}s")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def run(args) -> int:
    from ..config import Settings
    from ..schema import TrainRequest, build
    from ..train import train
    from .options import values

    request = build(TrainRequest, values(args, TrainRequest, prefix="train."))
    bar = StepBar(enabled=not args.quiet and sys.stderr.isatty())
    try:
        res = train(args.photos, request, args.output, settings=Settings.from_env(), progress=bar,
                    resume=args.resume)
    finally:
        bar.done()
    how = f"resumed from step {res.resumed_from}, " if res.resumed_from is not None else ""
    if args.resume and res.resumed_from is None:
        how = "no checkpoint to resume from: trained from the start, "
    stop = ", stopped early: the smoothed loss stopped improving" if res.stopped_early else ""
    print(f"wrote adapter {res.adapter.name!r} to {res.path} ({res.adapter.method}, token {res.adapter.token!r}, "
          f"{how}{res.steps} steps, final loss {res.final_loss:.4f}{stop})")
    print(f"use it: packshot generate PHOTO --engine diffusion --model {request.base} --adapter {res.path} "
          f"--prompt \"<product> on a marble table\"")
    return 0
