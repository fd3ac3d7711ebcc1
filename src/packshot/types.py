"""Typed values that flow load -> segment -> layout -> background -> composite -> score.

Image conventions, said once for the whole package:

* colour images are ``numpy.ndarray`` of shape ``H x W x 3``, dtype ``uint8``, **RGB** order, sRGB;
* alpha mattes are ``H x W`` ``float32`` in ``[0, 1]`` (1 = product);
* points are ``(x, y)`` in pixels of the photo they refer to; boxes are ``(x0, y0, x1, y1)``, XYXY,
  with ``x1``/``y1`` exclusive;
* sizes are ``(width, height)``.

OpenCV works in BGR: convert at the call site, never store BGR in these types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

Size = tuple[int, int]          # (width, height)
Point = tuple[int, int]         # (x, y)
Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), exclusive end

# progress(stage, fraction in [0, 1], message) — called by long stages; must be cheap.
ProgressFn = Callable[[str, float, str], None]


def no_progress(stage: str, fraction: float, message: str = "") -> None:  # pragma: no cover
    return None


@dataclass(frozen=True, eq=False)
class Photo:
    """A decoded photo: EXIF orientation applied, converted to 8-bit sRGB RGB.

    ``alpha`` is the photo's own transparency (an RGBA PNG cutout), else None. Where it is given,
    ``rgb`` holds the colour of the transparent pixels as stored (not flattened).
    """

    rgb: np.ndarray
    source: str = "<memory>"
    format: str | None = None
    alpha: np.ndarray | None = None

    @property
    def size(self) -> Size:
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@dataclass(frozen=True)
class Hints:
    """User hints for segmentation: clicks, boxes and a text prompt, in photo pixel coordinates."""

    points: tuple[Point, ...] = ()
    neg_points: tuple[Point, ...] = ()
    boxes: tuple[Box, ...] = ()
    text: str | None = None

    def __bool__(self) -> bool:
        return bool(self.points or self.neg_points or self.boxes or self.text)


@dataclass(frozen=True, eq=False)
class Matte:
    """What a segmenter returns: a soft alpha matte the size of the photo.

    ``foreground`` is the decontaminated product colour (HxWx3 uint8) where the segmenter estimated
    it (despill); None means "use the photo's own pixels". Fully opaque pixels are never changed.
    """

    alpha: np.ndarray
    engine: str
    foreground: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    # how much to trust this cut-out, in [0, 1], and why it is lower than 1 (segment/confidence.py);
    # None when the engine did not assess it
    confidence: float | None = None
    reasons: tuple[str, ...] = ()

    def bbox(self, threshold: float = 0.5) -> Box | None:
        ys, xs = np.nonzero(self.alpha >= threshold)
        if len(xs) == 0:
            return None
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@dataclass(frozen=True, eq=False)
class Cutout:
    """A photo with its matte: the product, ready to be placed."""

    photo: Photo
    matte: Matte

    @property
    def alpha(self) -> np.ndarray:
        return self.matte.alpha

    @property
    def foreground(self) -> np.ndarray:
        """Product colour: decontaminated where soft, the photo's exact pixels where opaque."""
        return self.photo.rgb if self.matte.foreground is None else self.matte.foreground

    @property
    def bbox(self) -> Box:
        box = self.matte.bbox(0.02)
        assert box is not None, "a Cutout always has a non-empty matte"
        return box

    def rgba(self) -> np.ndarray:
        """HxWx4 uint8: foreground colour with the matte as alpha."""
        a = np.round(self.alpha * 255).astype(np.uint8)
        return np.dstack([self.foreground, a])


@dataclass(frozen=True)
class Placement:
    """Where the product goes: output of the layout stage.

    The product's crop ``src_box`` (photo pixels) is scaled uniformly by ``scale`` and its top-left
    corner lands at ``offset`` on a canvas of ``canvas_size``. Uniform scale: never stretched.
    """

    canvas_size: Size
    src_box: Box
    scale: float
    offset: Point
    keep_framing: bool = False
    preset: str | None = None
    anchor: str = "center"            # "center" | "surface" | "keep" (keep-framing) | "edge" (cut by the frame)
    background_rgb: tuple[int, int, int] | None = None  # forced plain background (amazon white)
    floor_y: int | None = None        # canvas row where the product stands (its base), if known
    view: str = "front"               # camera view: "front" | "high" | "top" (flat lay)
    base_ratio: float = 0.0           # height/width of the product's base ellipse (0: seen level)
    edges: tuple[str, ...] = ()       # photo borders that cut the product ("bottom", "left", ...)
    notes: tuple[str, ...] = ()       # what the layout decided that the user should know

    @property
    def upscale(self) -> float:
        """How much the product is enlarged from the photo (1.0 when it is not)."""
        return max(1.0, float(self.scale))

    @property
    def product_box(self) -> Box:
        """The product's box on the canvas (XYXY, exclusive)."""
        w = max(1, round((self.src_box[2] - self.src_box[0]) * self.scale))  # as layout.plan: >= 1 px
        h = max(1, round((self.src_box[3] - self.src_box[1]) * self.scale))
        return self.offset[0], self.offset[1], self.offset[0] + w, self.offset[1] + h


@dataclass(frozen=True, eq=False)
class Layer:
    """The placed product on the canvas: colour and alpha the canvas's size.

    Opaque pixels (alpha 1) hold the photo's colour (bit-identical with keep-framing): the
    compositor never changes them.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    placement: Placement

    @property
    def size(self) -> Size:
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@dataclass(frozen=True, eq=False)
class Scene:
    """What a background engine returns for one candidate: the backdrop the canvas's size.

    ``rgb`` is HxWx3 uint8. ``light_dir`` is the unit (dx, dy) the light travels in image
    coordinates (a light from the upper left is (+0.7, +0.7)): cast shadows fall along it.
    ``needs_shadow`` asks the compositor to add contact/cast shadows (the studio engine renders
    none itself; a diffusion model may paint its own). ``raw_product`` is the model's own pixels
    under the product before paste-back (for fidelity scores), None when nothing was generated
    there. ``generated`` says the backdrop came from a trained generative model.
    ``product_generated`` says the model painted the product itself (a trained adapter in
    text2img/img2img): the compositor then pastes nothing back and the candidate is scored for
    similarity to the reference photos instead.
    """

    rgb: np.ndarray
    seed: int
    engine: str
    light_dir: tuple[float, float] = (0.35, 0.94)
    floor_y: int | None = None
    gloss: float = 0.0
    shadow_strength: float = 0.5
    needs_shadow: bool = True
    generated: bool = False
    raw_product: np.ndarray | None = None
    product_generated: bool = False
    notes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(eq=False)
class Candidate:
    """One finished image: the composite, how it was made and how it scored."""

    image: np.ndarray
    seed: int
    engine: str
    prompt: str
    parameters: dict[str, Any]
    scene: Scene
    scores: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    file: str | None = None  # set once saved
    dropped_reason: str | None = None  # why min_similarity / keep dropped it (GenerateResult.dropped)


@dataclass(eq=False)
class GenerateResult:
    """What ``packshot.generate`` returns: ranked candidates (best first), the cutout and layout."""

    candidates: list[Candidate]
    cutout: Cutout
    placement: Placement
    request: Any  # packshot.schema.GenerateRequest
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # candidates removed by min_similarity / keep, with their scores (never silently lost)
    dropped: list[Candidate] = field(default_factory=list)
