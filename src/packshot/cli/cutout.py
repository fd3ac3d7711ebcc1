"""packshot cutout IN -o OUT.png

The cutout options are generated from ``schema.SegmentOptions`` (see ``cli.options``).
"""
from __future__ import annotations

from .common import Progress, later


def register(sub) -> None:
    p = sub.add_parser("cutout", help="cut the product out: RGBA PNG the size of the photo",
                       description="Cut the product out of a photo. Writes an RGBA PNG the size of "
                                   "the input whose alpha is the matte.")
    p.add_argument("input", help="product photo (JPEG, PNG, WebP, TIFF, BMP)")
    p.add_argument("-o", "--output", required=True, help="output PNG path")
    p.set_defaults(func=run)
    later(p, _options)


def _options(p) -> None:
    from ..schema import SegmentOptions
    from .options import add_options

    add_options(p, SegmentOptions, prefix="segment.", title="cutout hints",
                extra_flags={"engine": ("--engine",)})


def run(args) -> int:
    from ..config import Settings
    from ..output import save_cutout
    from ..pipeline import default_pipeline
    from ..schema import SegmentOptions, build
    from .options import values

    if not args.output.lower().endswith(".png"):
        from ..errors import InvalidInputError
        raise InvalidInputError(f"output {args.output!r} must be a .png (a cutout needs alpha)")
    opts = build(SegmentOptions, values(args, SegmentOptions, prefix="segment."))
    progress = Progress()
    cut = default_pipeline(Settings.from_env()).cutout(args.input, opts, progress)
    progress.done()
    path = save_cutout(cut, args.output)
    x0, y0, x1, y1 = cut.bbox
    print(f"wrote {path} ({cut.photo.size[0]}x{cut.photo.size[1]}, engine {cut.matte.engine}, "
          f"product box {x0},{y0},{x1},{y1})")
    for note in cut.matte.notes:
        print(f"note: {note}")
    from ..segment.confidence import low_confidence_note

    low = low_confidence_note(cut.matte)
    if low:
        print(f"warning: {low}")
    return 0
