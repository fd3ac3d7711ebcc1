"""Composite stage (pure numpy): scene + placed product -> final image.

Public entry: :func:`compose`. The product's opaque pixels are pasted back exactly; soft edges are
blended over the new scene. (Shadows, reflections and light wrap: see the submodules.)
"""
from __future__ import annotations

import numpy as np

from ..types import Layer, Scene


def paste_exact(background: np.ndarray, layer: Layer) -> np.ndarray:
    """Alpha-blend the layer over ``background`` (HxWx3 uint8) and copy opaque pixels bit-exactly."""
    a = layer.alpha[..., None].astype(np.float32)
    out = layer.rgb.astype(np.float32) * a + background.astype(np.float32) * (1.0 - a)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    opaque = layer.alpha >= 1.0
    out[opaque] = layer.rgb[opaque]
    return out


def compose(scene: Scene, layer: Layer, *, shadow: bool = True) -> np.ndarray:
    """Final HxWx3 uint8 image for one candidate."""
    return paste_exact(scene.rgb, layer)
