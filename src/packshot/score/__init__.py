"""Score stage: how good is each candidate, and in which order to show them.

:func:`score_candidate` returns a flat ``dict[str, float]`` (written to ``results.json``);
:func:`rank` orders candidates best first by ``overall``. What each score measures:

==========================  =================================================================
``product_change``          mean abs change (0..255) of the opaque product pixels vs the layer:
                            0 when the product was pasted back exactly (:mod:`.fidelity`)
``raw_product_change``      mean abs difference (0..255) of the model's own pixels under the
                            product before paste-back; only with ``scene.raw_product``
``object_expansion``        0..1, the generated scene continues the product past its mask
``seam``                    colour step (0..255) in the scene right at the product's edge:
                            glows, outlines, inpainting steps a model left (:mod:`.seams`)
``fringe``                  distance (0..255) of the soft edge's colour from any blend of the
                            product and the background: old-backdrop rims, dark halos
``contrast``/``separation`` Delta E between the product's edge and the background beside it;
                            separation = min(1, contrast / 25); absent when there is no
                            background beside the product to measure
``exposure`` (+ ``clipped_highlights``, ``clipped_shadows``, ``brightness``): the background's
                            exposure, 0..1 (:mod:`.exposure`)
``fill``                    product's longer side / canvas's longer side (:mod:`.compliance`)
``compliance`` (+ ``fill_error``, ``border_purity``, ``background_purity`` with a preset):
                            fraction of the preset's rules met; 1 without a preset
``similarity`` (+ ``similarity_colour``, ``_shape``, ``_detail``, ``_embed``): only for a
                            product the model painted itself (``scene.product_generated``), 0..1,
                            how much it still looks like the reference photos (:mod:`.similarity`);
                            such candidates get no layer-based product scores (the product is not
                            where the layer put it), only ``exposure`` and ``similarity``
``overall``                 0..1, weighted geometric mean of the above (:mod:`.ranking`)
==========================  =================================================================

Everything the layer alone decides (rings around the product's edge, masks) is computed once per
layer and shared by the candidates; a 2048x2048 candidate scores in a few tens of milliseconds.
"""
from __future__ import annotations

import numpy as np

from ..types import Candidate, Layer
from .compliance import compliance_scores
from .exposure import exposure_scores
from .fidelity import object_expansion, product_change, raw_product_change
from .geometry import geometry as _geometry
from .ranking import overall, rank
from .seams import contrast, fringe, seam, separation

__all__ = ["product_fidelity", "score_candidate", "score_image", "rank", "overall"]


def product_fidelity(image: np.ndarray, layer: Layer) -> float:
    """Mean absolute change (0..255) of the opaque product pixels in the final image (0 = exact)."""
    return product_change(image, layer, _geometry(layer))


def score_image(image: np.ndarray, layer: Layer, scene=None, placement=None) -> dict[str, float]:
    """All scores of one final image (HxWx3 uint8) made from ``layer`` (and ``scene``, if known)."""
    geo = _geometry(layer)
    placement = placement if placement is not None else layer.placement
    forced = placement is not None and placement.background_rgb is not None
    if scene is not None and getattr(scene, "product_generated", False):
        # the model painted the product itself, wherever it chose: the layer's silhouette says
        # nothing about it, so only the exposure is measured here; the pipeline adds the similarity
        # to the reference photos (:mod:`.similarity`) and recomputes ``overall``
        s = exposure_scores(image, layer, geo, forced)
        s["overall"] = overall(s)
        return {k: float(v) for k, v in s.items()}
    s: dict[str, float] = {"product_change": product_change(image, layer, geo)}
    if scene is not None and getattr(scene, "raw_product", None) is not None:
        s["raw_product_change"] = raw_product_change(scene.raw_product, layer, geo)
    scene_rgb = scene.rgb if scene is not None and not forced else image  # forced: the scene is unused
    s["object_expansion"] = object_expansion(scene_rgb, layer, geo)
    s["seam"] = seam(scene_rgb, geo)
    s["fringe"] = fringe(image, geo)
    de = contrast(image, geo)
    if de is not None:
        s["contrast"] = de
        s["separation"] = separation(de)
    s.update(exposure_scores(image, layer, geo, forced))
    s.update(compliance_scores(image, layer, geo, placement))
    s["overall"] = overall(s)
    return {k: float(v) for k, v in s.items()}


def score_candidate(cand: Candidate, layer: Layer, placement=None) -> dict[str, float]:
    """Scores of one candidate (see the table above)."""
    return score_image(cand.image, layer, cand.scene, placement)
