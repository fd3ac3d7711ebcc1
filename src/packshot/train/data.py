"""Training data: photos -> packshot cut-outs -> square crops at the training size, with the
cut-out as a loss mask at latent resolution, captions and content hashes.

No torch here: crops and masks are numpy arrays; :mod:`packshot.train.model` encodes them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config import Settings
from ..errors import InvalidInputError, ModelError, NoProductFoundError
from ..types import Cutout, Photo

MIN_PHOTOS, MAX_PHOTOS = 3, 20
PRODUCT_FILL = 0.8          # the product's longer side fills 80 % of the square crop
REFERENCE_MAX = 512         # references/*.png are at most this many px on their longer side


@dataclass(frozen=True)
class Example:
    """One training photo, ready: ``image`` SxSx3 uint8, ``mask`` (S/scale)x(S/scale) float32."""

    name: str
    sha256: str
    image: np.ndarray
    mask: np.ndarray
    caption: str
    cutout: Cutout


@dataclass(frozen=True)
class TrainingSet:
    examples: tuple[Example, ...]
    product: str                      # the class word used in captions and prior images
    captioned: bool                   # a configured captioner added its caption

    @property
    def photos(self) -> list[dict[str, str]]:
        return [{"name": e.name, "sha256": e.sha256} for e in self.examples]


def check_count(photos: Sequence[Any]) -> None:
    n = len(photos)
    if not MIN_PHOTOS <= n <= MAX_PHOTOS:
        raise InvalidInputError(f"training takes {MIN_PHOTOS} to {MAX_PHOTOS} photos of one product, got {n}")


def _hash_and_name(src: Any, photo: Photo, index: int) -> tuple[str, str]:
    """(name, sha256 of the photo's content): of the file's bytes where there is a file or bytes,
    else of the decoded pixels."""
    if isinstance(src, (str, Path)):
        from ..models.adapters import sha256_file
        return Path(src).name, sha256_file(src)
    if isinstance(src, (bytes, bytearray)):
        return f"photo-{index + 1:02d}", hashlib.sha256(bytes(src)).hexdigest()
    name = Path(photo.source).name if photo.source and not photo.source.startswith("<") else f"photo-{index + 1:02d}"
    return name, hashlib.sha256(np.ascontiguousarray(photo.rgb).tobytes()).hexdigest()


def load_photos(photos: Sequence[Any], settings: Settings) -> list[tuple[str, str, Photo]]:
    """Decode every photo up front (a bad one fails the run before anything is written)."""
    from ..pipeline import as_photo

    check_count(photos)
    out = []
    for i, src in enumerate(photos):
        photo = as_photo(src, settings)
        name, digest = _hash_and_name(src, photo, i)
        out.append((name, digest, photo))
    return out


def cut_out(loaded: list[tuple[str, str, Photo]], cutouts: Sequence[Cutout] | None,
            settings: Settings) -> list[Cutout]:
    """packshot's own cut-outs (``auto`` engine), or the ones given (the API has them)."""
    if cutouts is not None:
        if len(cutouts) != len(loaded):
            raise InvalidInputError(f"{len(cutouts)} cut-outs given for {len(loaded)} photos")
        return list(cutouts)
    from ..pipeline import default_pipeline

    pipe = default_pipeline(settings)
    out = []
    for name, _digest, photo in loaded:
        try:
            out.append(pipe.cutout(photo))
        except NoProductFoundError as e:
            raise NoProductFoundError(f"training photo {name}: {e}") from None
    return out


def square_crop(cut: Cutout, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(SxSx3 image, SxS alpha) of a square around the product, the product filling PRODUCT_FILL.

    The margin shrinks (down to none) before the square leaves the photo; only a product longer
    than the photo's short side needs padding, which repeats the border pixels (alpha 0 there): the
    loss is masked to the product, so the padding only has to look unremarkable to the VAE.
    """
    import cv2

    x0, y0, x1, y1 = cut.bbox
    h, w = cut.alpha.shape
    long_side = max(x1 - x0, y1 - y0)
    # a smaller margin rather than invented pixels, as long as the product itself fits the photo
    side = max(long_side, min(long_side / PRODUCT_FILL, h, w))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    s = max(int(round(side)), 1)
    left = int(round(min(max(cx - s / 2, 0), w - s))) if s <= w else int(round(cx - s / 2))
    top = int(round(min(max(cy - s / 2, 0), h - s))) if s <= h else int(round(cy - s / 2))
    pad = [max(0, -top), max(0, top + s - h), max(0, -left), max(0, left + s - w)]
    rgb = cv2.copyMakeBorder(cut.photo.rgb, *pad, cv2.BORDER_REPLICATE)
    alpha = cv2.copyMakeBorder(cut.alpha.astype(np.float32), *pad, cv2.BORDER_CONSTANT, value=0.0)
    top, left = top + pad[0], left + pad[2]
    rgb, alpha = rgb[top:top + s, left:left + s], alpha[top:top + s, left:left + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    return (cv2.resize(rgb, (size, size), interpolation=interp),
            np.clip(cv2.resize(alpha, (size, size), interpolation=cv2.INTER_AREA), 0.0, 1.0))


def latent_mask(alpha: np.ndarray, scale: int) -> np.ndarray:
    """The cut-out at latent resolution (area average: a latent cell half on the product weighs 0.5)."""
    import cv2

    n = alpha.shape[0] // scale
    return cv2.resize(alpha, (n, n), interpolation=cv2.INTER_AREA).astype(np.float32)


def _captioner_text(cut: Cutout, settings: Settings) -> str | None:
    if not settings.captioner:
        return None
    from ..captioner import caption_product
    try:
        return caption_product(cut.rgba(), None, settings)
    except ModelError as e:
        raise ModelError(f"captioning the training photos: {e}") from None


def build_set(loaded: list[tuple[str, str, Photo]], cuts: list[Cutout], *, size: int, scale: int,
              token: str, product: str | None, template: str, settings: Settings) -> TrainingSet:
    """Crops, masks and captions; ``product`` None -> the configured captioner's noun, else 'product'."""
    from ..captioner import noun_of

    captions = [_captioner_text(c, settings) for c in cuts]
    if product is None:
        nouns = [noun_of(c) for c in captions if c]
        product = next((n for n in nouns if n), None) or "product"
    examples = []
    for (name, digest, _photo), cut, extra in zip(loaded, cuts, captions):
        image, alpha = square_crop(cut, size)
        try:
            caption = template.format(token=token, product=product)
        except (KeyError, IndexError, ValueError) as e:
            raise InvalidInputError(f"caption_template {template!r}: only {{token}} and {{product}} can be "
                                    f"filled in ({type(e).__name__}: {e})") from None
        if extra:
            caption = f"{caption}, {extra}"
        examples.append(Example(name, digest, image, latent_mask(alpha, scale), caption, cut))
    return TrainingSet(tuple(examples), product, any(captions))


def write_references(folder: Path, tset: TrainingSet) -> list[str]:
    """``references/NN-name.png``: RGBA cut-outs of the training photos, cropped to the product,
    at most REFERENCE_MAX px (the similarity score's reference at generation time)."""
    import cv2

    from ..io import save_image
    from ..models.adapters import REFERENCES_DIR

    ref_dir = folder / REFERENCES_DIR
    ref_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for i, ex in enumerate(tset.examples):
        x0, y0, x1, y1 = ex.cutout.bbox
        rgba = ex.cutout.rgba()[y0:y1, x0:x1]
        f = REFERENCE_MAX / max(rgba.shape[:2])
        if f < 1:
            rgba = cv2.resize(rgba, (max(1, round(rgba.shape[1] * f)), max(1, round(rgba.shape[0] * f))),
                              interpolation=cv2.INTER_AREA)
        name = f"{i + 1:02d}-{Path(ex.name).stem[:40] or 'photo'}.png"
        save_image(rgba, ref_dir / name, "png")
        names.append(f"{REFERENCES_DIR}/{name}")
    return names
