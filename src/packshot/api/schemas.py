"""API schemas: a family per entity (Create / Public / list), as in full-stack-fastapi-template.

The job body is :class:`packshot.schema.GenerateRequest` itself plus ``product_id``/``photo_id``
(:class:`JobCreate` subclasses it): one schema for library, CLI, API and job payloads, one place for
every default and bound.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..schema import GenerateRequest, _clean_text

API = "/api/v1"
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def photo_image_url(photo_id: str) -> str:
    return f"{API}/photos/{photo_id}/image"


def photo_cutout_url(photo_id: str) -> str:
    return f"{API}/photos/{photo_id}/cutout.png"


def result_image_url(result_id: str) -> str:
    return f"{API}/results/{result_id}/image"


class ErrorPublic(BaseModel):
    """Every 4xx/5xx answer: one line naming the problem (and the bad value)."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text} for code, text in (
        (400, "Bad input (an image that does not decode, an unknown engine...)"),
        (401, "Missing or wrong API key (when keys are configured)"),
        (404, "Unknown id, or another key's"),
        (413, "Upload over the size or pixel limit"),
        (422, "Invalid request field"),
        (429, "Rate limit exceeded (see Retry-After)"))}


# -- products ---------------------------------------------------------------------------------
class PhotoPublic(BaseModel):
    id: str
    width: int = Field(description="Pixels, after EXIF rotation: the space cutout hints refer to.")
    height: int
    media_type: str
    image_url: str
    cutout_url: str
    cutout_committed: bool = Field(description="A cutout was saved with PUT .../cutout.")
    cutout_engine: str | None = None
    cutout_bbox: list[int] | None = Field(None, description="Committed cutout's box x0,y0,x1,y1.")

    @classmethod
    def of(cls, p) -> "PhotoPublic":
        return cls(id=p.id, width=p.width, height=p.height, media_type=p.media_type,
                   image_url=photo_image_url(p.id), cutout_url=photo_cutout_url(p.id),
                   cutout_committed=p.cutout_sha is not None, cutout_engine=p.cutout_engine,
                   cutout_bbox=p.cutout_bbox)


class ProductPublic(BaseModel):
    id: str
    name: str
    created_at: datetime
    photos: list[PhotoPublic]
    cover_url: str | None = Field(description="The first photo's image.")
    result_count: int

    @classmethod
    def of(cls, p) -> "ProductPublic":
        from ..store.models import as_utc
        photos = [PhotoPublic.of(ph) for ph in p.photos]
        return cls(id=p.id, name=p.name, created_at=as_utc(p.created_at), photos=photos,
                   cover_url=photos[0].image_url if photos else None,
                   result_count=getattr(p, "result_count", 0))


class ProductsPublic(BaseModel):
    items: list[ProductPublic]
    count: int


# -- jobs -------------------------------------------------------------------------------------
class JobCreate(GenerateRequest):
    """A generation job: which product photo, plus every GenerateRequest field."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"product_id": "0f3c...", "prompt": "on a white marble table, soft morning light",
                      "n": 4, "engine": "studio", "size": "1024x1024", "seed": 7}]})

    product_id: str = Field(min_length=1, max_length=64, description="The product to generate for.")
    photo_id: str | None = Field(None, max_length=64, description="Which of its photos (default: the first).")
    background_id: str | None = Field(None, max_length=64, description="Your own background photo, uploaded "
                                      "with POST /api/v1/backgrounds: the product is placed on it.")

    def generate_request(self) -> GenerateRequest:
        # only the fields the client gave: check_inputs tells "n asked for" from the default
        return GenerateRequest.model_validate(self.model_dump(exclude={"product_id", "photo_id", "background_id"},
                                                              exclude_unset=True))


class JobPublic(BaseModel):
    id: str
    product_id: str
    photo_id: str
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    stage: str
    message: str
    error: str | None
    result_ids: list[str] = Field(description="Best first.")
    request: dict[str, Any] = Field(description="The GenerateRequest, with the seed that was used.")
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, j) -> "JobPublic":
        from ..store.models import as_utc
        return cls(id=j.id, product_id=j.product_id, photo_id=j.photo_id, status=j.status,
                   progress=min(1.0, max(0.0, j.progress)), stage=j.stage or "", message=j.message or "",
                   error=j.error, result_ids=list(getattr(j, "result_ids", [])), request=j.request,
                   attempts=j.attempts, created_at=as_utc(j.created_at), updated_at=as_utc(j.updated_at),
                   started_at=as_utc(j.started_at), finished_at=as_utc(j.finished_at))


class JobsPublic(BaseModel):
    items: list[JobPublic]
    count: int


# -- results ----------------------------------------------------------------------------------
class ResultPublic(BaseModel):
    id: str
    job_id: str
    product_id: str
    photo_id: str
    rank: int = Field(description="1 = best of its job.")
    seed: int
    engine: str
    prompt: str
    parameters: dict[str, Any]
    scores: dict[str, Any]
    rating: int | None = Field(None, ge=1, le=5)
    saved: bool
    created_at: datetime
    image_url: str
    width: int
    height: int
    output_format: str

    @classmethod
    def of(cls, r) -> "ResultPublic":
        from ..store.models import as_utc
        return cls(id=r.id, job_id=r.job_id, product_id=r.product_id, photo_id=r.photo_id, rank=r.rank,
                   seed=r.seed, engine=r.engine, prompt=r.prompt, parameters=r.parameters, scores=r.scores,
                   rating=r.rating, saved=r.saved, created_at=as_utc(r.created_at),
                   image_url=result_image_url(r.id), width=r.width, height=r.height,
                   output_format=r.output_format)


class ResultsPublic(BaseModel):
    items: list[ResultPublic]
    count: int


class RatingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stars: int = Field(ge=1, le=5, description="1..5")


class SavedUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    saved: bool


# -- cutouts ----------------------------------------------------------------------------------
Coord = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]
XY = Annotated[list[Coord], Field(min_length=2, max_length=2, description="[x, y]")]
XYXY = Annotated[list[Coord], Field(min_length=4, max_length=4, description="[x0, y0, x1, y1]")]


class CutoutHints(BaseModel):
    """Clicks and boxes in ORIGINAL photo pixels; the client sends the whole list every time."""

    model_config = ConfigDict(extra="forbid")

    points: list[XY] = Field(default_factory=list, max_length=200, description="Positive clicks [x, y].")
    neg_points: list[XY] = Field(default_factory=list, max_length=200, description="Negative clicks [x, y].")
    boxes: list[XYXY] = Field(default_factory=list, max_length=20, description="Boxes [x0, y0, x1, y1].")
    engine: Literal["auto", "classic", "learned", "sam"] = "auto"


class CutoutPublic(BaseModel):
    photo_id: str
    bbox: list[int] = Field(description="Product box x0,y0,x1,y1 (exclusive end), photo pixels.")
    engine: str
    cutout_url: str
    confidence: float | None = Field(None, description="How much to trust the cut-out, 0..1 (below 0.5: check it).")
    reasons: list[str] = Field(default_factory=list, description="Why the confidence is below 1.")


# -- prompts, engines, models, health ---------------------------------------------------------
class PromptFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    surface: str | None = Field(None, max_length=200)
    surroundings: str | None = Field(None, max_length=200)
    background: str | None = Field(None, max_length=200)
    lighting: str | None = Field(None, max_length=200)
    mood: str | None = Field(None, max_length=200)

    _text = field_validator("*")(_clean_text)  # no NUL, no lone surrogate (as in every request field)


class PromptPublic(BaseModel):
    prompt: str
    fields: dict[str, Any] = Field(default_factory=dict)


class PromptExample(BaseModel):
    title: str
    prompt: str
    engines: list[str] = Field(default_factory=list)
    fields: dict[str, Any] = Field(default_factory=dict, description="The structured fields it was built from.")


class PromptExamples(BaseModel):
    items: list[PromptExample]


class EngineInfo(BaseModel):
    name: str
    description: str
    available: bool
    capabilities: dict[str, Any]
    extra: str | None = None
    reason: str | None = Field(None, description="Why it is not available.")


class PresetInfo(BaseModel):
    name: str
    size: list[int]
    fill: float
    anchor: str
    background_rgb: list[int] | None
    shadow: bool
    rules: str


class EnginesPublic(BaseModel):
    background: list[EngineInfo]
    segment: list[EngineInfo]
    presets: list[PresetInfo]


class ModelInfo(BaseModel):
    id: str
    kind: str
    licence: str
    commercial_ok: bool
    present: bool
    size_gb: float
    repo_id: str
    description: str = ""


class ModelsPublic(BaseModel):
    items: list[ModelInfo]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    queue: str
