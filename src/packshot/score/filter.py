"""Keep / drop: ``min_similarity`` and ``keep`` applied to the ranked candidates.

* ``min_similarity T`` drops every candidate whose ``similarity`` score is below T. Only candidates
  whose product was generated carry that score; where the product was pasted back exactly
  (studio, inpaint, outpaint) it is the photo itself, so those candidates are exempt (not scored
  and not dropped) and a note says so.
* ``keep X`` then returns the best X of what is left, by the existing rank.

Nothing is silently lost: each dropped candidate keeps its scores and gets ``dropped_reason``; the
result lists them (``GenerateResult.dropped``, ``results.json`` ``dropped``) and one note counts
them ("dropped 2 of 6: similarity 0.41, 0.38 < 0.6; 1 ranked below keep=3").
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..types import Candidate


@dataclass
class Filtered:
    kept: list[Candidate]
    dropped: list[Candidate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def keep_filter(ranked: list[Candidate], min_similarity: float | None, keep: int | None) -> Filtered:
    """Split ranked candidates (best first) into kept and dropped; both stay in rank order."""
    kept: list[Candidate] = []
    low: list[Candidate] = []
    exempt = 0
    for c in ranked:
        sim = c.scores.get("similarity")
        if min_similarity is not None and sim is None:
            exempt += 1
        if min_similarity is not None and sim is not None and sim < min_similarity:
            c.dropped_reason = f"similarity {sim:.2f} < {min_similarity:g}"
            low.append(c)
        else:
            kept.append(c)
    below: list[Candidate] = []
    if keep is not None and len(kept) > keep:
        kept, below = kept[:keep], kept[keep:]
        for c in below:
            c.dropped_reason = f"ranked below keep={keep}"
    out = Filtered(kept=kept, dropped=low + below)
    if out.dropped:
        parts = []
        if low:
            values = ", ".join(f"{c.scores['similarity']:.2f}" for c in low)
            parts.append(f"similarity {values} < {min_similarity:g}")
        if below:
            parts.append(f"{len(below)} ranked below keep={keep}")
        out.notes.append(f"dropped {len(out.dropped)} of {len(ranked)}: {'; '.join(parts)}")
    if exempt:
        out.notes.append(f"min_similarity applies to generated products only: {exempt} candidate"
                         f"{'s' if exempt != 1 else ''} with the product pasted back exactly "
                         f"{'were' if exempt != 1 else 'was'} not filtered")
    return out
