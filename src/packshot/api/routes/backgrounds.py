"""The seller's own background photos: upload once, then name one in a job (``background_id``).

A job cannot name a file on the server (``background`` is refused over the API): the photo is
uploaded here, decoded and checked exactly as product photos are (size limit, pixel limit, the
server's decode budget, a working copy for formats a browser cannot show), and kept in the blob
store under the caller's key (another key's id is 404).
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...errors import ImageTooLargeError
from ...store.backgrounds import add_background, delete_background, get_background
from ...store.models import as_utc
from ..deps import OwnerDep, StateDep
from ..schemas import ERRORS
from .products import _decode

router = APIRouter(tags=["backgrounds"], responses=ERRORS)


class BackgroundPublic(BaseModel):
    id: str
    width: int
    height: int
    media_type: str
    created_at: datetime

    @classmethod
    def of(cls, row) -> "BackgroundPublic":
        return cls(id=row.id, width=row.width, height=row.height, media_type=row.media_type,
                   created_at=as_utc(row.created_at))


@router.post("/backgrounds", status_code=201, response_model=BackgroundPublic)
async def create_background(
        state: StateDep, owner: OwnerDep,
        photo: Annotated[UploadFile, File(description="The background photo (JPEG, PNG, WebP, TIFF, BMP).")],
) -> BackgroundPublic:
    """Upload a background photo; jobs place the product on it with ``background_id``."""
    limit = state.settings.max_upload_bytes
    data = await photo.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLargeError(f"background photo is over the upload limit of {limit} bytes")
    up = await run_in_threadpool(_decode, data, state.settings.max_pixels, 1, state.decode_budget,
                                 "background photo")
    row = await run_in_threadpool(add_background, state.store, owner, up)
    return BackgroundPublic.of(row)


@router.get("/backgrounds/{background_id}", response_model=BackgroundPublic)
def read_background(background_id: str, state: StateDep, owner: OwnerDep) -> BackgroundPublic:
    return BackgroundPublic.of(get_background(state.store, owner, background_id))


@router.delete("/backgrounds/{background_id}", status_code=204, response_class=Response)
def remove_background(background_id: str, state: StateDep, owner: OwnerDep) -> Response:
    """Delete it (jobs already queued with it fail with one line naming it)."""
    delete_background(state.store, owner, background_id)
    return Response(status_code=204)
