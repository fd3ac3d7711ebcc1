"""Classic segmenter (placeholder: backdrop distance threshold)."""
from __future__ import annotations

import numpy as np

from ..errors import NoProductFoundError
from ..types import Hints, Matte, Photo, ProgressFn, no_progress


class ClassicSegmenter:
    name = "classic"

    def __init__(self, settings=None):
        self.settings = settings

    def segment(self, photo: Photo, hints: Hints = Hints(), progress: ProgressFn = no_progress) -> Matte:
        rgb = photo.rgb.astype(np.float32)
        border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        bg = np.median(border, axis=0)
        d = np.linalg.norm(rgb - bg, axis=2)
        alpha = np.clip((d - 20) / 20, 0, 1).astype(np.float32)
        if (alpha > 0.5).sum() < 0.001 * alpha.size:
            raise NoProductFoundError(f"{photo.source}: no product found against the backdrop")
        return Matte(alpha=alpha, engine=self.name)
