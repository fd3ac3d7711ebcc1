"""A catalog run: per SKU a listing set (main image + N lifestyle images), resumable and parallel.

Layout of OUT::

    OUT/<sku>/main.png            the marketplace's main image (its preset, checked by its rules)
    OUT/<sku>/lifestyle_01.png    N lifestyle images from the row's look or prompt
    OUT/<sku>/sku.json            written last: the SKU is done (or failed, with its reason)
    OUT/summary.json, OUT/report.html

**Resumable**: every file is written to a temp name and renamed; ``sku.json`` last. A SKU counts as
done when its ``sku.json`` says ``ok``, was made with the same options, and its files exist; a
restarted run skips those, removes temp files a killed run left, and redoes the rest (same names,
same seeds: no duplicates). Failed SKUs are tried again. One run at a time per OUT (a lock file).

**Parallel**: ``workers > 1`` runs SKUs in separate processes (spawned; each keeps its own
Pipeline); workers die with their parent (Linux ``PR_SET_PDEATHSIG``, else a watchdog thread), so
a killed run leaves no orphan writing into OUT.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..errors import PackshotError
from ..io import write_atomic
from .inputs import Row

MAIN_PRESET = {"amazon": "amazon", "walmart": "amazon", "google": "amazon", "ebay": "ebay",
               "shopify": "shopify", "etsy": "etsy"}
DEFAULT_LIFESTYLE_PROMPT = "on a light oak table, soft window light, plants in the background"
THUMB = 240


@dataclass(frozen=True)
class BatchOptions:
    marketplace: str = "amazon"
    prompt: str = DEFAULT_LIFESTYLE_PROMPT   # lifestyle scene when a row has no prompt or look
    lifestyle: int = 2                       # lifestyle images per SKU
    size: str = "2000x2000"                  # lifestyle canvas
    seed: int = 1
    output_format: str = "png"

    def key(self) -> str:
        """What decides the files: a SKU made with other options is made again."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def sku_done(folder: Path, options_key: str) -> dict | None:
    """The SKU's record when it is complete for these options, else None."""
    try:
        rec = json.loads((folder / "sku.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if rec.get("status") != "ok" or rec.get("options_key") != options_key:
        return None
    if not all((folder / f).is_file() for f in rec.get("files", [])):
        return None
    return rec


def clean_partial(folder: Path) -> int:
    """Remove temp files a killed run left (``.NAME.xxxx.tmp``)."""
    n = 0
    if folder.is_dir():
        for p in folder.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
    return n


def _thumb(image) -> str:
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    f = THUMB / max(h, w)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(small[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 82])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _lifestyle_request(row: Row, opts: BatchOptions, settings):
    from ..schema import GenerateRequest, build

    fields = {"n": opts.lifestyle, "output_format": opts.output_format}
    if row.look:
        from ..looks import FileLooks, apply_look

        look = FileLooks.for_settings(settings).get(row.look)  # unknown: the row fails, naming it
        if row.prompt:
            fields["prompt"] = row.prompt
        return apply_look(build(GenerateRequest, fields), look)
    return build(GenerateRequest, {**fields, "prompt": row.prompt or opts.prompt, "seed": opts.seed,
                                   "size": opts.size})


def make_listing(row: Row, opts: BatchOptions, out: Path, settings) -> dict:
    """Make one SKU's listing set in ``out/<sku>/`` and return its record (raises on failure)."""
    from ..layout import get_preset
    from ..marketplace.check import check_image
    from ..output import candidate_bytes
    from ..pipeline import default_pipeline
    from ..schema import GenerateRequest, SegmentOptions, build

    if row.error:
        raise PackshotError(row.error)
    preset = row.preset or MAIN_PRESET[opts.marketplace]
    get_preset(preset)  # unknown preset: fails this row, naming it
    seg = build(SegmentOptions, row.hints)
    life_req = _lifestyle_request(row, opts, settings) if opts.lifestyle else None
    pipe = default_pipeline(settings)
    cut = pipe.cutout(row.photo, seg)
    folder = out / row.sku
    ext = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}[opts.output_format]
    main = pipe.generate(cut, build(GenerateRequest, {"preset": preset, "n": 1, "seed": opts.seed,
                                                      "output_format": opts.output_format})).candidates[0]
    images = [("main" + ext, main)]
    if life_req is not None:
        life = pipe.generate(cut, life_req)
        images += [(f"lifestyle_{i:02d}{ext}", c) for i, c in enumerate(life.candidates, 1)]
    for name, cand in images:
        write_atomic(folder / name, candidate_bytes(cand, opts.output_format))
    report = check_image(folder / images[0][0], opts.marketplace)
    confidence = getattr(cut.matte, "confidence", None)
    return {"files": [n for n, _ in images], "thumbs": [_thumb(c.image) for _, c in images],
            "preset": preset, "prompt": life_req.prompt if life_req else None, "look": row.look,
            "cutout": {"engine": cut.matte.engine, "confidence": None if confidence is None else float(confidence),
                       "reasons": list(getattr(cut.matte, "reasons", ())), "notes": list(cut.matte.notes)},
            "check": {"marketplace": opts.marketplace, "passed": report.passed,
                      "rules": [r.as_dict() for r in report.results]}}


def process_row(row: Row, opts: BatchOptions, out: str, settings_json: str) -> dict:
    """Worker entry: make the SKU or record why it failed; always writes ``sku.json`` last."""
    from ..config import Settings

    out_p = Path(out)
    t0 = time.perf_counter()
    rec: dict = {"sku": row.sku, "photo": row.photo, "line": row.line, "options_key": opts.key()}
    try:
        if row.error is None:  # a row's own error (an unsafe SKU) must not touch any folder
            clean_partial(out_p / row.sku)
        rec.update(make_listing(row, opts, out_p, Settings.model_validate_json(settings_json)))
        rec["status"] = "ok"
    except PackshotError as e:
        rec.update(status="failed", reason=str(e))
    except Exception as e:  # a bug must fail this SKU, never the run
        rec.update(status="failed", reason=f"internal error: {type(e).__name__}: {' '.join(str(e).split())}")
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    if row.error is None:
        write_atomic(out_p / row.sku / "sku.json", json.dumps(rec).encode("utf-8"))
    return rec


def _safe(sku: str) -> bool:
    from .inputs import SKU_RE
    return bool(SKU_RE.match(sku))


def _die_with_parent() -> None:
    """Worker initializer: exit when the batch process dies (kill -9 included)."""
    parent = os.getppid()
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


class OutLock:
    """One run per OUT folder (``OUT/.batch.lock``, released when the process ends, even by kill -9)."""

    def __init__(self, out: Path):
        self.path = out / ".batch.lock"
        self.fd: int | None = None

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise PackshotError(f"{self.path.parent}: another batch run is writing there") from None
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


Listener = Callable[[dict, int, int], None]  # (record, finished, total)


def run_rows(rows: list[Row], opts: BatchOptions, out: str | Path, settings, *, workers: int = 1,
             on_done: Listener | None = None, cancelled: Callable[[], bool] = lambda: False) -> dict:
    """Make every SKU not done yet; return ``{"records": [...], "skipped": n, "made": n, "seconds": s}``
    (records in row order, done ones included)."""
    out = Path(out)
    key = opts.key()
    records: dict[int, dict] = {}
    todo = []
    for i, row in enumerate(rows):
        rec = sku_done(out / row.sku, key) if _safe(row.sku) and not row.error else None
        if rec is not None:
            records[i] = rec
        else:
            todo.append(i)
    skipped = len(records)
    t0 = time.perf_counter()
    settings_json = settings.model_dump_json()
    finished = skipped
    if on_done:
        for i in sorted(records):
            on_done(records[i], 0, len(rows))

    def note(i: int, rec: dict) -> None:
        nonlocal finished
        records[i] = rec
        finished += 1
        if on_done:
            on_done(rec, finished, len(rows))

    if workers <= 1 or len(todo) <= 1:
        for i in todo:
            if cancelled():
                break
            note(i, process_row(rows[i], opts, str(out), settings_json))
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=mp.get_context("spawn"),
                                 initializer=_die_with_parent) as pool:
            pending = {pool.submit(process_row, rows[i], opts, str(out), settings_json): i for i in todo}
            while pending:
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    note(pending.pop(fut), fut.result())
                if cancelled():
                    for fut in pending:
                        fut.cancel()
                    pending = {f: i for f, i in pending.items() if not f.cancelled()}
    ordered = [records[i] for i in sorted(records)]
    made = [records[i] for i in todo if i in records]
    return {"records": ordered, "skipped": skipped, "made": len(made), "seconds": time.perf_counter() - t0,
            "made_images": sum(len(r.get("files", [])) for r in made if r.get("status") == "ok")}
