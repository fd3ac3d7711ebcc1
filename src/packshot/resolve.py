"""1. Check inputs: a request is checked and interpreted once, up front, before any heavy work.

``check_inputs(request, photo, settings) -> Resolved`` is run by the library (``Pipeline``), the
CLI (through the library), the API at submission (with only the photo's size known:
``check_inputs(request, photo_size=(w, h), settings=...)``) and the job runner. It raises the
project's one-line errors (``packshot.errors``) naming the bad value; it never decodes more than
the caller gives it and never loads a model. Later stages read the resolved values (preset,
forced background, shadow, segmenter, seeds, hints) and never re-derive the rules.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .config import Settings
from .errors import InvalidInputError
from .layout import Preset, canvas_for, get_preset
from .schema import GenerateRequest, SegmentOptions
from .types import Hints, Photo, Size


@dataclass(frozen=True)
class SegmentPlan:
    """The cut-out part of a request, resolved: hints checked against the photo, ``auto`` decided."""

    options: SegmentOptions
    hints: Hints
    segmenter: str                  # the engine that runs: never "auto"
    note: str | None = None         # said only when the choice is worth telling


@dataclass(frozen=True, eq=False)
class Resolved:
    """A checked request and everything decided from it, once.

    ``request`` is the effective request: ``seed`` filled in (drawn once when not given) and ``n``
    the number of candidates that will be made (1 for a fixed-scene preset unless ``n`` was asked
    for). ``background_rgb`` is the plain background a preset forces (amazon: 255,255,255; the
    prompt's scene is then not used), None otherwise; ``shadow`` whether shadows are added.
    ``engine_check`` is what the background engine's ``check()`` returned (None for engines with
    nothing to check). ``notes`` say what was decided that the user should know.
    """

    request: GenerateRequest
    segment: SegmentPlan
    engine: str
    seeds: tuple[int, ...]
    preset: Preset | None = None
    background_rgb: tuple[int, int, int] | None = None
    shadow: bool = True
    canvas_size: Size | None = None
    engine_check: Any = None
    notes: tuple[str, ...] = ()

    @property
    def hints(self) -> Hints:
        return self.segment.hints

    @property
    def segmenter(self) -> str:
        return self.segment.segmenter

    @property
    def plain_white(self) -> bool:
        return self.background_rgb == (255, 255, 255)


def check_hints(opts: SegmentOptions, photo_size: Size | None) -> Hints:
    """Hints from the request, checked against the photo's size when known (errors name the value)."""
    w, h = photo_size or (2**31, 2**31)
    for x, y in [*opts.points, *opts.neg_points]:
        if not (0 <= x < w and 0 <= y < h):
            raise InvalidInputError(f"point {x},{y} is outside the {w}x{h} photo")
    for b in opts.boxes:
        if b[0] < 0 or b[1] < 0 or b[2] > w or b[3] > h:
            raise InvalidInputError(f"box {','.join(map(str, b))} is outside the {w}x{h} photo")
    return Hints(points=tuple(map(tuple, opts.points)), neg_points=tuple(map(tuple, opts.neg_points)),
                 boxes=tuple(map(tuple, opts.boxes)), text=opts.text)


def check_segment(opts: SegmentOptions, photo_size: Size | None, settings: Settings) -> SegmentPlan:
    """The cut-out part alone (``packshot cutout``): hints and the segmenter, ``auto`` resolved."""
    from .segment import resolve_engine

    hints = check_hints(opts, photo_size)
    name, note = resolve_engine(opts.engine, settings, opts.model)
    return SegmentPlan(options=opts, hints=hints, segmenter=name, note=note)


def draw_seeds(seed: int | None, n: int) -> tuple[int, ...]:
    """Candidate i uses seed + i; with no seed, the first is drawn here (the only place)."""
    base = seed if seed is not None else random.SystemRandom().randrange(2**32 - n)
    return tuple((base + i) % 2**32 for i in range(n))


def _candidate_count(request: GenerateRequest, preset: Preset | None) -> tuple[int, str | None]:
    if preset is None or preset.background_rgb is None or "n" in request.model_fields_set:
        return request.n, None
    if request.n == 1:
        return 1, None
    return 1, (f"preset {preset.name}: one candidate (its plain background makes every seed the same "
               "image); give n to get more")


def check_inputs(request: GenerateRequest, photo: Photo | None = None, settings: Settings | None = None,
                 *, photo_size: Size | None = None, engine: Any = None) -> Resolved:
    """Check ``request`` against the photo (or just its size) and resolve it; see the module doc.

    ``engine`` is the background engine instance to ask (a Pipeline passes its cached one); by
    default one is created from the registry, which is cheap (engines load models lazily).
    """
    from .backgrounds import ENGINES, engine_check

    settings = settings or Settings()
    if request.look:  # a saved look not applied yet (library, CLI): from the settings' looks file
        from .looks import FileLooks, resolve_request
        request = resolve_request(request, FileLooks.for_settings(settings))
    size = photo.size if photo is not None else photo_size
    ENGINES.entry(request.engine)  # unknown engine: names the valid ones
    if request.adapters and not ENGINES.entry(request.engine).capabilities.get("generated"):
        raise InvalidInputError(f"adapter {request.adapters[0]!r}: trained adapters run on a generative engine "
                                f"(--engine diffusion), not on engine {request.engine!r}")
    preset = get_preset(request.preset) if request.preset else None
    segment = check_segment(request.segment, size, settings)
    canvas = canvas_for(request, size, settings.max_output_side) if size is not None else None
    n, count_note = _candidate_count(request, preset)
    seeds = draw_seeds(request.seed, n)
    effective = request.model_copy(update={"n": n, "seed": seeds[0]})
    shadow = request.shadow and (preset.shadow if preset else True)
    notes = [count_note] if count_note else []  # the segmenter's note travels with its matte
    if not shadow and request.shadow and "shadow" in request.model_fields_set:
        notes.append(f"preset {preset.name}: no added shadow (its background must stay plain)")
    checked = None
    if preset is None or preset.background_rgb is None:  # a forced plain background runs no engine
        if engine is None:
            engine = ENGINES.create(request.engine, settings=settings)
        checked = engine_check(engine, effective, settings)
    return Resolved(request=effective, segment=segment, engine=request.engine, seeds=seeds, preset=preset,
                    background_rgb=preset.background_rgb if preset else None, shadow=shadow,
                    canvas_size=canvas, engine_check=checked, notes=tuple(notes))
