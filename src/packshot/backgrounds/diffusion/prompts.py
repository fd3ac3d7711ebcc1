"""Prompt assembly for the diffusion engine: what the model is actually told, recorded verbatim.

A bare scene prompt ("on a marble table") never names the product, which invites the model to
paint a second one. The final prompt is: the product's noun (``request.product``, else the cut-out
text hint, else the configured captioner's noun), the scene as written, then the style words of
``request.prompt_style``. The negative
prompt is the request's, else the model family's default. Both are recorded in the parameters
("Final prompt", ``negative_prompt``); nothing is rewritten silently. CLIP reads 77 tokens: what a
long prompt loses is said in a note.
"""
from __future__ import annotations

from typing import Any

from ...schema import DEFAULT_NEGATIVE_PROMPT

STYLE_WORDS = {
    "product": "professional product photography, sharp focus, high detail, soft studio lighting",
    "lifestyle": "lifestyle product photography, natural light, shallow depth of field, high detail",
    "none": "",
}
NEGATIVE_PROMPTS = {
    "sd": DEFAULT_NEGATIVE_PROMPT,
    # SDXL follows prompts more literally; a long negative list flattens its images
    "sdxl": "blurry, low quality, text, watermark, logo, duplicate product, extra objects, deformed",
}


def product_noun(req: Any) -> str | None:
    noun = (getattr(req, "product", None) or "").strip()
    if not noun:
        seg = getattr(req, "segment", None)
        noun = (getattr(seg, "text", None) or "").strip()
        for article in ("the ", "a ", "an "):
            if noun.lower().startswith(article):
                noun = noun[len(article):]
    return noun or None


def assemble(req: Any, family: str, noun: str | None = None) -> tuple[str, str]:
    """(final prompt, negative prompt) for ``req`` on a model of ``family`` ("sd" | "sdxl").
    ``noun``: the product's noun when the request names none (a captioner's)."""
    noun = product_noun(req) or noun
    style = STYLE_WORDS.get(getattr(req, "prompt_style", "product") or "none", "")
    parts = []
    if noun:
        parts.append(f"a {noun}")
    if req.prompt and req.prompt.strip():
        parts.append(req.prompt.strip())
    if style:
        parts.append(style)
    negative = req.negative_prompt if req.negative_prompt is not None else NEGATIVE_PROMPTS[family]
    return ", ".join(parts), negative


def token_notes(pipe: Any, prompt: str, negative: str) -> list[str]:
    """CLIP reads 77 tokens: say what a long prompt loses instead of dropping it silently."""
    tok = getattr(pipe, "tokenizer", None)
    out: list[str] = []
    if tok is None:
        return out
    limit = int(getattr(tok, "model_max_length", 77) or 77)
    for label, text in (("prompt", prompt), ("negative prompt", negative)):
        if not text:
            continue
        ids = tok(text, truncation=False).input_ids
        if len(ids) > limit:
            kept = tok.decode(ids[1:limit - 1]).strip()
            dropped = text[len(kept):].strip() if text.lower().startswith(kept.lower()[:20]) else ""
            out.append(f"{label} is {len(ids)} tokens; the model reads the first {limit}"
                       + (f": ignored '{dropped[:60]}'" if dropped else ""))
    return out
