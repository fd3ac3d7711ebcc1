"""``POST /check``: one image against a marketplace's rules (:mod:`packshot.marketplace`)."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from ..deps import SettingsDep
from ..schemas import ERRORS

router = APIRouter(tags=["check"], responses=ERRORS)


@router.post("/check")
async def check(settings: SettingsDep,
                image: Annotated[UploadFile, File(description="The image file to check, as it would be uploaded.")],
                marketplace: Annotated[Literal["amazon", "walmart", "google", "ebay", "etsy", "shopify"],
                                       Form(description="Whose rules.")] = "amazon") -> dict:
    """Each rule of the marketplace, passed or failed, with the measured value (the file as sent:
    format, bytes, colour mode and profile, metadata, pixels)."""
    from ...marketplace import check_image

    data = await image.read()
    report = await run_in_threadpool(check_image, data, marketplace, max_pixels=settings.max_pixels)
    out = report.as_dict()
    out["source"] = image.filename or "upload"
    return out
