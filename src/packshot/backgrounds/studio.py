"""Studio engine: procedural scenes, no weights (placeholder: plain sweep)."""
from __future__ import annotations

import numpy as np

from ..types import ProgressFn, Scene, no_progress
from . import SceneJob


class StudioEngine:
    name = "studio"

    def __init__(self, settings=None):
        self.settings = settings

    def render(self, job: SceneJob, progress: ProgressFn = no_progress) -> list[Scene]:
        W, H = job.layer.size
        out = []
        for seed in job.seeds:
            rng = np.random.default_rng(seed)
            top = np.array([250, 250, 250], np.float32) - rng.uniform(0, 20)
            t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
            img = np.broadcast_to(top * (1 - 0.1 * t), (H, W, 3))
            out.append(Scene(rgb=np.clip(img, 0, 255).astype(np.uint8), seed=seed, engine=self.name))
        return out
