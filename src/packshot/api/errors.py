"""One-line error details for the API (shared by the app's handlers and the routes)."""
from __future__ import annotations


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def validation_detail(errors) -> str:
    """RequestValidationError.errors() as one line: ``field: message (got value)``."""
    parts = []
    for e in errors[:5]:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "header", "__root__")]
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        value = e.get("input")
        shown = ""
        if value is not None and not isinstance(value, (dict, list, bytes)) and e.get("type") != "missing":
            r = repr(value)
            shown = f" (got {r[:80] + '...' if len(r) > 80 else r})"
        where = e.get("loc", ("",))[0]
        label = ".".join(loc) or ("request body" if where == "body" else where or "request")
        parts.append(f"{label}: {msg}{shown}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return _one_line("; ".join(parts))
