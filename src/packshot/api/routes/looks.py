"""Looks (saved scene recipes, per API key) and the prompt helpers that look at photos:
scene suggestions for a product photo and a reference scene in the five structured fields."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from ..deps import OwnerDep, StateDep
from ..schemas import ERRORS

router = APIRouter(responses=ERRORS)

LookName = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,79}$")]


class LookBody(BaseModel):
    """A look's content: GenerateRequest scene fields and the structured prompt fields."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"request": {"prompt": "on a light oak table, pale teal wall, window light from the left", "seed": 7,
                     "size": "1024x1024"}, "fields": {"surface": "on a light oak table"}}]})

    request: dict[str, Any] = Field(default_factory=dict, description="GenerateRequest fields of the scene "
                                    "(per-photo ones, such as segment, are refused).")
    fields: dict[str, str] = Field(default_factory=dict, description="surface, surroundings, background, "
                                   "lighting, mood.")


class LookPublic(BaseModel):
    name: str
    request: dict[str, Any]
    fields: dict[str, str]
    created_at: str


class LooksPublic(BaseModel):
    items: list[LookPublic]


class SceneFieldsPublic(BaseModel):
    surface: str
    surroundings: str
    background: str
    lighting: str
    mood: str
    prompt: str = Field(description="The one-line scene prompt (studio engine: every word used).")


class SuggestionPublic(SceneFieldsPublic):
    diffusion_prompt: str
    palette: str
    arrangement: str
    view: str
    why: list[str]
    request: dict[str, Any] = Field(description="GenerateRequest fields that go with it.")


class SuggestionsPublic(BaseModel):
    items: list[SuggestionPublic]


class DescriptionPublic(SceneFieldsPublic):
    source: dict[str, str]
    measured: dict[str, Any]
    caption: str | None = None


def _book(state, owner: str):
    from ...looks import DbLooks
    return DbLooks(state.store, owner)


def _public(look) -> LookPublic:
    return LookPublic(**look.model_dump(mode="json"))


@router.get("/looks", response_model=LooksPublic, tags=["looks"])
def list_looks(state: StateDep, owner: OwnerDep) -> LooksPublic:
    """This key's saved looks, by name."""
    return LooksPublic(items=[_public(lk) for lk in _book(state, owner).list()])


@router.get("/looks/{name}", response_model=LookPublic, tags=["looks"])
def get_look(name: LookName, state: StateDep, owner: OwnerDep) -> LookPublic:
    return _public(_book(state, owner).get(name))


@router.put("/looks/{name}", response_model=LookPublic, tags=["looks"])
def put_look(name: LookName, body: LookBody, state: StateDep, owner: OwnerDep) -> LookPublic:
    """Save (or replace) a look. Jobs apply it with ``"look": NAME``: the look's scene, under the
    fields the job body gives."""
    from ...looks import Look
    from ...schema import build

    look = build(Look, {"name": name, "request": body.request, "fields": body.fields})
    return _public(_book(state, owner).put(look))


@router.delete("/looks/{name}", status_code=204, response_class=Response, tags=["looks"])
def delete_look(name: LookName, state: StateDep, owner: OwnerDep) -> Response:
    _book(state, owner).delete(name)
    return Response(status_code=204)


@router.get("/photos/{photo_id}/suggestions", response_model=SuggestionsPublic, tags=["prompts"])
def photo_suggestions(photo_id: Annotated[str, Path(max_length=64)], state: StateDep, owner: OwnerDep,
                      n: Annotated[int, Query(ge=1, le=12)] = 6) -> SuggestionsPublic:
    """Scene prompts that suit the product in this photo (its committed cutout, else the automatic
    one): palette, shape, finish and view; a configured captioner adds its category."""
    import io

    import numpy as np
    from PIL import Image

    from ...prompts.measure import measure
    from ...prompts.suggest import suggest_from_traits
    from .products import cutout_image

    png = cutout_image(photo_id, state, owner).body  # 404 for another key's photo
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    traits = measure(np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].astype(np.float32) / 255.0)
    noun = None
    if state.settings.captioner:
        from ...captioner import caption_product, noun_of
        noun = noun_of(caption_product(rgba, state.settings.captioner, state.settings))
    items = suggest_from_traits(traits, n, noun)
    return SuggestionsPublic(items=[SuggestionPublic(**s.to_dict()) for s in items])


@router.post("/prompts/describe", response_model=DescriptionPublic, tags=["prompts"])
def describe_scene(state: StateDep, photo: UploadFile = File(..., description="A reference scene photo.")) \
        -> DescriptionPublic:
    """A reference scene photo in the five structured fields (its product is not described)."""
    from ...errors import ImageTooLargeError
    from ...prompts.describe import describe

    data = photo.file.read(state.settings.max_upload_bytes + 1)
    if len(data) > state.settings.max_upload_bytes:
        raise ImageTooLargeError(f"upload is over {state.settings.max_upload_bytes} bytes")
    d = describe(data, settings=state.settings)
    return DescriptionPublic(**d.to_dict())
