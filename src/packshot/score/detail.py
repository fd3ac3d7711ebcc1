"""The detail part of the similarity score: print, logos, text and texture.

Two checks, both on the rank-equalised grey of each product (any monotonic change of light -
gamma, exposure, contrast - gives the same image):

1. **Matches.** ORB keypoints inside the product, matched against the reference and against its
   mirror image (the product seen from its other side), Lowe's ratio test, RANSAC homography.
   ``global = min(1, inliers / (DETAIL_FULL * reference keypoints))``: a logo painted over loses
   its keypoints and their matches.
2. **Local agreement.** The candidate is warped onto the reference with that homography and the
   two are compared cell by cell (``CELL`` px) with SSIM (:func:`ssim_map`, averaged per cell
   where both products cover it). A few rewritten or misspelt words change
   too few keypoints to move the global count, but the cells that hold them stop agreeing:
   ``local`` maps the mean SSIM of the ``WORST_CELLS`` worst cells from ``SSIM_BAD``..``SSIM_GOOD``
   to 0..1.

``similarity_detail = global * local``. Where the reference has fewer than ``MIN_KEYPOINTS``
keypoints (a plain product) there is nothing to compare and the part is left out.

OpenCV does the work (ORB, matching, RANSAC, warping, the Gaussian windows of SSIM); the few
lines here combine them. Limit: one homography models a flat or gently curved face seen from another angle or
in-plane rotation; a product turned to show another face has nothing to align, so its detail part
is low even when the product is right (the embedding part, with an encoder configured, is what
stays high across such pose changes).
"""
from __future__ import annotations

from typing import Any

import numpy as np

MIN_KEYPOINTS = 40        # a reference with fewer ORB keypoints has too little detail to judge
DETAIL_FULL = 0.25        # inliers / reference keypoints at which the global check is 1
CELL = 32                 # px (at the working size) of the local-agreement grid
WORST_CELLS = 2           # the local check looks at this many worst cells
SSIM_BAD, SSIM_GOOD = 0.3, 0.9   # mean SSIM of the worst cells mapped to 0 .. 1


def rank_equalised_grey(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The grey image with the product's pixels replaced by their rank (histogram equalisation over
    the mask only; cv2.equalizeHist takes no mask). Outside the mask: mid grey."""
    import cv2

    g = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    hist = np.bincount(g[mask], minlength=256).astype(np.float64)
    cdf = np.cumsum(hist)
    lut = np.round(255.0 * (cdf - hist / 2) / max(cdf[-1], 1.0)).astype(np.uint8)
    out = lut[g]
    out[~mask] = 128
    return out


def orb_features(grey: np.ndarray, mask: np.ndarray) -> tuple[Any, Any]:
    """ORB keypoints and descriptors inside the product (mask eroded, so the outline's own corners
    do not count as print)."""
    import cv2

    inner = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8))
    orb = cv2.ORB_create(nfeatures=800, scaleFactor=1.2, nlevels=6, edgeThreshold=15, patchSize=15,
                         fastThreshold=10)
    kp, des = orb.detectAndCompute(grey, inner * 255)
    return tuple(kp), des


def match(a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[np.ndarray | None, int]:
    """(homography a -> b, inlier count) of two ORB feature sets; (None, 0) when they do not match."""
    import cv2

    (kpa, da), (kpb, db) = a, b
    if da is None or db is None or len(kpa) < 4 or len(kpb) < 4:
        return None, 0
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(da, db, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < 6:
        return None, 0
    src = np.float32([kpa[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
    dst = np.float32([kpb[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
    H, inl = cv2.findHomography(src, dst, cv2.RANSAC, 6.0)
    return (H, int(inl.sum())) if H is not None and inl is not None else (None, 0)


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004) of two uint8 greys, Gaussian window ``sigma``. Written here
    from OpenCV's own "Similarity check (PSNR and SSIM)" tutorial recipe: OpenCV's core has no SSIM
    function and scikit-image is not a packshot dependency."""
    import cv2

    x, y = a.astype(np.float32), b.astype(np.float32)
    blur = lambda im: cv2.GaussianBlur(im, (0, 0), sigma)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def local_agreement(cand, ref_grey: np.ndarray, ref_mask: np.ndarray, H: np.ndarray) -> float:
    """0..1: how well the worst cells of the candidate, warped onto the reference by ``H``, agree
    with it (SSIM per cell, see the module docstring)."""
    import cv2

    h, w = ref_mask.shape
    warped = cv2.warpPerspective(cand.grey, H, (w, h), flags=cv2.INTER_LINEAR, borderValue=128)
    covered = cv2.warpPerspective(cand.interior.astype(np.uint8), H, (w, h), flags=cv2.INTER_NEAREST) > 0
    # a light blur on both: resampling by the warp must not read as a change of print
    a, b = (cv2.GaussianBlur(g, (0, 0), 1.2) for g in (ref_grey, warped))
    ssim = ssim_map(a, b)
    both = ref_mask & covered
    cells = []
    for y in range(0, h - CELL // 2, CELL):
        for x in range(0, w - CELL // 2, CELL):
            m = both[y:y + CELL, x:x + CELL]
            if m.mean() > 0.6 and ref_mask[y:y + CELL, x:x + CELL].mean() > 0.6:
                cells.append(float(ssim[y:y + CELL, x:x + CELL][m].mean()))
    if not cells:
        return 0.0
    worst = float(np.mean(sorted(cells)[:WORST_CELLS]))
    return float(np.clip((worst - SSIM_BAD) / (SSIM_GOOD - SSIM_BAD), 0.0, 1.0))


def detail_similarity(cand, ref) -> float | None:
    """``global * local`` against the reference or its mirror image, whichever matches better; None
    when the reference has too little print or texture (see the module docstring)."""
    n_ref = len(ref.keypoints[0])
    if n_ref < MIN_KEYPOINTS:
        return None
    H, n = match(cand.keypoints, ref.keypoints)
    Hm, nm = match(cand.keypoints, ref.keypoints_mirrored)
    grey, mask = ref.grey, ref.interior
    if nm > n:
        H, n = Hm, nm
        grey, mask = np.ascontiguousarray(grey[:, ::-1]), np.ascontiguousarray(mask[:, ::-1])
    if H is None:
        return 0.0
    return float(min(1.0, n / (DETAIL_FULL * n_ref)) * local_agreement(cand, grey, mask, H))


MIN_LOCATE_INLIERS = 15   # matches needed to trust where a reference says the product is


def locate(refs, rgb: np.ndarray, margin: float = 0.1) -> tuple[int, int, int, int] | None:
    """Where the product is in a whole generated image: the box (x0, y0, x1, y1) of the reference
    silhouette that best matches it (ORB + RANSAC homography, mirrored references too), grown by
    ``margin``; None when no reference matches well enough. Used as a box hint for cutting the
    candidate out, so what touches the product in a busy scene stays out of its silhouette."""
    import cv2

    grey = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))
    feats = orb_features(grey, np.ones(grey.shape, bool))
    best: tuple[int, np.ndarray, np.ndarray] | None = None
    for ref in refs:
        for kps, mask in ((ref.keypoints, ref.mask), (ref.keypoints_mirrored, ref.mask[:, ::-1])):
            H, n = match(kps, feats)
            if H is not None and n >= MIN_LOCATE_INLIERS and (best is None or n > best[0]):
                best = (n, H, mask)
    if best is None:
        return None
    _, H, mask = best
    ys, xs = np.nonzero(mask)
    corners = np.float32([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.max(), ys.max()],
                          [xs.min(), ys.max()]]).reshape(-1, 1, 2)
    q = cv2.perspectiveTransform(corners, H).reshape(-1, 2)
    (x0, y0), (x1, y1) = q.min(axis=0), q.max(axis=0)
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    h, w = grey.shape
    box = (int(max(0, x0 - mx)), int(max(0, y0 - my)), int(min(w, x1 + mx)), int(min(h, y1 + my)))
    return box if box[2] - box[0] >= 16 and box[3] - box[1] >= 16 else None
