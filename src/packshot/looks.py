"""Looks: saved scene recipes, applied to any product.

A look is the part of a :class:`~packshot.schema.GenerateRequest` that makes the *scene*: the
structured prompt, the engine and its settings, the preset or canvas, view, light, shadow and the
seed. Everything about one photo (the cut-out hints, the product noun, the seller's own
background photo, the position) stays out, so one look applied across a product line gives every
SKU the same scene, light and seeds.

Stored per API key in the service's database (:class:`DbLooks`, table ``looks``) or, for the CLI
and the library, in one JSON file (:class:`FileLooks`, ``<data_dir>/looks.json``, written
atomically). Both follow the :class:`LookBook` protocol.

Applying (:func:`apply_look`): the look's values, then the fields the caller set explicitly
(``request.model_fields_set``) on top; a canvas given explicitly (preset, size, aspect,
keep_framing) replaces the look's whole canvas. The result has ``look=None``: it is a complete
request, so a job stores exactly what it will run and applying twice changes nothing.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import InvalidInputError, NotFoundError
from .schema import GenerateRequest, build

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,79}$")
# request fields that belong to one photo, never to a look
PER_PRODUCT = frozenset({"segment", "look", "product", "background", "position", "reference_image"})
CANVAS = ("preset", "size", "aspect", "keep_framing")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or name != name.strip():
        raise InvalidInputError(f"look name {name!r} must be 1..80 letters, digits, spaces, '_', '.' or '-' "
                                "(starting with a letter or digit)")
    return name


class Look(BaseModel):
    """A saved scene recipe. ``request``: GenerateRequest fields (never per-photo ones);
    ``fields``: the structured prompt (surface, surroundings, background, lighting, mood)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., description="Unique per API key (or per file).")
    request: dict[str, Any] = Field(default_factory=dict, description="The scene's GenerateRequest fields.")
    fields: dict[str, str] = Field(default_factory=dict, description="Structured prompt fields.")
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        try:
            return check_name(v)
        except InvalidInputError as e:
            raise ValueError(e.message) from None

    @field_validator("request")
    @classmethod
    def _request(cls, v):
        bad = sorted(set(v) & PER_PRODUCT)
        if bad:
            raise ValueError(f"a look holds the scene only, not {', '.join(bad)}")
        try:
            return GenerateRequest.model_validate(v).model_dump(mode="json", include=set(v))
        except Exception as e:  # pydantic's message, one line
            from pydantic import ValidationError

            from .schema import validation_message
            raise ValueError(validation_message(e) if isinstance(e, ValidationError) else str(e)) from None

    @field_validator("fields")
    @classmethod
    def _fields(cls, v):
        from .prompts import FIELDS

        bad = sorted(set(v) - set(FIELDS))
        if bad:
            raise ValueError(f"unknown prompt field {bad[0]!r}; valid: {', '.join(FIELDS)}")
        return v


def make_look(name: str, request: GenerateRequest | dict[str, Any], fields: dict[str, str] | None = None) -> Look:
    """A look from a request (all its scene fields, defaults included, so the recipe is complete)."""
    req = request if isinstance(request, GenerateRequest) else build(GenerateRequest, dict(request))
    scene = req.model_dump(mode="json", exclude=set(PER_PRODUCT))
    scene = {k: v for k, v in scene.items() if k in GenerateRequest.model_fields}
    return build(Look, {"name": name, "request": scene, "fields": dict(fields or {})})


def look_from_results(name: str, results_json: str | Path, rank: int = 1) -> Look:
    """A look from a candidate in a ``results.json`` that packshot wrote: its request, its seed."""
    path = Path(results_json)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise InvalidInputError(f"{path}: not a packshot results.json ({type(e).__name__})") from None
    req = data.get("request") if isinstance(data, dict) else None
    cands = data.get("candidates") if isinstance(data, dict) else None
    if not isinstance(req, dict) or not isinstance(cands, list):
        raise InvalidInputError(f"{path}: not a packshot results.json (no request/candidates)")
    cand = next((c for c in cands if c.get("rank") == rank), None)
    if cand is None:
        raise InvalidInputError(f"rank {rank} is not in {path} (ranks 1..{len(cands)})")
    req = {k: v for k, v in req.items() if k in GenerateRequest.model_fields and k not in PER_PRODUCT}
    req["seed"] = cand["seed"]
    return make_look(name, req)


def apply_look(request: GenerateRequest, look: Look) -> GenerateRequest:
    """``request`` with the look's scene under the fields the caller set explicitly."""
    explicit = set(request.model_fields_set) - {"look"}
    base = dict(look.request)
    if explicit & set(CANVAS):
        for k in CANVAS:
            base.pop(k, None)
    mine = request.model_dump(mode="json", include=explicit)
    return build(GenerateRequest, {**base, **mine})


class LookBook(Protocol):
    def get(self, name: str) -> Look: ...
    def list(self) -> list[Look]: ...
    def put(self, look: Look) -> Look: ...
    def delete(self, name: str) -> None: ...


def _unknown(name: str, names: list[str]) -> NotFoundError:
    known = ", ".join(sorted(names)) or "none yet"
    return NotFoundError(f"unknown look {name!r} (saved looks: {known})")


def resolve_request(request: GenerateRequest, book: LookBook) -> GenerateRequest:
    """Apply ``request.look`` from ``book`` (unchanged when no look is named)."""
    name = getattr(request, "look", None)
    if not name:
        return request
    try:
        look = book.get(name)
    except NotFoundError as e:  # a request field naming no saved look: bad input (CLI exit 2, API 422)
        raise InvalidInputError(f"look: {e.message}") from None
    return apply_look(request, look)


class FileLooks:
    """Looks in one JSON file ``{name: look}`` (the CLI's and the library's book)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def for_settings(cls, settings) -> "FileLooks":
        return cls(Path(settings.data_dir) / "looks.json")

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise InvalidInputError(f"looks file {self.path} is unreadable ({type(e).__name__}); "
                                    "fix or remove it") from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"looks file {self.path} is not a JSON object; fix or remove it")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".looks.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, name: str) -> Look:
        data = self._read()
        if name not in data:
            raise _unknown(name, list(data))
        return build(Look, data[name])

    def list(self) -> list[Look]:
        return [build(Look, v) for _, v in sorted(self._read().items())]

    def put(self, look: Look) -> Look:
        data = self._read()
        data[look.name] = look.model_dump(mode="json")
        self._write(data)
        return look

    def delete(self, name: str) -> None:
        data = self._read()
        if name not in data:
            raise _unknown(name, list(data))
        del data[name]
        self._write(data)


class DbLooks:
    """Looks of one owner (sha256 of an API key, "" without keys) in the service's database."""

    def __init__(self, store, owner: str):
        self.store, self.owner = store, owner

    def _row(self, s, name: str):
        from sqlalchemy import select

        from .store.models import LookRow
        return s.scalar(select(LookRow).where(LookRow.owner == self.owner, LookRow.name == name))

    def _names(self, s) -> list[str]:
        from sqlalchemy import select

        from .store.models import LookRow
        return list(s.scalars(select(LookRow.name).where(LookRow.owner == self.owner)))

    @staticmethod
    def _look(row) -> Look:
        return build(Look, {"name": row.name, "request": row.request, "fields": row.fields,
                            "created_at": row.created_at.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")
                            if row.created_at.tzinfo is None else row.created_at.isoformat(timespec="seconds")})

    def get(self, name: str) -> Look:
        with self.store.read() as s:
            row = self._row(s, name)
            if row is None:
                raise _unknown(name, self._names(s))
            return self._look(row)

    def list(self) -> list[Look]:
        from sqlalchemy import select

        from .store.models import LookRow
        with self.store.read() as s:
            rows = s.scalars(select(LookRow).where(LookRow.owner == self.owner).order_by(LookRow.name))
            return [self._look(r) for r in rows]

    def put(self, look: Look) -> Look:
        from .store.models import LookRow, new_id, utcnow
        with self.store.write() as s:
            row = self._row(s, look.name)
            if row is None:
                s.add(LookRow(id=new_id(), owner=self.owner, name=look.name, request=look.request,
                              fields=look.fields, created_at=utcnow()))
            else:
                row.request, row.fields, row.created_at = look.request, look.fields, utcnow()
        return self.get(look.name)

    def delete(self, name: str) -> None:
        with self.store.write() as s:
            row = self._row(s, name)
            if row is None:
                raise _unknown(name, self._names(s))
            s.delete(row)
