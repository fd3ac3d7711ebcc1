"""Composite stage: scene + placed product -> final image (numpy + OpenCV, no models).

Public entry: :func:`compose`. For one candidate it does, in this order:

1. **background**: the scene's ``rgb`` (HxWx3 uint8), or the preset's forced ``background_rgb``
   (amazon: pure white) filled exactly, whatever the engine drew;
2. **shadows** (:mod:`.shadows`, only with ``shadow=True`` and ``scene.needs_shadow``): a tight,
   dark contact shadow under the product's base (each foot its own) and a soft cast shadow, the
   silhouette projected onto the floor along ``scene.light_dir`` and blurred more the farther it
   falls; a flat lay (``placement.view == "top"``) gets a short soft shadow all around instead;
   a product cut by the photo's bottom edge (``"bottom" in placement.edges``) gets none;
3. **reflection** (:mod:`.reflection`, only when ``scene.gloss > 0`` and no forced background): a
   flipped, faded, slightly blurred copy of the product below its base line;
4. **edge blend + exact paste-back** (:mod:`.blend`): soft edge pixels (0 < alpha < 1) are
   blended over the scene with straight (un-premultiplied) colour, with a light wrap of the new
   scene's light in that band only; every pixel with ``alpha == 1.0`` is then copied bit-exactly
   from ``layer.rgb`` (keep-framing: identical to the photo); ``alpha == 0`` pixels are the
   background of steps 1-3, untouched.

A scene whose model painted the product itself (``scene.product_generated``: a trained adapter in
text2img / img2img) is returned as it is: no paste-back, no added shadow or reflection.

Speed: everything the silhouette alone decides (boxes, soft-pixel lists, the low-resolution
silhouette, the contact shadow, the reflection source, cast shadows per light direction) is
computed once per :class:`~packshot.types.Layer` by :func:`prepare` and cached (weakly, keyed by
the layer object), so the n candidates of one request share it. Work is confined to the product's
box and the shadow/reflection regions; large blurs run on a reduced grid. Layers are treated as
immutable: do not edit ``layer.alpha``/``layer.rgb`` in place after composing.
"""
from __future__ import annotations

import threading
import weakref

import cv2
import numpy as np

from ..errors import InvalidInputError
from ..types import Box, Layer, Scene

__all__ = ["Prepared", "compose", "paste_exact", "prepare", "OPAQUE", "CLEAR"]

OPAQUE = 1.0 - 0.5 / 255   # alpha at or above: opaque (an 8-bit matte's 255): copied exactly
CLEAR = 0.5 / 255          # alpha at or below: background (an 8-bit matte's 0): untouched


def _bbox(mask: np.ndarray) -> Box | None:
    """XYXY (exclusive) box of the non-zero pixels of a uint8/bool HxW mask, None when empty."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8) if mask.dtype == bool else mask)
    if w == 0 or h == 0:
        return None
    return x, y, x + w, y + h


class Prepared:
    """Silhouette-derived data of one layer, shared by every candidate composed on it.

    Attributes (canvas pixel coordinates, boxes XYXY exclusive):

    * ``size`` (W, H); ``box``: box of ``alpha > 0`` (None: empty layer);
    * ``solid``: box of ``alpha >= 0.5`` (the product proper); ``base_y = solid[3]`` is the row just
      under the product's base (its lowest opaque rows), ``height``/``width`` its size;
    * ``opaque``: HxW-of-``box`` bool mask of ``alpha >= OPAQUE`` (includes every ``alpha == 1``);
      ``opaque_u8``: same, 0/255;
    * ``soft_y``, ``soft_x`` (N,) int: pixels with ``CLEAR < alpha < OPAQUE``; ``soft_a`` (N,) float32,
      ``soft_fg`` (N, 3) float32: their alpha and straight colour (0..255).

    Shadow and reflection helpers keep their own lazily built entries in ``cache``.
    """

    def __init__(self, layer: Layer):
        alpha = layer.alpha
        if alpha.ndim != 2 or layer.rgb.shape != (*alpha.shape, 3):
            raise InvalidInputError(f"layer rgb {layer.rgb.shape} and alpha {alpha.shape} do not match "
                                    "(want HxWx3 and HxW)")
        H, W = alpha.shape
        self.size = (W, H)
        self.lock = threading.RLock()  # builders call cached() for their inputs
        self.cache: dict = {}
        self.box = _bbox((alpha > CLEAR).view(np.uint8))
        if self.box is None:
            self.solid = None
            return
        x0, y0, x1, y1 = self.box
        a = alpha[y0:y1, x0:x1]
        self.opaque = a >= OPAQUE
        self.opaque_u8 = self.opaque.view(np.uint8) * np.uint8(255)
        soft = (a > CLEAR) & ~self.opaque
        ys, xs = np.nonzero(soft)
        self.soft_y = ys + y0
        self.soft_x = xs + x0
        self.soft_a = a[ys, xs].astype(np.float32)
        self.soft_fg = layer.rgb[self.soft_y, self.soft_x].astype(np.float32)
        solid = _bbox((a >= 0.5).view(np.uint8))
        if solid is None:  # a faint layer: treat its whole box as the product
            solid = (0, 0, x1 - x0, y1 - y0)
        self.solid = (solid[0] + x0, solid[1] + y0, solid[2] + x0, solid[3] + y0)
        self.base_y = self.solid[3]
        self.width = self.solid[2] - self.solid[0]
        self.height = self.solid[3] - self.solid[1]

    @property
    def empty(self) -> bool:
        return self.box is None

    def cached(self, key, build):
        """``self.cache[key]``, built once by ``build()`` (thread-safe)."""
        with self.lock:
            if key not in self.cache:
                self.cache[key] = build()
            return self.cache[key]


_PREPARED: "weakref.WeakKeyDictionary[Layer, Prepared]" = weakref.WeakKeyDictionary()
_PREPARED_LOCK = threading.Lock()


def prepare(layer: Layer) -> Prepared:
    """The cached :class:`Prepared` of ``layer`` (built on first use; freed with the layer)."""
    with _PREPARED_LOCK:
        prep = _PREPARED.get(layer)
    if prep is None:
        prep = Prepared(layer)
        with _PREPARED_LOCK:
            prep = _PREPARED.setdefault(layer, prep)
    return prep


def paste_exact(background: np.ndarray, layer: Layer) -> np.ndarray:
    """Plain alpha-over of the layer on ``background`` (HxWx3 uint8), opaque pixels copied exactly.

    No shadow, no light wrap: the reference composite (and what engines use to paste the product
    back over their own output). Straight colour: ``out = fg * a + bg * (1 - a)``, rounded.
    """
    from .blend import blend_product

    _check(background, layer)
    out = np.array(background, dtype=np.uint8, order="C", copy=True)
    blend_product(out, layer, prepare(layer), wrap=0.0)
    return out


def _check(rgb: np.ndarray, layer: Layer) -> None:
    H, W = layer.alpha.shape
    if not isinstance(rgb, np.ndarray) or rgb.shape != (H, W, 3) or rgb.dtype != np.uint8:
        got = f"{getattr(rgb, 'shape', None)} {getattr(rgb, 'dtype', type(rgb).__name__)}"
        raise InvalidInputError(f"scene image is {got}, expected {H}x{W}x3 uint8 (the canvas size {W}x{H})")


def compose(scene: Scene, layer: Layer, *, shadow: bool = True) -> np.ndarray:
    """Final HxWx3 uint8 RGB image for one candidate (see the module docstring for the steps)."""
    from .blend import blend_product
    from .reflection import render_reflection
    from .shadows import render_shadows

    _check(scene.rgb, layer)
    if scene.product_generated:     # the model painted the product itself: nothing to paste or shade
        return np.array(scene.rgb, dtype=np.uint8, order="C", copy=True)
    prep = prepare(layer)
    forced = layer.placement.background_rgb
    if forced is not None:
        out = np.empty(scene.rgb.shape, np.uint8)
        out[...] = np.asarray(forced, np.uint8)
    else:
        out = np.array(scene.rgb, dtype=np.uint8, order="C", copy=True)
    if prep.empty:
        return out
    pl = layer.placement
    # a product cut by the photo's bottom edge runs off the canvas: nothing for it to stand on
    grounded = "bottom" not in pl.edges
    if shadow and scene.needs_shadow and scene.shadow_strength > 0 and grounded:
        render_shadows(out, prep, layer, scene.light_dir, scene.shadow_strength, scene.gloss, pl.view)
    if scene.gloss > 0 and forced is None and grounded and pl.view != "top":
        render_reflection(out, prep, layer, scene.gloss)
    blend_product(out, layer, prep)
    return out
