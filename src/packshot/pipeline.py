"""The main job as numbered stages: load -> segment -> layout -> background -> composite -> score.

``Pipeline`` holds what is expensive to build (engines, loaded models) and is reused across calls,
requests and jobs; ``packshot.cutout`` / ``packshot.generate`` use one default Pipeline per
Settings. Each stage takes typed values and returns typed values (see ``packshot.types``).
"""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .backgrounds import ENGINES, BackgroundEngine, SceneJob
from .composite import compose
from .config import Settings
from .errors import InvalidInputError, NoProductFoundError
from .io import load_image
from .layout import get_preset, place, plan
from .schema import GenerateRequest, SegmentOptions, build
from .score import rank, score_candidate
from .segment import SEGMENTERS, Segmenter, resolve_engine
from .types import Candidate, Cutout, GenerateResult, Hints, Matte, Photo, ProgressFn, no_progress

ImageInput = str | Path | bytes | Photo | np.ndarray


def as_photo(image: ImageInput, settings: Settings) -> Photo:
    if isinstance(image, Photo):
        return image
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInputError(f"array image must be HxWx3 uint8 RGB, got {image.shape} {image.dtype}")
        return Photo(rgb=np.ascontiguousarray(image), source="<array>")
    return load_image(image, max_pixels=settings.max_pixels)


def hints_of(opts: SegmentOptions, photo: Photo) -> Hints:
    """Hints from the request, checked against the photo's size (errors name the bad value)."""
    w, h = photo.size
    for x, y in [*opts.points, *opts.neg_points]:
        if not (0 <= x < w and 0 <= y < h):
            raise InvalidInputError(f"point {x},{y} is outside the {w}x{h} photo")
    for b in opts.boxes:
        if b[0] < 0 or b[1] < 0 or b[2] > w or b[3] > h:
            raise InvalidInputError(f"box {','.join(map(str, b))} is outside the {w}x{h} photo")
    return Hints(points=tuple(map(tuple, opts.points)), neg_points=tuple(map(tuple, opts.neg_points)),
                 boxes=tuple(map(tuple, opts.boxes)), text=opts.text)


class Pipeline:
    """Reusable engines and models for one Settings. Thread-safe for concurrent calls."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self._lock = threading.Lock()
        self._segmenters: dict[str, Segmenter] = {}
        self._engines: dict[str, BackgroundEngine] = {}

    # -- registries -------------------------------------------------------------------------
    def segmenter(self, name: str, model: str | None = None) -> Segmenter:
        key = f"{name}:{model or ''}"
        with self._lock:
            if key not in self._segmenters:
                kwargs: dict[str, Any] = {"settings": self.settings}
                if model is not None:
                    kwargs["model"] = model
                self._segmenters[key] = SEGMENTERS.create(name, **kwargs)
            return self._segmenters[key]

    def engine(self, name: str) -> BackgroundEngine:
        with self._lock:
            if name not in self._engines:
                self._engines[name] = ENGINES.create(name, settings=self.settings)
            return self._engines[name]

    def resolve_segmenter(self, opts: SegmentOptions) -> tuple[str, str | None]:
        """(name, note) of the segmenter ``opts.engine`` stands for (see segment.resolve_engine)."""
        return resolve_engine(opts.engine, self.settings, opts.model)

    # -- stages -----------------------------------------------------------------------------
    def cutout(self, image: ImageInput, request: SegmentOptions | dict | None = None,
               progress: ProgressFn = no_progress) -> Cutout:
        """1. load, 2. segment. Returns the product cut out of the photo."""
        if isinstance(request, SegmentOptions):
            opts = request
        else:
            opts = build(SegmentOptions, request or {})
        t0 = time.perf_counter()
        photo = as_photo(image, self.settings)
        t_load = time.perf_counter() - t0
        hints = hints_of(opts, photo)
        progress("segment", 0.0, "cutting out the product")
        if photo.alpha is not None and not hints and opts.engine == "auto" and (photo.alpha < 0.02).any() \
                and (photo.alpha > 0.98).any():
            matte = Matte(alpha=photo.alpha, engine="alpha-channel",
                          notes=("the photo has its own transparency: used it as the matte",))
        else:
            name, note = self.resolve_segmenter(opts)
            t1 = time.perf_counter()
            matte = self.segmenter(name, opts.model).segment(photo, hints, progress)
            timings = {"load": t_load, "segment": time.perf_counter() - t1, **matte.timings}
            notes = matte.notes + ((note,) if note else ())
            matte = Matte(alpha=matte.alpha, engine=matte.engine, foreground=matte.foreground,
                          notes=notes, timings=timings)
        if matte.bbox(0.5) is None:
            raise NoProductFoundError(f"{photo.source}: the mask is empty (no product pixels)")
        progress("segment", 1.0, f"cut out with {matte.engine}")
        return Cutout(photo=photo, matte=matte)

    def generate(self, image: ImageInput | Cutout, request: GenerateRequest | dict | None = None,
                 progress: ProgressFn = no_progress, **fields: Any) -> GenerateResult:
        """Numbered stages, one typed result. ``fields`` override request fields (library sugar)."""
        # 1. check inputs (all validation up front, errors name the bad value)
        if request is None or isinstance(request, dict):
            request = build(GenerateRequest, {**(request or {}), **fields})
        elif fields:
            request = build(GenerateRequest, {**request.model_dump(), **fields})
        ENGINES.entry(request.engine)
        if request.preset:
            get_preset(request.preset)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()

        # 2. load + 3. segment
        cut = image if isinstance(image, Cutout) else self.cutout(image, request.segment, progress)
        timings["cutout"] = time.perf_counter() - t0

        # 4. layout: canvas, uniform scale, offset; then the product layer on the canvas
        t = time.perf_counter()
        placement = plan(cut, request, self.settings.max_output_side)
        layer = place(cut, placement)
        timings["layout"] = time.perf_counter() - t

        # 5. seeds: candidate i uses seed + i (recorded per candidate)
        base = request.seed if request.seed is not None else random.SystemRandom().randrange(2**32 - request.n)
        seeds = tuple((base + i) % 2**32 for i in range(request.n))

        # 6. background: one scene per seed
        t = time.perf_counter()
        engine = self.engine(request.engine)
        scenes = engine.render(SceneJob(request=request, layer=layer, seeds=seeds, photo=cut.photo),
                               progress)
        timings["background"] = time.perf_counter() - t

        # 7. composite: shadows, edge blend, exact paste-back
        t = time.perf_counter()
        preset = get_preset(request.preset) if request.preset else None
        shadow = request.shadow and (preset.shadow if preset else True)
        notes: list[str] = list(cut.matte.notes)
        if request.shadow and not shadow:
            notes.append(f"preset {preset.name}: no added shadow (its background must stay plain)")
        candidates = []
        for i, scene in enumerate(scenes):
            img = compose(scene, layer, shadow=shadow)
            params = self._parameters(request, scene, placement, cut)
            candidates.append(Candidate(image=img, seed=scene.seed, engine=scene.engine,
                                        prompt=request.prompt, parameters=params, scene=scene,
                                        timings=dict(scene.timings), notes=[*scene.notes]))
            progress("composite", (i + 1) / len(scenes), f"candidate {i + 1}/{len(scenes)}")
        timings["composite"] = time.perf_counter() - t

        # 8. score and rank (best first)
        t = time.perf_counter()
        for c in candidates:
            c.scores = score_candidate(c, layer, placement)
        candidates = rank(candidates)
        timings["score"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        return GenerateResult(candidates=candidates, cutout=cut, placement=placement, request=request,
                              timings=timings, notes=notes)

    def _parameters(self, request: GenerateRequest, scene, placement, cut: Cutout) -> dict[str, Any]:
        W, H = placement.canvas_size
        p: dict[str, Any] = {}
        if scene.generated:
            p["negative_prompt"] = request.negative_prompt
        p.update(scene.params)  # engine-specific: Steps, Sampler, CFG scale, Model...
        p.update({"Seed": scene.seed, "Size": f"{W}x{H}", "Engine": scene.engine,
                  "Preset": request.preset, "Placement": placement.anchor,
                  "Scale": round(placement.scale, 4), "Cutout": cut.matte.engine,
                  "Version": f"packshot {__version__}"})
        return p


_DEFAULT: dict[str, Pipeline] = {}
_DEFAULT_LOCK = threading.Lock()


def default_pipeline(settings: Settings | None = None) -> Pipeline:
    """One Pipeline per distinct Settings, built on first use (never at import)."""
    settings = settings or Settings.from_env()
    key = settings.model_dump_json()
    with _DEFAULT_LOCK:
        if key not in _DEFAULT:
            _DEFAULT[key] = Pipeline(settings)
        return _DEFAULT[key]


def cutout(image: ImageInput, *, engine: str = "auto", points=(), neg_points=(), boxes=(),
           text: str | None = None, model: str | None = None, settings: Settings | None = None,
           progress: ProgressFn = no_progress) -> Cutout:
    """Cut the product out of a photo. Returns a :class:`~packshot.types.Cutout`."""
    opts = build(SegmentOptions, {"engine": engine, "points": list(points), "neg_points": list(neg_points),
                                  "boxes": list(boxes), "text": text, "model": model})
    return default_pipeline(settings).cutout(image, opts, progress)


def generate(image: ImageInput | Cutout, prompt: str | None = None, *,
             request: GenerateRequest | dict | None = None, settings: Settings | None = None,
             progress: ProgressFn = no_progress, **fields: Any) -> GenerateResult:
    """Cut out, lay out, render scenes and composite. Fields as in :class:`GenerateRequest`."""
    if prompt is not None:
        fields["prompt"] = prompt
    return default_pipeline(settings).generate(image, request, progress, **fields)
