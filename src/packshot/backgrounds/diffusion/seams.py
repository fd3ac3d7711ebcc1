"""The repaint mask, the outpaint fill and the seam ring: what decides how the product's edge looks.

Why the mask reaches into the product: diffusers shrinks the mask to latent size by nearest
sampling (one pixel per 8x8 block) and an inpainting model reproduces the kept blocks. A keep
region of exactly ``alpha >= KEEP_ALPHA`` therefore keeps every block whose sampled pixel is
product, including the background half of blocks that straddle the edge: they show the init's
fill (grey) as a blocky fringe up to 8 working pixels wide, 2-3x that on a 2048 px canvas. So the
keep region is eroded by ``MASK_GROW`` working pixels and the repaint mask is max-pooled to latent
blocks: a block is kept only if all of its pixels are inside the eroded product. The compositor's
exact paste-back (alpha over the background) covers the band that was repainted inside the product.
"""
from __future__ import annotations

import cv2
import numpy as np

KEEP_ALPHA = 0.98   # product pixels at or above this alpha are the product; everything else is background
MASK_GROW = 3       # working px the repaint mask reaches into the product (before max-pooling to blocks)
FILLS = ("blur", "edge", "flat")


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def repaint_mask(alpha_w: np.ndarray, latent_scale: int, grow: int = MASK_GROW) -> np.ndarray:
    """HxW uint8 mask at working size, 255 = repaint: everything but the product eroded by ``grow``
    px, max-pooled to ``latent_scale`` blocks (the working size is a multiple of it)."""
    keep = (alpha_w >= KEEP_ALPHA).astype(np.uint8)
    if grow > 0:
        keep = cv2.erode(keep, _disk(grow))
    repaint = keep == 0
    s = int(latent_scale)
    h, w = repaint.shape
    if s > 1 and h % s == 0 and w % s == 0:
        blocks = repaint.reshape(h // s, s, w // s, s).any(axis=(1, 3))
        repaint = np.repeat(np.repeat(blocks, s, axis=0), s, axis=1)
    return np.where(repaint, 255, 0).astype(np.uint8)


def exact_mask(alpha_w: np.ndarray) -> np.ndarray:
    """The mask packshot used before: repaint exactly ``alpha < KEEP_ALPHA`` (kept for comparisons)."""
    return np.where(alpha_w >= KEEP_ALPHA, 0, 255).astype(np.uint8)


def latent_kept(mask: np.ndarray, latent_scale: int) -> np.ndarray:
    """Pixels the pipeline keeps after shrinking ``mask`` to latents the way diffusers does
    (``F.interpolate`` nearest: the top-left pixel of each block decides), at working size."""
    s = int(latent_scale)
    keep_blocks = mask[::s, ::s] < 128
    return np.repeat(np.repeat(keep_blocks, s, axis=0), s, axis=1)[:mask.shape[0], :mask.shape[1]]


def fringe_pixels(mask: np.ndarray, alpha_w: np.ndarray, latent_scale: int) -> int:
    """Working pixels that show background (alpha < KEEP_ALPHA) yet lie in a block the model keeps:
    the init's fill shows there, as a grey block fringe, after the paste-back."""
    return int((latent_kept(mask, latent_scale) & (alpha_w < KEEP_ALPHA)).sum())


# -- the outpaint fill (the init under the repaint area on a new canvas) -----------------------------

def blur_fill(rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Multi-scale blur (push-pull) fill: unknown pixels get the known colours averaged at ever
    coarser scales, so near the product they follow its edge colours and far away its mean.

    Hand-written (a dozen pyramid steps) because OpenCV's inpaint is a diffusion that takes seconds
    on a large unknown area; this is linear in the pixels."""
    w0 = known.astype(np.float32)
    pyr = [(rgb.astype(np.float32) * w0[..., None], w0)]
    while min(pyr[-1][1].shape) > 4:
        img, w = pyr[-1]
        pyr.append((cv2.pyrDown(img), cv2.pyrDown(w)))
    img, w = pyr[-1]
    mean = img.reshape(-1, 3).sum(0) / max(float(w.sum()), 1e-6)
    cur = np.broadcast_to(mean.astype(np.float32), img.shape).copy()
    for img, w in reversed(pyr):
        cur = cv2.resize(cur, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        wc = np.clip(w * 4.0, 0.0, 1.0)[..., None]   # 1/4 coverage at a level already trusts its colour
        colour = img / np.maximum(w, 1e-6)[..., None]
        cur = colour * wc + cur * (1.0 - wc)
    return np.where(known[..., None], rgb, np.clip(cur, 0, 255).round().astype(np.uint8))


def edge_fill(rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Edge-pad fill: every unknown pixel takes the colour of its nearest known pixel (OpenCV's
    distance transform with pixel labels)."""
    if not known.any():
        return rgb.copy()
    _d, labels = cv2.distanceTransformWithLabels((~known).astype(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(known)                       # labels number the known pixels in scan order
    table = np.zeros((labels.max() + 1, 3), np.uint8)
    table[labels[ys, xs]] = rgb[ys, xs]
    return np.where(known[..., None], rgb, table[labels])


def outpaint_init(layer_rgb: np.ndarray, alpha: np.ndarray, fill: str,
                  flat: tuple[float, float, float]) -> np.ndarray:
    """The product over a fill of the rest of the canvas (working size), HxWx3 uint8."""
    known = alpha >= KEEP_ALPHA
    if fill == "flat" or not known.any():
        back = np.empty_like(layer_rgb)
        back[:] = np.asarray(flat, np.float32).round().astype(np.uint8)
    elif fill == "edge":
        back = edge_fill(layer_rgb, known)
    else:
        back = blur_fill(layer_rgb, known)
    a = alpha[..., None].astype(np.float32)
    return np.clip(layer_rgb * a + back * (1 - a), 0, 255).round().astype(np.uint8)


def ring_mask(alpha: np.ndarray, width: int) -> np.ndarray:
    """A band of ``width`` px on both sides of the product's edge (float32 HxW, 1 in the band)."""
    m = (alpha >= 0.5).astype(np.uint8)
    k = _disk(width)
    ring = cv2.dilate(m, k) - cv2.erode(m, k)
    return ring.astype(np.float32)
