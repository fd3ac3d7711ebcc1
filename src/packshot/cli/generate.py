"""packshot generate IN --prompt TEXT -o OUTDIR"""
from __future__ import annotations

from .common import Progress, add_segment_args, segment_options


def register(sub) -> None:
    p = sub.add_parser("generate", help="place the product in new scenes: n candidates + results.json",
                       description="Cut the product out and place it in n new scenes described by "
                                   "--prompt. Writes the candidates (best first), cutout.png and "
                                   "results.json to OUTDIR.")
    p.add_argument("input", help="product photo")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--prompt", "-p", default=None, help="the scene, in words")
    p.add_argument("--negative-prompt", default=None, help="what to avoid (diffusion)")
    p.add_argument("-n", type=int, default=None, help="number of candidates (default 4)")
    p.add_argument("--seed", type=int, default=None, help="seed of the first candidate")
    p.add_argument("--engine", action="append", default=[], metavar="NAME",
                   help="background engine studio (default) | diffusion, and/or cutout engine "
                        "classic | sam | auto; repeatable, e.g. --engine sam --engine diffusion")
    p.add_argument("--model", default=None, help="diffusion model: registry id or local path")
    canvas = p.add_mutually_exclusive_group()
    canvas.add_argument("--preset", default=None, help="amazon | ebay | shopify | etsy")
    canvas.add_argument("--size", default=None, metavar="WxH", help="canvas size, e.g. 1024x1024")
    canvas.add_argument("--aspect", default=None, help="original | 1:1 | 4:5 | 16:9 | 3:2 | 2:3 | 9:16")
    p.add_argument("--keep-framing", action="store_true", default=None,
                   help="canvas = photo size; the product stays exactly where it was")
    p.add_argument("--placement", default=None, help="surface (default) | center")
    p.add_argument("--margin", type=float, default=None, help="free border, fraction of the side")
    p.add_argument("--scale", type=float, default=None,
                   help="product's longer side as a fraction of the canvas's longer side")
    p.add_argument("--no-shadow", dest="shadow", action="store_false", default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--strength", type=float, default=None)
    p.add_argument("--scheduler", default=None)
    p.add_argument("--mode", default=None, help="auto | inpaint | text2img | img2img (diffusion)")
    p.add_argument("--seam-pass", action="store_true", default=None)
    p.add_argument("--controlnet", default=None)
    p.add_argument("--control-image", default=None, help="canny | depth")
    p.add_argument("--ip-adapter", default=None)
    p.add_argument("--reference-image", default=None)
    p.add_argument("--format", dest="output_format", default=None, help="png (default) | jpeg | webp")
    add_segment_args(p)
    p.set_defaults(func=run)


FIELDS = ("prompt", "negative_prompt", "n", "seed", "model", "preset", "size", "aspect",
          "keep_framing", "placement", "margin", "scale", "shadow", "steps", "guidance", "strength",
          "scheduler", "mode", "seam_pass", "controlnet", "control_image", "ip_adapter",
          "reference_image", "output_format")


def run(args) -> int:
    from pathlib import Path

    from ..config import Settings
    from ..output import save_result
    from ..pipeline import default_pipeline
    from ..schema import GenerateRequest, build

    from ..backgrounds import ENGINES
    from ..errors import UnknownNameError
    from ..segment import ENGINE_CHOICES

    fields = {f: getattr(args, f) for f in FIELDS if getattr(args, f) is not None}
    for name in args.engine:  # route each --engine value to the stage it names
        if name in ENGINES:
            fields["engine"] = name
        elif name in ENGINE_CHOICES:
            args.segmenter = name
        else:
            raise UnknownNameError("engine", name, [*ENGINES.names(), *ENGINE_CHOICES])
    seg = {k: v for k, v in segment_options(args).items() if v not in (None, [])}
    request = build(GenerateRequest, {**fields, "segment": seg})
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        from ..errors import InvalidInputError
        raise InvalidInputError(f"output {args.output!r} exists and is not a folder")
    progress = Progress()
    result = default_pipeline(Settings.from_env()).generate(args.input, request, progress)
    progress.done()
    path = save_result(result, out)
    best = result.candidates[0]
    print(f"wrote {len(result.candidates)} candidates to {out}/ (best: {best.file}); details in {path}")
    for note in result.notes + sorted({n for c in result.candidates for n in c.notes}):
        print(f"note: {note}")
    return 0
