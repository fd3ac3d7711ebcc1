"""The overall score and the ranking.

``overall`` in [0, 1] is a weighted geometric mean of "goodness" terms, each in [0, 1], so one bad
property (a changed product, a broken preset rule) pulls the candidate down whatever the rest:

=====================  ===========================================  ======
term                   goodness                                     weight
=====================  ===========================================  ======
product_change         ``exp(-product_change / 2)``                 3
compliance             ``compliance``                               3
object_expansion       ``1 - object_expansion``                     2
seam                   ``exp(-seam / 12)``                          1.5
fringe                 ``exp(-fringe / 12)``                        1
separation             ``0.4 + 0.6 * separation``                   1
exposure               ``exposure``                                 1
raw_product_change     ``exp(-raw_product_change / 64)`` (if any)   0.5
similarity             ``similarity`` (generated products only)     3
=====================  ===========================================  ======

Then the cut-out's confidence (:mod:`packshot.segment.confidence`), when known, multiplies it:
``overall *= sqrt(cutout_confidence)``. A confident cut-out (1.0) leaves the score as it is; a
clearly wrong one (0.3) takes a 0.96 down to 0.53. It is the same for every candidate of one
photo, so it does not reorder them; it keeps a wrong cut-out from scoring as if it were fine.

:func:`rank` sorts best first by ``overall``; the sort is stable (equal scores keep the seed order)
and a missing or non-finite ``overall`` counts as 0. Deterministic: same inputs, same order.
"""
from __future__ import annotations

import math

TERMS = (
    ("product_change", 3.0, lambda v: math.exp(-v / 2.0)),
    ("compliance", 3.0, lambda v: v),
    ("object_expansion", 2.0, lambda v: 1.0 - v),
    ("seam", 1.5, lambda v: math.exp(-v / 12.0)),
    ("fringe", 1.0, lambda v: math.exp(-v / 12.0)),
    ("separation", 1.0, lambda v: 0.4 + 0.6 * v),
    ("exposure", 1.0, lambda v: v),
    ("raw_product_change", 0.5, lambda v: math.exp(-v / 64.0)),
    ("similarity", 3.0, lambda v: v),
)


def overall(scores: dict[str, float]) -> float:
    """Weighted geometric mean of the goodness terms present in ``scores`` (see the table)."""
    num = den = 0.0
    for name, weight, good in TERMS:
        v = scores.get(name)
        if v is None or not math.isfinite(v):
            continue
        g = min(1.0, max(1e-6, good(float(v))))
        num += weight * math.log(g)
        den += weight
    return math.exp(num / den) if den else 0.0


def with_cutout_confidence(scores: dict[str, float], confidence: float | None) -> dict[str, float]:
    """``scores`` with the cut-out's confidence as a term and ``overall`` recomputed (unchanged when
    the confidence is unknown)."""
    if confidence is None:
        return scores
    out = {**scores, "cutout_confidence": float(confidence)}
    out["overall"] = overall(scores) * math.sqrt(max(0.0, min(1.0, float(confidence))))
    return out


def _key(cand) -> float:
    v = cand.scores.get("overall", 0.0)
    return -float(v) if v is not None and math.isfinite(v) else 0.0


def rank(cands: list) -> list:
    """Candidates best first by ``scores["overall"]``; stable for ties."""
    return sorted(cands, key=_key)
