"""The marketplace rules, in one table, each with its source.

Every rule is a :class:`Rule`: which measurement it reads (``check`` = a key of
:data:`packshot.marketplace.check.EVALUATORS`), its level (``required``: the marketplace rejects
or suppresses the image; ``recommended``: it asks for it, a failure is a warning), its parameters,
and the page it comes from. Figures are those of the marketplaces' seller help pages as we know
them (URLs below); they change from time to time: check the page before relying on a number.
Where a rule is packshot's own (colour mode), the source says so and why.

``markdown_table()`` prints the table the README shows (``packshot check --rules``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UnknownNameError

MB = 1024 * 1024

SOURCES = {
    "amazon": "https://sellercentral.amazon.com/help/hub/reference/external/G1881",
    "walmart": "https://marketplacelearn.walmart.com/guides/Item%20setup/Item%20content,%20imagery%20and%20media/Product-detail-page:-image-guidelines-&-requirements",
    "google": "https://support.google.com/merchants/answer/6324350",
    "google-ai": "https://support.google.com/merchants/answer/14743464",
    "ebay": "https://www.ebay.com/help/selling/listings/creating-managing-listings/add-pictures-listings?id=4148",
    "etsy": "https://help.etsy.com/hc/en-us/articles/115015663347",
    "shopify": "https://help.shopify.com/en/manual/online-store/images/theme-images",
    "packshot": "packshot: CMYK and wide-gamut files show wrong colours in browsers; web images are sRGB",
}


@dataclass(frozen=True)
class Rule:
    check: str                      # measurement/evaluator name
    level: str                      # "required" | "recommended"
    text: str                       # the rule in words
    source: str                     # key of SOURCES
    params: dict[str, Any] = field(default_factory=dict)


def _size(level, text, src, **p):
    return Rule("size", level, text, src, p)


def _common(src: str, formats: tuple[str, ...], max_mb: float, size_level: str = "required") -> tuple[Rule, ...]:
    """Rules every marketplace has in the same form: colour mode, format and file size, no borders."""
    return (
        Rule("colour", "required", "RGB colour, sRGB or untagged profile (no CMYK)", "packshot"),
        Rule("format", "required", f"file format {', '.join(formats)}", src, {"formats": formats}),
        Rule("file_size", size_level, f"file size <= {max_mb:g} MB", src, {"max_bytes": int(max_mb * MB)}),
        Rule("borders", "required", "no borders or frames", src),
    )


MARKETPLACES: dict[str, tuple[Rule, ...]] = {
    "amazon": (
        _size("required", "longest side >= 1000 px (zoom; Amazon's absolute minimum is 500), <= 10000 px",
              "amazon", min_long=1000, max_long=10000),
        Rule("background", "required", "main image: pure white background RGB 255,255,255", "amazon",
             {"min_purity": 0.99}),
        Rule("fill", "required", "product fills >= 85% of the frame (longer side)", "amazon", {"min": 0.85}),
        Rule("text", "required", "no text, logos, watermarks or badges added to the image", "amazon"),
        *_common("amazon", ("JPEG", "PNG", "TIFF", "GIF"), 10),
    ),
    "walmart": (
        _size("required", "at least 1500x1500 px (2200x2200 recommended)", "walmart", min_w=1500, min_h=1500),
        Rule("aspect", "required", "square 1:1", "walmart", {"ratio": 1.0, "tolerance": 0.01}),
        Rule("background", "required", "main image: white background RGB 255,255,255", "walmart",
             {"min_purity": 0.99}),
        Rule("fill", "recommended", "product fills 75-90% of the frame", "walmart", {"min": 0.75, "max": 0.90}),
        Rule("text", "required", "no added text, watermarks or logos", "walmart"),
        *_common("walmart", ("JPEG", "PNG", "BMP"), 5),
    ),
    "google": (
        _size("required", "at least 100x100 px (250x250 for apparel), at most 64 megapixels", "google",
              min_w=100, min_h=100, max_pixels=64_000_000),
        Rule("background", "recommended", "solid white (or transparent/grey) background", "google",
             {"min_purity": 0.99}),
        Rule("fill", "recommended", "product takes 75-90% of the image", "google", {"min": 0.75, "max": 0.90}),
        Rule("text", "required", "no promotional text, watermarks or overlays", "google"),
        Rule("ai_tag", "required", "images made with generative AI carry the IPTC DigitalSourceType "
             "trainedAlgorithmicMedia (or compositeWithTrainedAlgorithmicMedia) metadata", "google-ai"),
        *_common("google", ("JPEG", "WEBP", "PNG", "GIF", "BMP", "TIFF"), 16),
    ),
    "ebay": (
        _size("required", "longest side >= 500 px (1600 px recommended)", "ebay", min_long=500),
        Rule("fill", "recommended", "product fills 80-90% of the frame", "ebay", {"min": 0.80, "max": 0.90}),
        Rule("text", "required", "no added text, artwork or watermarks", "ebay"),
        *_common("ebay", ("JPEG", "PNG", "TIFF", "BMP", "GIF", "WEBP", "HEIF", "AVIF"), 12),
    ),
    "etsy": (
        _size("recommended", "shortest side >= 1000 px (2000 px recommended)", "etsy", min_short=1000),
        Rule("aspect", "recommended", "4:3 landscape (thumbnails crop to 4:3)", "etsy",
             {"ratio": 4 / 3, "tolerance": 0.02}),
        Rule("text", "recommended", "no added text or watermarks", "etsy"),
        *_common("etsy", ("JPEG", "PNG", "GIF"), 1, size_level="recommended"),
    ),
    "shopify": (
        _size("required", "at most 4472x4472 px (20 megapixels); 2048x2048 recommended for zoom", "shopify",
              max_w=4472, max_h=4472, max_pixels=20_000_000),
        Rule("aspect", "recommended", "square 1:1 (themes show square thumbnails)", "shopify",
             {"ratio": 1.0, "tolerance": 0.01}),
        Rule("text", "recommended", "no added text or watermarks", "shopify"),
        *_common("shopify", ("JPEG", "PNG", "WEBP", "GIF", "HEIF", "AVIF"), 20),
    ),
}

WHITE = (255, 255, 255)


def rules_for(marketplace: str) -> tuple[Rule, ...]:
    try:
        return MARKETPLACES[marketplace]
    except KeyError:
        raise UnknownNameError("marketplace", marketplace, list(MARKETPLACES)) from None


def rule(marketplace: str, check: str) -> Rule | None:
    return next((r for r in rules_for(marketplace) if r.check == check), None)


def markdown_table(marketplaces: list[str] | None = None) -> str:
    """The rules as a Markdown table (marketplace, rule, level, source)."""
    rows = ["| marketplace | check | level | rule | source |", "|---|---|---|---|---|"]
    for name in marketplaces or list(MARKETPLACES):
        for r in rules_for(name):
            src = SOURCES[r.source]
            link = f"[{r.source}]({src})" if src.startswith("http") else src
            rows.append(f"| {name} | {r.check} | {r.level} | {r.text} | {link} |")
    return "\n".join(rows)
