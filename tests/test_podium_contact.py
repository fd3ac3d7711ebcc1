"""The product stands on the podium's top (issue 17, the seller's loafers on a concrete podium):
its bottom contour lies inside the podium's top ellipse and the contact shadow darkens the podium
right under every foot, the far shoe's low, tapering toe included (it floated before: its solid
part was too low to count as a foot). Known geometry: ``synth.loafer_pair_alpha``, an RGBA photo,
so the pipeline uses its exact alpha as the matte, through the library's public ``generate``."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import packshot
from packshot.composite.shadows import bottom_edges
from packshot.layout import place
from synth import loafer_pair_alpha

PROMPT = "on a concrete podium, dramatic side light"


@pytest.fixture(scope="module")
def loafers(tmp_path_factory):
    alpha = loafer_pair_alpha()
    rgb = np.empty(alpha.shape + (3,), np.uint8)
    rgb[:] = (95, 45, 30)                      # brown leather
    rgb[alpha < 0.5] = 246
    path = tmp_path_factory.mktemp("podium") / "loafers.png"
    Image.fromarray(np.dstack([rgb, np.round(alpha * 255).astype(np.uint8)])).save(path)
    return path


def _feet(layer_alpha: np.ndarray, box) -> tuple[list[int], list[int], np.ndarray]:
    """Canvas columns of the near sole and of the far shoe's toe beyond the near shoe, and the
    per-column bottom edge (row-edge units)."""
    bottom = bottom_edges(layer_alpha)
    x0, _, x1, _ = box
    cols = [x for x in range(x0 + 3, x1 - 3) if np.isfinite(bottom[x])]
    base = max(bottom[x] for x in cols)
    near = [x for x in cols if bottom[x] > base - 2]
    sole_far = np.median([bottom[x] for x in cols if x > max(near)])  # the far toe's flat underside
    far = [x for x in cols if x > max(near) and abs(bottom[x] - sole_far) < 2]
    return near, far, bottom


@pytest.mark.parametrize("seed", [3, 8])
def test_podium_placement_product_on_the_top_with_contact_under_every_foot(loafers, seed):
    res = packshot.generate(str(loafers), PROMPT, n=1, seed=seed, size="1024x1024", view="high")
    cand = res.candidates[0]
    layer = place(res.cutout, res.placement)
    W, H = res.placement.canvas_size
    near, far, bottom = _feet(layer.alpha, res.placement.product_box)
    assert len(near) > 200 and len(far) > 60, (len(near), len(far))

    # 1. the product's bottom contour lies on the podium's top face (its ellipse, as drawn)
    kind, numbers = cand.parameters["Podium top"].split(" ")
    assert kind == "ellipse"
    cx, cy, rx, ry = (float(v) for v in numbers.split(","))
    cx, rx, cy, ry = cx * W, rx * W, cy * H, ry * H
    for x in near + far:
        r = ((x + 0.5 - cx) / rx) ** 2 + ((bottom[x] - cy) / ry) ** 2
        assert r < 1.0, (x, bottom[x], r)

    # 2. the contact shadow darkens the podium within 2 px under every foot (measured: 90..160 grey
    # levels; without a contact only the ambient occlusion and cast shadow reach there, about 10)
    dark = cand.scene.rgb.astype(np.float32).mean(2) - cand.image.astype(np.float32).mean(2)
    for which, cols in (("near", near), ("far", far)):
        for x in cols:
            y = int(np.floor(bottom[x]))
            below = [yy for yy in range(y, y + 3) if layer.alpha[yy, x] < 0.02]
            assert below, (which, x)
            assert max(dark[yy, x] for yy in below) > 40, (which, x, [dark[yy, x] for yy in below])
    solid = layer.alpha >= 1.0
    assert solid.any()
    assert np.array_equal(cand.image[solid], layer.rgb[solid])
