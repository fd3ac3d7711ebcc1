"""packshot batch INPUT -o OUT: a listing set per SKU, resumable, in parallel, with a report."""
from __future__ import annotations

import sys
import time


def register(sub) -> None:
    p = sub.add_parser(
        "batch", help="a whole catalog: per SKU a main image + lifestyle images, report.html, summary.json",
        description="INPUT is a folder of photos (SKU = file name) or a CSV with columns "
                    "sku, photo[, prompt, look, preset, hints]. Per SKU, OUT/<sku>/ gets the marketplace's "
                    "main image and --lifestyle images from the row's look or prompt. Run it again after "
                    "a crash: only what is missing is made. Exit 0: all SKUs made; 1: some failed "
                    "(see OUT/report.html); 2: bad input.")
    p.add_argument("input", metavar="INPUT", help="folder of photos, or a .csv file")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument("--marketplace", "-m", default="amazon",
                   help="amazon (default) | walmart | google | ebay | etsy | shopify: the main image's preset "
                        "(walmart and google: the white amazon layout) and the rules it is checked against")
    p.add_argument("--prompt", "-p", default=None,
                   help="lifestyle scene for rows with no prompt or look (default: a light oak table)")
    p.add_argument("--lifestyle", type=int, default=2, metavar="N", help="lifestyle images per SKU (default 2)")
    p.add_argument("--size", default="2000x2000", metavar="WxH", help="lifestyle canvas (default 2000x2000)")
    p.add_argument("--seed", type=int, default=1, help="seed of every SKU's first image (default 1)")
    p.add_argument("--format", dest="output_format", default="png", help="png (default) | jpeg | webp")
    p.add_argument("--workers", "-j", type=int, default=1, metavar="N", help="processes in parallel (default 1)")
    p.set_defaults(func=run)


class SkuBar:
    """One progress bar over SKUs with an ETA (a terminal), or one line per SKU (piped)."""

    def __init__(self, total: int, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.total, self.t0, self.made, self.failed = total, time.perf_counter(), 0, 0

    def __call__(self, rec: dict, finished: int, total: int) -> None:
        if finished == 0:  # done by an earlier run
            return
        self.made += 1
        self.failed += rec.get("status") != "ok"
        if not self.tty:
            state = "ok" if rec.get("status") == "ok" else f"FAILED: {rec.get('reason')}"
            print(f"[{finished}/{total}] {rec['sku']}: {state}", flush=True)
            return
        el = time.perf_counter() - self.t0
        left = total - finished
        eta = el / self.made * left
        filled = round(24 * finished / max(total, 1))
        self.stream.write(f"\rSKUs [{'#' * filled}{'.' * (24 - filled)}] {finished}/{total} "
                          f"{self.failed} failed  {el:5.0f}s elapsed  ETA {eta:4.0f}s ")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self.made:
            self.stream.write("\n")


def run(args) -> int:
    from pathlib import Path

    from ..batch import BatchOptions, read_rows, run_rows, write_reports
    from ..batch.runner import OutLock, clean_partial
    from ..config import Settings
    from ..errors import InvalidInputError
    from ..marketplace import rules_for
    from ..schema import GenerateRequest, build

    rules_for(args.marketplace)
    if args.workers < 1 or args.lifestyle < 0 or args.lifestyle > 16:
        raise InvalidInputError(f"--workers {args.workers} / --lifestyle {args.lifestyle}: need workers >= 1 "
                                "and 0 <= lifestyle <= 16")
    build(GenerateRequest, {"size": args.size, "output_format": args.output_format, "seed": args.seed,
                            **({"prompt": args.prompt} if args.prompt else {})})  # bad values: exit 2
    opts = BatchOptions(marketplace=args.marketplace, lifestyle=args.lifestyle, size=args.size, seed=args.seed,
                        output_format=args.output_format,
                        **({"prompt": args.prompt} if args.prompt else {}))
    rows = read_rows(args.input)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"output {args.output!r} exists and is not a folder")
    with OutLock(out):
        clean_partial(out)  # a report a killed run was writing
        bar = SkuBar(len(rows))
        result = run_rows(rows, opts, out, Settings.from_env(), workers=args.workers, on_done=bar)
        bar.done()
        from dataclasses import asdict
        summary = write_reports(result, str(args.input), out, asdict(opts))
    c = summary["counts"]
    speed = summary["this_run"]["images_per_second"]
    print(f"{c['skus']} SKUs: {c['ok']} ok, {c['failed']} failed; {result['made']} made now, "
          f"{result['skipped']} already done{f', {speed} images/s' if speed else ''}; "
          f"report: {out / 'report.html'}")
    return 1 if c["failed"] else 0
