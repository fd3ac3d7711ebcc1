"""Prompt assembly for the diffusion engine: what the model is actually told, recorded verbatim.

A bare scene prompt ("on a marble table") never names the product, which invites the model to
paint a second one. The final prompt is: the product's noun (``request.product``, else the cut-out
text hint, else the configured captioner's noun), the scene as written, then the style words of
``request.prompt_style``. The negative
prompt is the request's, else the model family's default. Both are recorded in the parameters
("Final prompt", ``negative_prompt``); nothing is rewritten silently. CLIP reads 77 tokens: what a
long prompt loses is said in a note.

With trained adapters, ``<product>`` in the prompt (and the negative prompt) becomes the first
adapter's trigger token (followed by the product's noun when one is known); without adapters it
becomes the noun. When the model paints the product (text2img / img2img with an adapter) and the
prompt names no token, "a photo of TOKEN NOUN" goes in front, with a note.
"""
from __future__ import annotations

from typing import Any, Sequence

from ...schema import DEFAULT_NEGATIVE_PROMPT

STYLE_WORDS = {
    "product": "professional product photography, sharp focus, high detail, soft studio lighting",
    "lifestyle": "lifestyle product photography, natural light, shallow depth of field, high detail",
    "none": "",
}
SLOT = "<product>"          # in a prompt: where the product goes; an adapter's trigger token replaces it
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


def _slot(tokens: Sequence[str], noun: str | None, notes: list[str]) -> str:
    """What ``<product>`` becomes: the first adapter's trigger token (with the product's noun), else the noun."""
    if not tokens:
        notes.append(f"no adapter: '{SLOT}' became '{noun or 'product'}'")
        return noun or "product"
    if len(tokens) > 1:
        notes.append(f"'{SLOT}' became the first adapter's token {tokens[0]!r}; write "
                     f"{', '.join(repr(t) for t in tokens[1:])} in the prompt to use the other adapters' tokens")
    return tokens[0] + (f" {noun}" if noun else "")


def assemble(req: Any, family: str, noun: str | None = None, *, tokens: Sequence[str] = (), paint: bool = False,
             notes: list[str] | None = None) -> tuple[str, str]:
    """(final prompt, negative prompt) for ``req`` on a model of ``family`` ("sd" | "sdxl").
    ``noun``: the product's noun when the request names none (a captioner's). ``tokens``: the
    trigger tokens of the request's adapters; ``<product>`` becomes the first. ``paint``: the model
    paints the product (text2img / img2img with an adapter): a prompt that names none of the tokens
    gets "a photo of TOKEN NOUN" in front. What was rewritten is said in ``notes``."""
    notes = notes if notes is not None else []
    noun = product_noun(req) or noun
    style = STYLE_WORDS.get(getattr(req, "prompt_style", "product") or "none", "")
    scene = (req.prompt or "").strip()
    parts = []
    if SLOT in scene:
        scene = scene.replace(SLOT, _slot(tokens, noun, notes))
    elif tokens and paint and not any(t in scene for t in tokens):
        parts.append(f"a photo of {' '.join(tokens)} {noun or 'product'}")
        notes.append(f"the prompt does not name the adapters' token ({', '.join(tokens)}): "
                     f"'{parts[0]}' put in front (write {SLOT} where the product goes)")
    elif noun:
        parts.append(f"a {noun}")
    if tokens and not paint and not any(t in scene for t in tokens):
        notes.append(f"the prompt does not use the adapters' token ({', '.join(tokens)}): write {SLOT} in the "
                     f"prompt to use it")
    if scene:
        parts.append(scene)
    if style:
        parts.append(style)
    negative = req.negative_prompt if req.negative_prompt is not None else NEGATIVE_PROMPTS[family]
    if SLOT in negative:
        negative = negative.replace(SLOT, tokens[0] if tokens else (noun or "product"))
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
