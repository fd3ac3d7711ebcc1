"""A test-only background engine whose "generated" candidates are planted images.

``planted`` returns, for candidate i, the i-th PNG of the folder named by ``PACKSHOT_TEST_PLANTED``
(sorted by name), fitted into the canvas on its own border colour, as a Scene with
``product_generated=True``: exactly what a text2img/img2img engine with a trained adapter hands the
pipeline (the product painted by the model, nothing pasted back). It lets the similarity score and
the keep/drop filter be tested on known good and bad products through the real public paths.

It is registered in the ENGINES registry by :func:`register`; ``python tests/planted_cli.py ARGS``
registers it and runs packshot's real CLI ``main`` in a separate process.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from packshot.backgrounds import ENGINES
from packshot.io import load_image
from packshot.types import Scene, no_progress

ENV = "PACKSHOT_TEST_PLANTED"


def fit(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` scaled to fit ``size`` (W, H), centred, the rest filled with its corner colour."""
    W, H = size
    s = min(W / rgb.shape[1], H / rgb.shape[0])
    w, h = max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    out = np.empty((H, W, 3), np.uint8)
    out[:] = rgb[0, 0]
    y, x = (H - h) // 2, (W - w) // 2
    out[y:y + h, x:x + w] = small
    return out


class PlantedEngine:
    name = "planted"

    def __init__(self, settings=None, folder: str | None = None):
        self.folder = Path(folder or os.environ[ENV])

    def render(self, job, progress=no_progress) -> list[Scene]:
        files = sorted(self.folder.glob("*.png"))
        if not files:
            raise RuntimeError(f"no planted images in {self.folder}")
        scenes = []
        for i, seed in enumerate(job.seeds):
            f = files[i % len(files)]
            rgb = fit(load_image(f).rgb, job.layer.size)
            scenes.append(Scene(rgb=rgb, seed=seed, engine=self.name, needs_shadow=False, generated=True,
                                product_generated=True, params={"Planted": f.name}))
        return scenes


def register() -> None:
    ENGINES.register("planted", PlantedEngine, "test only: planted generated products", generated=True)
