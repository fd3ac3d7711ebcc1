"""Structured prompt fields -> one prompt string (pure Python, no numpy)."""
from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError

FIELDS: tuple[str, ...] = ("surface", "surroundings", "background", "lighting", "mood")


def build_prompt(fields: dict[str, Any]) -> str:
    """Join structured fields into one prompt, in :data:`FIELDS` order, comma-separated.

    ``fields`` maps field names (surface, surroundings, background, lighting, mood) to text; empty
    or None values are left out. An unknown field name or a non-text value raises
    InvalidInputError naming it.
    """
    if not isinstance(fields, dict):
        raise InvalidInputError(f"prompt fields must be a mapping of {', '.join(FIELDS)}, got {type(fields).__name__}")
    for name, value in fields.items():
        if name not in FIELDS:
            raise InvalidInputError(f"unknown prompt field {name!r}; valid: {', '.join(FIELDS)}")
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"prompt field {name!r} must be text, got {type(value).__name__}")
    parts = [" ".join(str(fields.get(f) or "").split()).strip(" ,") for f in FIELDS]
    return ", ".join(p for p in parts if p)
