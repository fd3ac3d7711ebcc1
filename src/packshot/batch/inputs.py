"""Batch input: a folder of photos or a CSV ``sku, photo[, prompt, look, preset, hints]``.

Each row becomes a :class:`Row`. A row that is wrong on its own (no photo, a duplicate or unsafe
SKU, unparsable hints) carries its one-line ``error`` and fails alone; only an unreadable INPUT or a
CSV without the ``sku`` and ``photo`` columns stops the run (bad input, exit 2).

``hints`` (optional column): cut-out hints separated by ``;``: ``box=x0,y0,x1,y1``,
``point=x,y``, ``neg=x,y``, ``text=the bottle``; e.g. ``box=120,80,900,1000; point=500,500``.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError

PHOTO_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
COLUMNS = ("sku", "photo", "prompt", "look", "preset", "hints")
SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$")


@dataclass
class Row:
    sku: str
    photo: str
    line: int                       # CSV line number (folder: position, from 1)
    prompt: str | None = None
    look: str | None = None
    preset: str | None = None
    hints: dict = field(default_factory=dict)   # SegmentOptions fields
    error: str | None = None        # the row's own problem: it fails alone

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def parse_hints(text: str) -> dict:
    """``box=1,2,3,4; point=5,6; neg=7,8; text=...`` -> SegmentOptions fields (errors name the part)."""
    out: dict = {}
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep:
            raise InvalidInputError(f"hint {part!r} is not key=value (box=, point=, neg=, text=)")
        if key == "text":
            out["text"] = value.strip()
            continue
        try:
            nums = tuple(int(round(float(v))) for v in value.split(","))
        except ValueError:
            raise InvalidInputError(f"hint {part!r}: {value.strip()!r} is not a list of numbers") from None
        want = {"box": 4, "point": 2, "neg": 2}.get(key)
        if want is None:
            raise InvalidInputError(f"hint {part!r}: unknown key {key!r} (box, point, neg, text)")
        if len(nums) != want:
            raise InvalidInputError(f"hint {part!r}: {key} takes {want} numbers")
        out.setdefault({"box": "boxes", "point": "points", "neg": "neg_points"}[key], []).append(nums)
    return out


def _check_sku(row: Row, seen: set[str]) -> None:
    if row.error:
        return
    if not SKU_RE.match(row.sku):
        row.error = f"sku {row.sku!r} must be 1..100 letters, digits, '.', '_' or '-' (it names a folder)"
    elif row.sku.lower() in seen:
        row.error = f"sku {row.sku!r} appears twice (first row kept)"
    else:
        seen.add(row.sku.lower())


def _from_folder(folder: Path) -> list[Row]:
    photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_EXTS)
    if not photos:
        raise InvalidInputError(f"{folder}: no photos ({', '.join(sorted(PHOTO_EXTS))})")
    rows, seen = [], set()
    for i, p in enumerate(photos, 1):
        row = Row(sku=re.sub(r"[^A-Za-z0-9._\-]", "-", p.stem).strip("-._") or f"photo-{i}", photo=str(p), line=i)
        _check_sku(row, seen)
        rows.append(row)
    return rows


def _from_csv(path: Path) -> list[Row]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"{path}: cannot read the CSV ({type(e).__name__})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("sku", "photo") if c not in header]
    if missing:
        raise InvalidInputError(f"{path}: the CSV needs the columns sku and photo "
                                f"(missing {', '.join(missing)}; found {', '.join(header) or 'no header'})")
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        raise InvalidInputError(f"{path}: unknown column(s) {', '.join(unknown)}; valid: {', '.join(COLUMNS)}")
    rows, seen = [], set()
    for raw in reader:
        rec = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(rec.values()):
            continue
        photo = rec.get("photo", "")
        row = Row(sku=rec.get("sku", ""), line=reader.line_num,
                  photo=str((path.parent / photo) if photo and not Path(photo).is_absolute() else photo),
                  prompt=rec.get("prompt") or None, look=rec.get("look") or None,
                  preset=rec.get("preset") or None)
        if not row.sku or not photo:
            row.error = f"line {row.line}: sku and photo are both required"
        else:
            try:
                row.hints = parse_hints(rec.get("hints", ""))
            except InvalidInputError as e:
                row.error = str(e)
        _check_sku(row, seen)
        rows.append(row)
    if not rows:
        raise InvalidInputError(f"{path}: the CSV has no rows")
    return rows


def read_rows(source: str | Path) -> list[Row]:
    """Rows of a folder of photos (SKU = file name without extension) or of a CSV file."""
    path = Path(source)
    if path.is_dir():
        return _from_folder(path)
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise InvalidInputError(f"{source}: INPUT must be a folder of photos or a .csv file")
        return _from_csv(path)
    raise InvalidInputError(f"{source}: no such folder or CSV file")

