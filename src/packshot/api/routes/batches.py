"""Catalog runs over HTTP: ``POST /batches`` (a CSV or a list of product ids + a prompt or look),
status, progress over SSE, cancel, the report and one zip of everything.

A batch is a group of ordinary generation jobs (the queue, workers, per-key isolation and cancel
of :mod:`.jobs`): per product one **main** job (the marketplace's preset, n=1) and one **lifestyle**
job (the prompt or look, n = ``lifestyle``). A row that cannot be submitted (unknown product or
preset, a look that does not exist) fails alone with its one-line reason, as in ``packshot batch``.
The batch's status is read from its jobs; the report and zip are built from their results, with
the main image checked against the marketplace's rules (:mod:`packshot.marketplace`).
"""
from __future__ import annotations

import asyncio
import io
import json
import zipfile
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInputError, NotFoundError, PackshotError
from ..deps import OwnerDep, StateDep
from ..schemas import ERRORS

router = APIRouter(tags=["batches"], responses=ERRORS)


class NotFinished(PackshotError):
    http_status = 409

MARKETPLACE = Literal["amazon", "walmart", "google", "ebay", "etsy", "shopify"]
MAX_ROWS = 500


class BatchCreate(BaseModel):
    """A catalog run. JSON: this object. Multipart: a ``csv`` file (columns ``sku, product[, prompt,
    look, preset]``; ``product`` = a product id or its exact name) and these fields as form fields."""

    model_config = ConfigDict(extra="forbid")

    product_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=MAX_ROWS, description="Products to run (JSON form).")
    prompt: str | None = Field(None, max_length=1000, description="Lifestyle scene for rows without their own.")
    look: str | None = Field(None, max_length=80, description="A saved look for the lifestyle images.")
    marketplace: MARKETPLACE = Field("amazon", description="Main image preset and the rules it is checked by.")
    lifestyle: int = Field(2, ge=0, le=8, description="Lifestyle images per product.")
    size: str = Field("1024x1024", description="Lifestyle canvas WIDTHxHEIGHT.")
    seed: int = Field(1, ge=0, le=2**32 - 1)


def _rows_from_csv(text: str, state, owner: str) -> list[dict]:
    import csv

    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "sku" not in header or "product" not in header:
        raise InvalidInputError(f"the CSV needs the columns sku and product (found {', '.join(header) or 'no header'})")
    unknown = [h for h in header if h not in ("sku", "product", "prompt", "look", "preset")]
    if unknown:
        raise InvalidInputError(f"unknown CSV column(s) {', '.join(unknown)}; valid: sku, product, prompt, look, preset")
    names = None
    rows = []
    for raw in reader:
        rec = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        if not any(rec.values()):
            continue
        ref = rec.get("product", "")
        if names is None:
            items, _ = state.store.list_products(owner, limit=1000)
            names = {p.name: p.id for p in items}
        rows.append({"sku": rec.get("sku") or ref, "product_id": names.get(ref, ref),
                     "prompt": rec.get("prompt") or None, "look": rec.get("look") or None,
                     "preset": rec.get("preset") or None, "line": reader.line_num})
        if len(rows) > MAX_ROWS:
            raise InvalidInputError(f"the CSV has more than {MAX_ROWS} rows")
    if not rows:
        raise InvalidInputError("the CSV has no rows")
    return rows


def _submit_row(state, owner: str, spec: BatchCreate, row: dict) -> dict:
    from ...batch.runner import MAIN_PRESET
    from ..schemas import JobCreate
    from .jobs import _submit

    item = {"sku": row["sku"], "product_id": row["product_id"], "main_job": None, "lifestyle_job": None,
            "error": None}
    try:
        main = {"product_id": row["product_id"], "preset": row.get("preset") or MAIN_PRESET[spec.marketplace],
                "n": 1, "seed": spec.seed}
        life = {"product_id": row["product_id"], "n": max(1, spec.lifestyle), "seed": spec.seed}
        look, prompt = row.get("look") or spec.look, row.get("prompt") or spec.prompt
        if look:
            life["look"] = look
        else:
            life.update(size=spec.size, prompt=prompt or "on a light oak table, soft window light")
        jobs = [JobCreate.model_validate(main)] + ([JobCreate.model_validate(life)] if spec.lifestyle else [])
        item["name"] = state.store.get_product(owner, row["product_id"]).name
        item["main_job"] = _submit(state, owner, jobs[0]).id
        if len(jobs) > 1:
            try:
                item["lifestyle_job"] = _submit(state, owner, jobs[1]).id
            except PackshotError:
                state.store.cancel_job(owner, item["main_job"])  # the row fails whole: its main job too
                raise
    except PackshotError as e:
        item["error"] = e.message
    except ValueError as e:  # pydantic: a bad field value in the row
        from ..errors import validation_detail
        item["error"] = validation_detail(e.errors()) if hasattr(e, "errors") else str(e)
    return item


def _create(state, owner: str, spec: BatchCreate, rows: list[dict]) -> dict:
    from ...schema import parse_size
    from ...store.models import BatchRow, new_id

    parse_size(spec.size)
    if not rows:
        raise InvalidInputError("give product_ids (JSON) or a csv file (multipart)")
    from ...batch.inputs import SKU_RE

    seen: set[str] = set()
    items = []
    for row in rows:
        bad = (f"sku {row['sku']!r} appears twice" if row["sku"] in seen else None if SKU_RE.match(row["sku"])
               else f"sku {row['sku']!r} must be 1..100 letters, digits, '.', '_' or '-' (it names a folder)")
        if bad:
            items.append({"sku": row["sku"], "product_id": row["product_id"], "main_job": None,
                          "lifestyle_job": None, "error": bad})
            continue
        seen.add(row["sku"])
        items.append(_submit_row(state, owner, spec, row))
    batch = BatchRow(id=new_id(), owner=owner, spec=spec.model_dump(mode="json"), items=items, cancelled=False)
    with state.store.write() as s:
        s.add(batch)
    return _public(state, batch)


@router.post("/batches", status_code=201, openapi_extra={"requestBody": {"content": {
    "application/json": {"schema": BatchCreate.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "csv": {"type": "string", "format": "binary"}, "prompt": {"type": "string"},
        "look": {"type": "string"}, "marketplace": {"type": "string"}, "lifestyle": {"type": "integer"},
        "size": {"type": "string"}, "seed": {"type": "integer"}}, "required": ["csv"]}}}}})
async def create_batch(request: Request, state: StateDep, owner: OwnerDep) -> dict:
    """Start a catalog run: JSON ``{"product_ids": [...], "prompt" or "look", "marketplace", ...}``
    or multipart with a ``csv`` file. Answers the batch (201); rows that cannot run carry ``error``."""
    from ...schema import build

    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("csv")
        if upload is None or isinstance(upload, str):
            raise InvalidInputError("multipart batch: the csv file field is missing")
        try:
            text = (await upload.read()).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInputError("the csv file is not UTF-8 text") from None
        fields = {k: v for k, v in form.items() if k != "csv" and v != ""}
        spec = build(BatchCreate, fields)
        rows = await run_in_threadpool(_rows_from_csv, text, state, owner)
    else:
        try:
            body = await request.json()
        except ValueError:
            raise InvalidInputError("the body is not JSON (or send multipart with a csv file)") from None
        spec = build(BatchCreate, body if isinstance(body, dict) else {"product_ids": body})
        rows = [{"sku": pid, "product_id": pid} for pid in spec.product_ids]
    return await run_in_threadpool(_create, state, owner, spec, rows)


def _get(state, owner: str, batch_id: str):
    from sqlalchemy import select

    from ...store.models import BatchRow

    with state.store.read() as s:
        b = s.scalar(select(BatchRow).where(BatchRow.id == batch_id, BatchRow.owner == owner))
    if b is None:
        raise NotFoundError(f"batch {batch_id!r} not found")
    return b


def _jobs(state, ids: list[str]) -> dict[str, Any]:
    from sqlalchemy import select

    from ...store.models import Job, Result

    out: dict[str, Any] = {}
    if not ids:
        return out
    with state.store.read() as s:
        for j in s.scalars(select(Job).where(Job.id.in_(ids))):
            j.result_ids = []
            out[j.id] = j
        for jid, rid in s.execute(select(Result.job_id, Result.id).where(Result.job_id.in_(ids))
                                  .order_by(Result.job_id, Result.rank)):
            out[jid].result_ids.append(rid)
    return out


def _item_status(item: dict, jobs: dict, cancelled: bool) -> tuple[str, float, str | None]:
    if item.get("error"):
        return "failed", 1.0, item["error"]
    js = [jobs.get(item[k]) for k in ("main_job", "lifestyle_job") if item.get(k)]
    if any(j is None for j in js):
        return "failed", 1.0, "its job was deleted (with its product)"
    progress = sum(j.progress if j.status not in ("succeeded", "failed", "cancelled") else 1.0 for j in js) / len(js)
    states = {j.status for j in js}
    if "failed" in states:
        return "failed", 1.0, next(j.error for j in js if j.status == "failed") or "failed"
    if "cancelled" in states:
        return "cancelled", 1.0, "cancelled"
    if states == {"succeeded"}:
        return "succeeded", 1.0, None
    return ("running" if "running" in states or progress > 0 else "queued"), progress, None


def _public(state, b) -> dict:
    ids = [i[k] for i in b.items for k in ("main_job", "lifestyle_job") if i.get(k)]
    jobs = _jobs(state, ids)
    items, counts, total = [], {}, 0.0
    for it in b.items:
        status, progress, reason = _item_status(it, jobs, b.cancelled)
        counts[status] = counts.get(status, 0) + 1
        total += progress
        items.append({**it, "status": status, "progress": round(progress, 4), "reason": reason,
                      "result_ids": [r for k in ("main_job", "lifestyle_job") if it.get(k) and it[k] in jobs
                                     for r in jobs[it[k]].result_ids]})
    unfinished = counts.get("queued", 0) + counts.get("running", 0)
    status = ("cancelled" if b.cancelled and not unfinished else "running" if unfinished
              else "failed" if counts.get("failed") or counts.get("cancelled") else "succeeded")
    from ...store.models import as_utc
    return {"id": b.id, "status": status, "progress": round(total / max(1, len(items)), 4), "counts": counts,
            "spec": b.spec, "items": items, "created_at": as_utc(b.created_at).isoformat()}


@router.get("/batches/{batch_id}")
def get_batch(batch_id: str, state: StateDep, owner: OwnerDep) -> dict:
    return _public(state, _get(state, owner, batch_id))


@router.post("/batches/{batch_id}/cancel")
def cancel_batch(batch_id: str, state: StateDep, owner: OwnerDep) -> dict:
    """Cancel every job of the batch that has not finished (queued at once, running at its next step)."""
    from sqlalchemy import update

    from ...store.models import BatchRow
    from .products import stop_jobs

    b = _get(state, owner, batch_id)
    with state.store.write() as s:
        s.execute(update(BatchRow).where(BatchRow.id == b.id).values(cancelled=True))
    running = []
    for it in b.items:
        for k in ("main_job", "lifestyle_job"):
            if it.get(k):
                try:
                    job = state.store.cancel_job(owner, it[k])
                except NotFoundError:
                    continue
                if job.status == "running":
                    state.queue.cancel(job.id)
                    running.append(job.id)
    stop_jobs(state, running)
    return _public(state, _get(state, owner, batch_id))


@router.get("/batches/{batch_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`data: <batch JSON>` on every change until it is finished."}})
async def batch_events(batch_id: str, request: Request, state: StateDep, owner: OwnerDep) -> StreamingResponse:
    await run_in_threadpool(_get, state, owner, batch_id)  # 404 before the stream starts

    async def stream():
        last, quiet = None, 0.0
        while True:
            try:
                pub = await run_in_threadpool(lambda: _public(state, _get(state, owner, batch_id)))
            except NotFoundError:
                yield "event: error\ndata: " + json.dumps({"detail": f"batch {batch_id} was deleted"}) + "\n\n"
                return
            data = json.dumps(pub)
            if data != last:
                yield f"data: {data}\n\n"
                last, quiet = data, 0.0
            if pub["status"] not in ("queued", "running") or await request.is_disconnected():
                return
            await asyncio.sleep(0.5)
            quiet += 0.5
            if quiet >= 15:
                yield ": keep-alive\n\n"
                quiet = 0.0

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _records(state, owner: str, pub: dict) -> tuple[list[dict], dict[str, list[tuple[str, bytes]]]]:
    """Report records (as ``packshot batch`` writes them) and each SKU's files (name, PNG bytes)."""
    import numpy as np
    from PIL import Image

    from ...batch.runner import _thumb
    from ...marketplace.check import check_image

    records, files = [], {}
    market = pub["spec"]["marketplace"]
    for it in pub["items"]:
        rec = {"sku": it["sku"], "photo": it.get("name") or it["product_id"], "status": "ok"}
        if it["status"] != "succeeded":
            rec.update(status="failed", reason=it["reason"] or it["status"])
            records.append(rec)
            continue
        names, thumbs, blobs, engine = [], [], [], "?"
        for i, rid in enumerate(it["result_ids"]):
            r = state.store.get_result(owner, rid)
            engine = str((r.parameters or {}).get("Cutout", engine))
            data = state.store.blobs.get(r.blob_sha)
            name = "main.png" if i == 0 else f"lifestyle_{i:02d}.png"
            with Image.open(io.BytesIO(data)) as im:
                thumbs.append(_thumb(np.asarray(im.convert("RGB"))))
            names.append(name)
            blobs.append((name, data))
        report = check_image(blobs[0][1], market)
        rec.update(files=names, thumbs=thumbs, preset=None, prompt=pub["spec"].get("prompt"),
                   look=pub["spec"].get("look"), cutout={"engine": engine, "confidence": None},
                   check={"marketplace": market, "passed": report.passed,
                          "rules": [x.as_dict() for x in report.results]})
        files[it["sku"]] = blobs
        records.append(rec)
    return records, files


def _report(state, owner: str, batch_id: str) -> tuple[dict, str, dict]:
    from ...batch.report import render_html, summarize

    pub = _public(state, _get(state, owner, batch_id))
    if pub["status"] in ("queued", "running"):
        raise NotFinished(f"batch {batch_id} is still running ({pub['progress']:.0%}); the report comes when it ends")
    records, files = _records(state, owner, pub)
    run = {"records": records, "made": len(records), "skipped": 0, "seconds": 0.0}
    summary = summarize(run, f"batch {batch_id}", "(server)", pub["spec"])
    return summary, render_html(summary, records), files


# response_class=Response (no media type) so the declared 4xx bodies stay JSON in the OpenAPI
# document; with HTMLResponse FastAPI would declare them text/html.
@router.get("/batches/{batch_id}/report", response_class=Response,
            responses={200: {"content": {"text/html": {}}}})
def batch_report(batch_id: str, state: StateDep, owner: OwnerDep) -> HTMLResponse:
    """The contact sheet (self-contained HTML) once the batch has finished (409 while it runs)."""
    _, html, _ = _report(state, owner, batch_id)
    return HTMLResponse(html, headers={"Content-Disposition": f'inline; filename="batch-{batch_id[:12]}.html"'})


@router.get("/batches/{batch_id}/download", response_class=Response,
            responses={200: {"content": {"application/zip": {}}}})
def batch_download(batch_id: str, state: StateDep, owner: OwnerDep) -> Response:
    """One zip: ``<sku>/main.png``, ``<sku>/lifestyle_NN.png``, ``report.html``, ``summary.json``."""
    summary, html, files = _report(state, owner, batch_id)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # PNGs do not compress further
        for sku, items in files.items():
            for name, data in items:
                z.writestr(f"{sku}/{name}", data)
        z.writestr("report.html", html)
        z.writestr("summary.json", json.dumps(summary, indent=2))
    return Response(buf.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="batch-{batch_id[:12]}.zip"'})
