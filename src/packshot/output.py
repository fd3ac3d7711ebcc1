"""Write a GenerateResult to a folder: the candidates, the cutout and ``results.json``.

Every file is written atomically, results.json last, so a folder with a results.json is whole.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .io import EXTENSIONS, FORMATS, SOURCE_TYPE_SYNTHETIC, SOURCE_TYPE_TRAINED, encode_image, \
    format_parameters, write_atomic
from .layout import UPSCALE_WARN
from .types import Cutout, GenerateResult


def candidate_bytes(cand, fmt: str = "png") -> bytes:
    """Encode one candidate with its ``parameters`` text and DigitalSourceType."""
    source = SOURCE_TYPE_TRAINED if cand.scene.generated else SOURCE_TYPE_SYNTHETIC
    return encode_image(cand.image, fmt, parameters=format_parameters(cand.prompt, cand.parameters),
                        source_type=source)


def save_cutout(cut: Cutout, path: str | Path) -> Path:
    """RGBA PNG the size of the photo, whose alpha is the matte."""
    params = format_parameters("cutout", {"Cutout": cut.matte.engine, "Source": Path(cut.photo.source).name})
    return write_atomic(path, encode_image(cut.rgba(), "png", parameters=params))


def result_entry(cand, rank: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "file": cand.file,
        "seed": cand.seed,
        "engine": cand.engine,
        "prompt": cand.prompt,
        "parameters": cand.parameters,
        "scores": {k: round(float(v), 5) for k, v in cand.scores.items()},
        "timings": {k: round(float(v), 4) for k, v in cand.timings.items()},
        "notes": list(cand.notes),
    }


def dropped_entry(cand) -> dict[str, Any]:
    """A candidate removed by min_similarity / keep: no file, its seed, scores and why."""
    return {
        "seed": cand.seed,
        "engine": cand.engine,
        "reason": cand.dropped_reason,
        "scores": {k: round(float(v), 5) for k, v in cand.scores.items()},
        "parameters": cand.parameters,
        "notes": list(cand.notes),
    }


def needs_generative(result: GenerateResult) -> list[str]:
    """Scene words of the prompt only a generative engine can draw (the studio engine records
    them in its parameters), sorted; empty when there are none or the engine was generative."""
    words = {w for c in result.candidates
             for w in str(c.scene.params.get("Needs generative engine", "")).split(", ") if w}
    return sorted(words)


def save_result(result: GenerateResult, outdir: str | Path, fmt: str | None = None) -> Path:
    """Write candidates (ranked, best first), ``cutout.png`` and ``results.json``; return its path."""
    out = Path(outdir)
    fmt = (fmt or result.request.output_format).lower()
    ext = EXTENSIONS[FORMATS[fmt]]
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, cand in enumerate(result.candidates, 1):
        name = f"candidate_{i:02d}_seed{cand.seed}{ext}"
        write_atomic(out / name, candidate_bytes(cand, fmt))
        cand.file = name
        entries.append(result_entry(cand, i))
    save_cutout(result.cutout, out / "cutout.png")
    doc = {
        "request": result.request.model_dump(mode="json"),
        "source": result.cutout.photo.source,
        "cutout": {"file": "cutout.png", "engine": result.cutout.matte.engine,
                   "bbox": list(result.cutout.bbox), "notes": list(result.cutout.matte.notes),
                   "confidence": result.cutout.matte.confidence, "reasons": list(result.cutout.matte.reasons)},
        "canvas": list(result.placement.canvas_size),
        "placement": {"offset": list(result.placement.offset), "scale": result.placement.scale,
                      "product_box": list(result.placement.product_box), "anchor": result.placement.anchor,
                      "preset": result.placement.preset, "view": result.placement.view,
                      "edges": list(result.placement.edges),
                      "upscale": round(result.placement.upscale, 3)},
        "upscaled": result.placement.upscale > UPSCALE_WARN,
        "needs_generative_engine": needs_generative(result),
        "timings": {k: round(float(v), 4) for k, v in result.timings.items()},
        "notes": result.notes,
        "candidates": entries,
        "dropped": [dropped_entry(c) for c in result.dropped],
    }
    return write_atomic(out / "results.json", json.dumps(doc, indent=2).encode("utf-8"))
