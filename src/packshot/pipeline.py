"""The main job as numbered stages: load -> segment -> layout -> background -> composite -> score
-> keep/drop (``min_similarity``, ``keep``).

``Pipeline`` holds what is expensive to build (engines, loaded models) and is reused across calls,
requests and jobs; ``packshot.cutout`` / ``packshot.generate`` use one default Pipeline per
Settings. Each stage takes typed values and returns typed values (see ``packshot.types``).
"""
from __future__ import annotations

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
from .layout import place, plan
from .models import new_model_cache
from .resolve import Resolved, SegmentPlan, check_inputs, check_segment
from .schema import GenerateRequest, SegmentOptions, build
from .score import overall, rank, score_candidate
from .score.encoders import image_encoder, resolve_encoder
from .score.filter import keep_filter
from .score.references import candidate_view, hashes_text, reference_views
from .score.similarity import ReferenceSet
from .segment import SEGMENTERS, Segmenter, resolve_engine
from .score.ranking import with_cutout_confidence
from .segment.confidence import low_confidence_note, with_confidence
from .types import Candidate, Cutout, GenerateResult, Matte, Photo, ProgressFn, Size, no_progress

ImageInput = str | Path | bytes | Photo | np.ndarray


def as_photo(image: ImageInput, settings: Settings) -> Photo:
    if isinstance(image, Photo):
        return image
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInputError(f"array image must be HxWx3 uint8 RGB, got {image.shape} {image.dtype}")
        return Photo(rgb=np.ascontiguousarray(image), source="<array>")
    return load_image(image, max_pixels=settings.max_pixels)


class Pipeline:
    """Reusable engines and models for one Settings. Thread-safe for concurrent calls."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        # this Pipeline's loaded models (LRU, keys include device and dtype), handed to every
        # engine and segmenter it builds: two Pipelines never share a model
        self.models = new_model_cache(self.settings)
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
                self._segmenters[key] = SEGMENTERS.create_offering(name, {"models": self.models}, **kwargs)
            return self._segmenters[key]

    def engine(self, name: str) -> BackgroundEngine:
        with self._lock:
            if name not in self._engines:
                self._engines[name] = ENGINES.create_offering(name, {"models": self.models},
                                                              settings=self.settings)
            return self._engines[name]

    def resolve_segmenter(self, opts: SegmentOptions) -> tuple[str, str | None]:
        """(name, note) of the segmenter ``opts.engine`` stands for (see segment.resolve_engine)."""
        return resolve_engine(opts.engine, self.settings, opts.model)

    def check(self, request: GenerateRequest, photo: Photo | None = None, *,
              photo_size: Size | None = None) -> Resolved:
        """1. check inputs: ``resolve.check_inputs`` with this Pipeline's settings and engines."""
        ENGINES.entry(request.engine)  # names the valid engines before one is built
        if request.adapters or request.min_similarity is not None:
            resolve_encoder(self.settings)  # a configured similarity model exists and is an encoder
        return check_inputs(request, photo, self.settings, photo_size=photo_size,
                            engine=self.engine(request.engine))

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
        return self._segment(photo, check_segment(opts, photo.size, self.settings), progress, t_load)

    def _segment(self, photo: Photo, seg: SegmentPlan, progress: ProgressFn, t_load: float = 0.0) -> Cutout:
        progress("segment", 0.0, "cutting out the product")
        if photo.alpha is not None and not seg.hints and seg.options.engine == "auto" \
                and (photo.alpha < 0.02).any() and (photo.alpha > 0.98).any():
            matte = Matte(alpha=photo.alpha, engine="alpha-channel",
                          notes=("the photo has its own transparency: used it as the matte",))
        else:
            t1 = time.perf_counter()
            matte = self.segmenter(seg.segmenter, seg.options.model).segment(photo, seg.hints, progress)
            timings = {"load": t_load, "segment": time.perf_counter() - t1, **matte.timings}
            notes = matte.notes + ((seg.note,) if seg.note else ())
            matte = Matte(alpha=matte.alpha, engine=matte.engine, foreground=matte.foreground,
                          notes=notes, timings=timings, confidence=matte.confidence, reasons=matte.reasons)
        if matte.bbox(0.5) is None:
            raise NoProductFoundError(f"{photo.source}: the mask is empty (no product pixels)")
        matte = with_confidence(matte, boxed=bool(seg.hints.boxes))
        progress("segment", 1.0, f"cut out with {matte.engine}")
        return Cutout(photo=photo, matte=matte)

    def generate(self, image: ImageInput | Cutout,
                 request: GenerateRequest | Resolved | dict | None = None,
                 progress: ProgressFn = no_progress, **fields: Any) -> GenerateResult:
        """Numbered stages, one typed result. ``fields`` override request fields (library sugar);
        a :class:`~packshot.resolve.Resolved` request was checked already and is not checked again."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        resolved = request if isinstance(request, Resolved) and not fields else None
        if isinstance(request, Resolved) and fields:
            request = request.request
        # 2. load (decode only; the photo's size is needed to check the hints)
        photo = image.photo if isinstance(image, Cutout) else as_photo(image, self.settings)
        t_load = time.perf_counter() - t0
        # 1. check inputs: all validation and every rule decided once, before any heavy work
        if resolved is None:
            resolved = self.check(_request_of(request, fields), photo)
        request = resolved.request

        # 3. segment
        cut = image if isinstance(image, Cutout) else self._segment(photo, resolved.segment, progress, t_load)
        timings["cutout"] = time.perf_counter() - t0

        # 4. layout: canvas, uniform scale, offset; then the product layer on the canvas
        t = time.perf_counter()
        placement = plan(cut, request, self.settings.max_output_side)
        layer = place(cut, placement)
        timings["layout"] = time.perf_counter() - t

        # 5. background: one scene per seed (candidate i uses seed + i, drawn once by check_inputs)
        t = time.perf_counter()
        engine = self.engine(resolved.engine)
        scenes = engine.render(SceneJob(request=request, layer=layer, seeds=resolved.seeds, photo=cut.photo,
                                        resolved=resolved), progress)
        timings["background"] = time.perf_counter() - t

        # 6. composite: shadows, edge blend, exact paste-back
        t = time.perf_counter()
        notes: list[str] = [*cut.matte.notes, *resolved.notes]
        notes.extend(placement.notes)  # layout: view chosen, frame edges, upscaling
        candidates = []
        for i, scene in enumerate(scenes):
            img = compose(scene, layer, shadow=resolved.shadow)
            params = self._parameters(request, scene, placement, cut)
            candidates.append(Candidate(image=img, seed=scene.seed, engine=scene.engine,
                                        prompt=request.prompt, parameters=params, scene=scene,
                                        timings=dict(scene.timings), notes=[*scene.notes]))
            progress("composite", (i + 1) / len(scenes), f"candidate {i + 1}/{len(scenes)}")
        timings["composite"] = time.perf_counter() - t

        # 7. score (a generated product also for its similarity to the reference photos) and rank
        t = time.perf_counter()
        low = low_confidence_note(cut.matte)
        similar = self._similarity(candidates, cut, request, notes, progress)
        for c in candidates:
            scores = score_candidate(c, layer, placement)
            if c in similar:
                scores.update(similar[c])
                scores["overall"] = overall(scores)
            c.scores = with_cutout_confidence(scores, cut.matte.confidence)
            if low:
                c.notes.append(low)
        candidates = rank(candidates)
        timings["score"] = time.perf_counter() - t

        # 8. keep / drop: min_similarity, then the best ``keep``; dropped ones are listed, not lost
        kept = keep_filter(candidates, request.min_similarity, request.keep)
        notes.extend(kept.notes)
        timings["total"] = time.perf_counter() - t0
        return GenerateResult(candidates=kept.kept, cutout=cut, placement=placement, request=request,
                              timings=timings, notes=notes, dropped=kept.dropped)

    def _similarity(self, candidates: list[Candidate], cut: Cutout, request: GenerateRequest,
                    notes: list[str], progress: ProgressFn) -> dict[Candidate, dict[str, float]]:
        """Similarity scores of the candidates whose product the model painted itself: each is cut
        out with the default segmenter (``auto``, :func:`.score.references.candidate_view`) and
        compared with the reference cut-outs (the photo's
        and the adapters'), prepared once here. Records the references' hashes and the
        score in the candidate's parameters."""
        generated = [c for c in candidates if c.scene.product_generated]
        if not generated:
            return {}
        refs = ReferenceSet(reference_views(cut, list(request.adapters), self.settings),
                            image_encoder(self.settings, self.models))
        name, _ = self.resolve_segmenter(SegmentOptions())  # the default cut-out engine ("auto")
        segmenter = self.segmenter(name)
        out: dict[Candidate, dict[str, float]] = {}
        for i, c in enumerate(generated):
            progress("score", i / len(generated), f"similarity of candidate {i + 1}/{len(generated)}")
            view = candidate_view(segmenter, refs.references, c.image, f"seed {c.seed}")
            best = None
            if view is None:
                out[c] = {"similarity": 0.0}
                c.notes.append(f"seed {c.seed}: no product found in the generated image (similarity 0)")
            else:
                res = refs.score(view)
                out[c], best = res.scores(), res.reference.name
                notes.extend(n for n in res.notes if n not in notes)
            c.parameters.update({"Similarity": round(out[c]["similarity"], 4), "Best reference": best,
                                 "Reference hashes": hashes_text(refs.references)})
        return out

    def _parameters(self, request: GenerateRequest, scene, placement, cut: Cutout) -> dict[str, Any]:
        W, H = placement.canvas_size
        p: dict[str, Any] = {}
        if scene.generated:
            p["negative_prompt"] = request.negative_prompt
        p.update(scene.params)  # engine-specific: Steps, Sampler, CFG scale, Model...
        p.update({"Seed": scene.seed, "Size": f"{W}x{H}", "Engine": scene.engine,
                  "Preset": request.preset, "Placement": placement.anchor,
                  "Scale": round(placement.scale, 4), "View": placement.view,
                  "Upscale": round(placement.upscale, 3), "Cutout": cut.matte.engine,
                  "Version": f"packshot {__version__}"})
        return p


def _request_of(request: GenerateRequest | dict | None, fields: dict[str, Any]) -> GenerateRequest:
    """The request a library call asks for: a GenerateRequest, a dict, and/or field overrides."""
    if request is None or isinstance(request, dict):
        return build(GenerateRequest, {**(request or {}), **fields})
    if fields:
        return build(GenerateRequest, {**request.model_dump(exclude_unset=True), **fields})
    return request


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
