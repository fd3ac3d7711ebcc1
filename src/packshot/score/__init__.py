"""Score stage: how good is each candidate, and in which order to show them."""
from __future__ import annotations

import numpy as np

from ..types import Candidate, Layer


def product_fidelity(image: np.ndarray, layer: Layer) -> float:
    """Mean absolute change (0..255) of the opaque product pixels in the final image (0 = exact)."""
    m = layer.alpha >= 1.0
    if not m.any():
        return 0.0
    return float(np.abs(image[m].astype(np.int16) - layer.rgb[m].astype(np.int16)).mean())


def score_candidate(cand: Candidate, layer: Layer, placement=None) -> dict[str, float]:
    return {"product_change": product_fidelity(cand.image, layer)}


def rank(cands: list[Candidate]) -> list[Candidate]:
    return sorted(cands, key=lambda c: c.scores.get("overall", 0.0), reverse=True)
