"""packshot generate IN --prompt TEXT -o OUTDIR

The request options are generated from ``schema.GenerateRequest`` / ``SegmentOptions`` (see
``cli.options``); only the input, the output folder and the two-stage ``--engine`` are written here.
"""
from __future__ import annotations

from .common import Progress, later


def register(sub) -> None:
    p = sub.add_parser("generate", help="place the product in new scenes: n candidates + results.json",
                       description="Cut the product out and place it in n new scenes described by "
                                   "--prompt. Writes the candidates (best first), cutout.png and "
                                   "results.json to OUTDIR.")
    p.add_argument("input", help="product photo")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.set_defaults(func=run)
    later(p, _options)


def _options(p) -> None:
    from ..schema import GenerateRequest, SegmentOptions
    from .options import add_options

    bg, seg = GenerateRequest.model_fields["engine"], SegmentOptions.model_fields["engine"]
    p.add_argument("--engine", dest="engines", action="append", default=[], metavar="NAME",
                   help=f"{bg.description.rstrip('.')} (default {bg.default}), and/or "
                        f"{seg.description[0].lower()}{seg.description[1:].rstrip('.')}; repeatable, "
                        "e.g. --engine sam --engine diffusion")
    add_options(p, GenerateRequest)
    add_options(p, SegmentOptions, prefix="segment.", title="cutout hints")


def route_engines(names: list[str]) -> dict[str, str]:
    """Each --engine value goes to the stage it names: {"engine": bg} and/or {"segment": cutout}."""
    from ..backgrounds import ENGINES
    from ..errors import UnknownNameError
    from ..segment import ENGINE_CHOICES

    out: dict[str, str] = {}
    for name in names:
        if name in ENGINES:
            out["engine"] = name
        elif name in ENGINE_CHOICES:
            out["segment"] = name
        else:
            raise UnknownNameError("engine", name, [*ENGINES.names(), *ENGINE_CHOICES])
    return out


def run(args) -> int:
    from pathlib import Path

    from ..config import Settings
    from ..errors import InvalidInputError
    from ..output import save_result
    from ..pipeline import default_pipeline
    from ..schema import GenerateRequest, SegmentOptions, build
    from .options import values

    fields = values(args, GenerateRequest)
    seg = values(args, SegmentOptions, prefix="segment.")
    routed = route_engines(args.engines)
    if "engine" in routed:
        fields["engine"] = routed["engine"]
    if "segment" in routed:
        seg["engine"] = routed["segment"]
    request = build(GenerateRequest, {**fields, "segment": seg})
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"output {args.output!r} exists and is not a folder")
    progress = Progress()
    result = default_pipeline(Settings.from_env()).generate(args.input, request, progress)
    progress.done()
    path = save_result(result, out)
    count = len(result.candidates)
    best = f" (best: {result.candidates[0].file})" if count else ""
    print(f"wrote {count} candidate{'s' if count != 1 else ''} to {out}/{best}; details in {path}")
    _print_dropped(result, request)
    for note in result.notes + sorted({n for c in result.candidates for n in c.notes}):
        print(f"note: {note}")
    return 0


def _print_dropped(result, request) -> None:
    """'kept X of n, dropped Y (similarity < T)' and one line per dropped candidate."""
    if not result.dropped:
        return
    kept, dropped = len(result.candidates), len(result.dropped)
    why = [w for w, on in ((f"similarity < {request.min_similarity:g}", request.min_similarity is not None),
                           (f"keep={request.keep}", request.keep is not None)) if on]
    print(f"kept {kept} of {kept + dropped}, dropped {dropped} ({'; '.join(why)})")
    for c in result.dropped:
        sim = c.scores.get("similarity")
        score = f"similarity {sim:.3f}, " if sim is not None else ""
        print(f"  dropped seed {c.seed}: {score}overall {c.scores.get('overall', 0.0):.3f} ({c.dropped_reason})")
