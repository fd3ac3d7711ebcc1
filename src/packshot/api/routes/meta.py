"""Health, metrics, engines/models/presets with their capabilities, and the prompt helpers."""
from __future__ import annotations

import importlib.util
import time
from typing import Annotated

from fastapi import APIRouter, Query, Response

from ... import __version__
from ..deps import StateDep
from ..schemas import ERRORS, EngineInfo, EnginesPublic, Health, ModelInfo, ModelsPublic, PresetInfo, PromptExample, \
    PromptExamples, PromptFields, PromptPublic

router = APIRouter()
api = APIRouter(tags=["catalogue"], responses=ERRORS)

_EXTRA_MODULES = {"ai": ("torch", "diffusers", "transformers")}
# which model kinds make an engine usable
_ENGINE_KINDS = {"diffusion": ("sd15-inpaint", "sd2-inpaint", "sdxl-inpaint", "sd15", "sd2", "sdxl"),
                 "sam": ("sam",)}


@router.get("/health", response_model=Health, tags=["service"])
def health(state: StateDep) -> Health:
    """Liveness: no key needed."""
    return Health(status="ok", version=__version__, queue=state.queue.kind)


@router.get("/metrics", response_class=Response, tags=["service"],
            responses={200: {"content": {"text/plain": {}}}})
def metrics(state: StateDep) -> Response:
    """Prometheus text format."""
    from ..metrics import CONTENT_TYPE
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


def _engine_info(entry, present: set[str]) -> EngineInfo:
    reason = None
    missing = [m for m in _EXTRA_MODULES.get(entry.extra or "", ()) if importlib.util.find_spec(m) is None]
    if missing:
        reason = f"needs the '{entry.extra}' extra: pip install 'packshot[{entry.extra}]'"
    elif entry.name in _ENGINE_KINDS and not (present & set(_ENGINE_KINDS[entry.name])):
        reason = "no weights present on the server (see GET /api/v1/models; packshot models pull ID)"
    return EngineInfo(name=entry.name, description=entry.description, available=reason is None,
                      capabilities=dict(entry.capabilities), extra=entry.extra, reason=reason)


def _models(settings) -> list[ModelInfo]:
    from ...models import list_models

    out = []
    for st in list_models(settings):
        s = st.spec
        out.append(ModelInfo(id=s.id, kind=s.kind, licence=s.licence, commercial_ok=s.commercial_ok,
                             present=bool(st.present and not st.problem), size_gb=s.size_gb, repo_id=s.repo_id,
                             description=s.description))
    return out


@api.get("/engines", response_model=EnginesPublic)
def engines(state: StateDep) -> EnginesPublic:
    """Background and cutout engines (available here, and why not), and marketplace presets."""
    cached = state._engines_cache
    if cached is not None and time.monotonic() - cached[0] < 30:
        return cached[1]
    from ...backgrounds import ENGINES
    from ...layout import PRESETS
    from ...segment import SEGMENTERS

    present = {m.kind for m in _models(state.settings) if m.present}
    out = EnginesPublic(
        background=[_engine_info(ENGINES.entry(n), present) for n in ENGINES.names()],
        segment=[_engine_info(SEGMENTERS.entry(n), present) for n in SEGMENTERS.names()],
        presets=[PresetInfo(name=p.name, size=list(p.size), fill=p.fill, anchor=p.anchor,
                            background_rgb=list(p.background_rgb) if p.background_rgb else None,
                            shadow=p.shadow, rules=p.rules) for p in PRESETS.values()])
    state._engines_cache = (time.monotonic(), out)
    return out


@api.get("/models", response_model=ModelsPublic)
def models(state: StateDep) -> ModelsPublic:
    """Known weights: licence, whether commercial use is allowed, and whether they are present."""
    return ModelsPublic(items=_models(state.settings))


def _prompts():
    from ... import prompts  # part of the core package: a broken module raises (a bug, not a missing extra)
    return prompts


@api.get("/prompts/random", response_model=PromptPublic, tags=["prompts"])
def random_prompt(seed: Annotated[int | None, Query(ge=0, le=2**32 - 1)] = None) -> PromptPublic:
    """The dice: a random scene from the vocabulary (the same seed gives the same prompt)."""
    out = _prompts().random_prompt(seed)
    return PromptPublic(prompt=out["prompt"], fields=out.get("fields") or {})


@api.get("/prompts/examples", response_model=PromptExamples, tags=["prompts"])
def prompt_examples() -> PromptExamples:
    return PromptExamples(items=[PromptExample(title=e["title"], prompt=e["prompt"], engines=list(e.get("engines", [])),
                                               fields=dict(e.get("fields") or {})) for e in _prompts().examples()])


@api.post("/prompts/build", response_model=PromptPublic, tags=["prompts"])
def build_prompt(body: PromptFields) -> PromptPublic:
    """Join structured fields (surface, surroundings, background, lighting, mood) into one prompt."""
    fields = {k: v for k, v in body.model_dump().items() if v is not None}
    return PromptPublic(prompt=_prompts().build_prompt(fields), fields=fields)
