"""Cut-out confidence: a number in [0, 1] and the reasons it is below 1.

Every engine's matte can be assessed from what it shows (no ground truth): a product photo's
cut-out is usually one object (or a few parts of similar size, a pair of shoes), inside the frame,
filling a sensible part of it; and where two methods were run (the learned engine's model and the
classical colour model), they should agree. Each test that fails multiplies the confidence by a
factor and adds one short reason. The factors are round numbers, checked on the seller photos in
``../shared/data/seed_products`` and on crops that cut a product at the frame (see
``benchmarks/README-cutout.md``); they are meant to separate clearly wrong cut-outs (below
:data:`WARN_BELOW`) from right ones, not to rank two good ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WARN_BELOW = 0.5   # the CLI warns, the web app flags it, candidates carry it


@dataclass(frozen=True)
class Confidence:
    value: float
    reasons: tuple[str, ...] = ()

    @property
    def low(self) -> bool:
        return self.value < WARN_BELOW


def _touching_sides(mask: np.ndarray, min_fraction: float = 0.03) -> list[str]:
    """Photo sides along which the mask covers more than ``min_fraction`` of the border row/column."""
    sides = {"top": mask[0], "bottom": mask[-1], "left": mask[:, 0], "right": mask[:, -1]}
    return [name for name, line in sides.items() if line.mean() > min_fraction]


def _large_components(mask: np.ndarray, ratio: float = 0.25) -> int:
    """Number of 8-connected parts at least ``ratio`` of the largest part's area."""
    import cv2  # lazy: this module is imported at CLI start-up (through the pipeline)

    n, _lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    return int((areas >= ratio * areas.max()).sum())


def assess(alpha: np.ndarray, *, prob: np.ndarray | None = None, agreement: float | None = None,
           box: bool = False, work_side: int = 400,
           penalties: tuple[tuple[float, str], ...] = ()) -> Confidence:
    """Confidence of a matte (HxW float in [0, 1]).

    ``prob``: a trained model's map (any size), whose share of unsure values counts;
    ``agreement``: IoU between two methods' masks (None: only one method ran);
    ``box``: the user drew a box (the frame tests then matter less: the box decides);
    ``penalties``: the engine's own (factor, reason) pairs, e.g. "GrabCut's guess in context".
    """
    import cv2

    h, w = alpha.shape
    s = min(1.0, work_side / max(h, w))
    small = cv2.resize(np.asarray(alpha, np.float32), (max(1, round(w * s)), max(1, round(h * s))),
                       interpolation=cv2.INTER_AREA) if s < 1 else np.asarray(alpha, np.float32)
    mask = small >= 0.5
    value, reasons = 1.0, []
    for factor, reason in penalties:
        value *= factor
        reasons.append(reason)
    fill = float(mask.mean())
    if fill > 0.8:
        value *= 0.35
        reasons.append(f"the product fills nearly all of the frame ({fill:.0%})")
    elif fill < 0.005:
        value *= 0.35
        reasons.append(f"the product fills almost none of the frame ({fill:.1%})")
    sides = _touching_sides(mask)
    if sides and not box:
        value *= (0.75, 0.45, 0.35, 0.25)[min(len(sides), 4) - 1]
        reasons.append(f"the cut-out touches the frame ({', '.join(sides)}): the product may be cut off "
                       f"or the background kept")
    parts = _large_components(mask)
    if parts >= 3:
        value *= 0.6
        reasons.append(f"{parts} separate large parts")
    elif parts == 2:
        value *= 0.9
        reasons.append("2 separate large parts")
    if agreement is not None and agreement < 0.85:
        value *= 0.45 + 0.55 * agreement / 0.85
        reasons.append(f"the trained model and the colour model disagree (IoU {agreement:.2f})")
    if prob is not None and mask.any():
        unsure = float(((prob > 0.15) & (prob < 0.85)).sum()) / max(float((prob >= 0.5).sum()), 1.0)
        if unsure > 0.35:
            value *= 0.75
            reasons.append(f"the trained model is unsure about much of the product (unsure area "
                           f"{unsure:.1f}x the product's)")
    return Confidence(round(float(np.clip(value, 0.0, 1.0)), 3), tuple(reasons))


def with_confidence(matte, *, boxed: bool = False):
    """``matte`` with its confidence filled in when its engine did not assess it (cheap)."""
    if matte.confidence is not None:
        return matte
    from dataclasses import replace

    conf = assess(matte.alpha, box=boxed)
    return replace(matte, confidence=conf.value, reasons=conf.reasons)


def low_confidence_note(matte) -> str | None:
    """One line for a matte whose confidence is below :data:`WARN_BELOW` (None otherwise)."""
    if matte.confidence is None or matte.confidence >= WARN_BELOW:
        return None
    why = "; ".join(matte.reasons) or "no reason recorded"
    return (f"low cut-out confidence {matte.confidence:.2f} ({why}): check the cut-out, or give a box or "
            f"clicks")
