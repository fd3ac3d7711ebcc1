"""One request schema shared by the library, the CLI, the REST API and job payloads.

Each default lives here and only here. Validation names the bad value and never rewrites a
request silently (diffusers' ``check_inputs`` habit).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvalidInputError

ASPECTS = {"1:1": (1, 1), "4:5": (4, 5), "16:9": (16, 9), "3:2": (3, 2), "2:3": (2, 3), "9:16": (9, 16)}
DEFAULT_NEGATIVE_PROMPT = (
    "blurry, low quality, distorted, deformed, extra objects, duplicate product, text, watermark, "
    "logo, cropped, oversaturated"
)
_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*$")
# bounds on every list and name (a job's request is stored and echoed back: it must stay small)
MAX_CLICKS, MAX_BOXES, MAX_NAME = 200, 20, 200
MAX_ADAPTERS = 8


def _clean_text(value):
    """No NUL characters and no lone surrogates in any text field (a database cannot store them)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid UTF-8 text") from None
    return value


@dataclass(frozen=True)
class Cli:
    """How a request field appears on the command line (read by ``packshot.cli.options``).

    Every field of GenerateRequest / SegmentOptions becomes an option with no declaration at all:
    ``--field-name`` (``-n`` for a one-letter name), help from the description, choices from a
    ``Literal``, bounds and the default in the help, ``--x/--no-x`` for a bool, repeatable for a
    list. Attach ``Cli(...)`` with ``Annotated`` only for what differs.
    """

    flags: tuple[str, ...] = ()  # replaces --field-name (first flag is the main one)
    type: str | None = None      # CLI-only value syntax: "point" (X,Y), "box" (X0,Y0,X1,Y1), "path"
    metavar: str | None = None
    group: str | None = None     # options of one group are mutually exclusive on the command line
    skip: bool = False           # no generated option (the command adds its own, or none)


def parse_position(text: str) -> tuple[float, float]:
    """'0.5,0.85' -> (0.5, 0.85): a point as fractions of the canvas, each in [0, 1]."""
    try:
        x, y = (float(v) for v in str(text).split(","))
    except ValueError:
        raise InvalidInputError(f"position {text!r} is not X,Y fractions of the canvas, e.g. 0.5,0.85") from None
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise InvalidInputError(f"position {text!r} is out of range: X and Y must be 0..1")
    return x, y


def parse_size(text: str) -> tuple[int, int]:
    """'1024x768' -> (1024, 768)."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise InvalidInputError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1024x1024")
    w, h = int(m.group(1)), int(m.group(2))
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise InvalidInputError(f"size {text!r} is out of range: each side must be 64..8192 px")
    return w, h


def parse_adapter(text: str) -> tuple[str, float]:
    """'mug-lora:0.8' -> ('mug-lora', 0.8); 'mug-lora' -> ('mug-lora', 1.0). The weight is taken
    only when what follows the last ':' is a number (a folder path may hold ':' itself)."""
    text = str(text).strip()
    ref, weight = text, 1.0
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            ref, weight = head, float(tail)
        except ValueError:
            ref, weight = text, 1.0
    if not ref:
        raise InvalidInputError(f"adapter {text!r} names no adapter: give NAME or DIR, optionally :WEIGHT")
    if not (-2.0 <= weight <= 2.0):
        raise InvalidInputError(f"adapter {text!r}: weight {weight:g} is out of range -2..2")
    return ref, weight


class SegmentOptions(BaseModel):
    """How the product is cut out. Coordinates are photo pixels: points (x, y), boxes XYXY."""

    model_config = ConfigDict(extra="forbid")

    engine: Annotated[str, Cli(flags=("--cutout-engine", "--segmenter"))] = Field(
        "auto", max_length=40, description="Cutout engine: classic | learned | sam | auto (learned when the "
                                           "u2netp cut-out model is present, else sam when its weights are, "
                                           "else classic).")
    points: Annotated[list[tuple[int, int]], Cli(flags=("--point",), type="point")] = Field(
        default_factory=list, max_length=MAX_CLICKS, description="A click on the product (x, y); at most 200.")
    neg_points: Annotated[list[tuple[int, int]], Cli(flags=("--neg-point",), type="point")] = Field(
        default_factory=list, max_length=MAX_CLICKS,
        description="A click on something that is not the product (x, y); at most 200.")
    boxes: Annotated[list[tuple[int, int, int, int]], Cli(flags=("--box",), type="box")] = Field(
        default_factory=list, max_length=MAX_BOXES, description="A box around the product (x0, y0, x1, y1); at most 20.")
    text: str | None = Field(None, max_length=200,
                             description="Name the object to cut out, e.g. 'the bottle' (sam).")
    model: Annotated[str | None, Cli(flags=("--sam-model", "--cutout-model"))] = Field(
        None, max_length=MAX_NAME, description="SAM model id or local folder (sam engine), or cut-out model "
                                               "id or .onnx file (learned engine, default u2netp).")

    _text = field_validator("engine", "text", "model")(_clean_text)

    @field_validator("points", "neg_points", "boxes", mode="before")
    @classmethod
    def _not_too_many(cls, v, info):  # before validation: a million clicks is refused at once
        limit = MAX_BOXES if info.field_name == "boxes" else MAX_CLICKS
        if isinstance(v, (list, tuple)) and len(v) > limit:
            raise ValueError(f"{len(v)} items; at most {limit}")
        return v

    @field_validator("boxes")
    @classmethod
    def _boxes_ordered(cls, boxes):
        for b in boxes:
            if b[2] <= b[0] or b[3] <= b[1]:
                raise ValueError(f"box {','.join(map(str, b))} must have x1 > x0 and y1 > y0")
        return boxes


class GenerateRequest(BaseModel):
    """Everything that decides a generation. Defaults here are the defaults everywhere."""

    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, Cli(flags=("--prompt", "-p"))] = Field(
        "pure white studio background", max_length=1000, description="The scene, in words.")
    negative_prompt: str | None = Field(None, max_length=1000,
                                        description="What to avoid (diffusion engines); default: the model "
                                                    "family's own negative prompt (recorded).")
    n: int = Field(4, ge=1, le=16, description="Number of candidates.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1,
                             description="Seed of the first candidate; candidate i uses seed + i.")
    engine: Annotated[str, Cli(skip=True)] = Field(  # the CLI's --engine routes to both stages
        "studio", max_length=40, description="Background engine: studio | diffusion.")
    model: str | None = Field(None, max_length=MAX_NAME, description="Diffusion model: registry id or local path.")
    preset: Annotated[str | None, Cli(group="canvas")] = Field(
        None, max_length=40, description="Marketplace preset: amazon | ebay | shopify | etsy.")
    size: Annotated[str | None, Cli(group="canvas", metavar="WxH")] = Field(
        None, max_length=20, description="Canvas WIDTHxHEIGHT, e.g. 1024x1024.")
    aspect: Annotated[Literal["original", "1:1", "4:5", "16:9", "3:2", "2:3", "9:16"],
                      Cli(group="canvas")] = Field(
        "original", description="Canvas shape when no size or preset is given.")
    keep_framing: bool = Field(False, description="Canvas = photo size, product stays exactly where it was.")
    placement: Literal["center", "surface"] = Field(
        "surface", description="center: centred; surface: standing on the floor line.")
    margin: float = Field(0.1, ge=0.0, le=0.45, description="Free border, fraction of the canvas side.")
    scale: float | None = Field(None, gt=0.0, le=1.0,
                                description="Product's longer side as a fraction of the canvas's longer side (default 0.6, or the preset's).")
    segment: SegmentOptions = Field(default_factory=SegmentOptions,
                                    description="How the product is cut out.")
    steps: int = Field(30, ge=1, le=150, description="Denoising steps (diffusion).")
    guidance: float = Field(7.5, ge=0.0, le=30.0, description="Classifier-free guidance (diffusion).")
    strength: float | None = Field(None, gt=0.0, le=1.0,
                                   description="Denoising strength (inpaint/img2img); default: the model's "
                                               "(0.99 SDXL inpainting, 1.0 SD inpainting, 0.7 img2img).")
    scheduler: str | None = Field(None, max_length=80,
                                  description="Diffusion scheduler name; None = the model's own.")
    mode: Literal["auto", "inpaint", "text2img", "img2img"] = Field("auto", description="Diffusion mode.")
    seam_pass: bool = Field(False, description="Second diffusion pass on a thin ring around the product.")
    upscaler: str | None = Field(
        None, max_length=MAX_NAME, description="Diffusion, when the model works below the output size: how the "
                                               "background is enlarged: an upscaler model (registry id, e.g. "
                                               "realesrgan-x4, or a .onnx path), 'hires' (a low-strength second "
                                               "pass at the output size) or 'lanczos' (the default).")
    controlnet: str | None = Field(None, max_length=MAX_NAME, description="ControlNet model id/path (diffusion).")
    control_image: Literal["canny", "depth"] = Field("canny", description="ControlNet's control image.")
    controlnet_scale: float = Field(0.5, ge=0.0, le=2.0,
                                    description="How strongly the ControlNet steers (diffusion).")
    control_end: float = Field(0.7, gt=0.0, le=1.0,
                               description="Fraction of the steps the ControlNet steers; the rest are free.")
    fill: Literal["blur", "edge", "flat"] = Field(
        "blur", description="Outpaint: what is under the new canvas before painting: blur (multi-scale blur "
                            "of the product's colours), edge (its edge colours padded out), flat (the "
                            "photo's backdrop colour).")
    product: str | None = Field(None, max_length=100,
                                description="What the product is ('ceramic mug'): named in diffusion prompts; "
                                            "default: the cut-out text, if any.")
    prompt_style: Literal["product", "lifestyle", "none"] = Field(
        "product", description="Style words added to diffusion prompts (none: the prompt as written).")
    ip_adapter: str | None = Field(None, max_length=MAX_NAME, description="IP-Adapter id/path (diffusion).")
    reference_image: Annotated[str | None, Cli(type="path", metavar="PATH")] = Field(
        None, max_length=4096, description="Style/reference photo path (img2img, IP-Adapter).")
    output_format: Annotated[Literal["png", "jpeg", "webp"], Cli(flags=("--format",))] = Field(
        "png", description="Image format of the candidates.")
    shadow: bool = Field(True, description="Add contact and cast shadows.")
    # -- H17: camera view, the seller's own background, upscaling cap ------------------------
    view: Literal["auto", "front", "high", "top"] = Field(
        "auto", description="Camera view of the scene: front | high | top (flat lay, seen from "
                            "above) | auto (estimated from the photo; the notes say which).")
    background: str | None = Field(
        None, max_length=4096, description="Your own background photo: the product is placed on it "
                                           "(canvas = its size unless size/preset/aspect is given).")
    position: str | None = Field(
        None, max_length=40, description="Where the product's base centre goes, X,Y as fractions "
                                         "of the canvas (0..1), e.g. 0.5,0.85; default automatic.")
    max_upscale: float | None = Field(
        None, ge=1.0, le=16.0, description="Never enlarge the product more than this factor "
                                           "(the product gets smaller instead); default no cap.")
    # -- H13: a saved look (scene recipe), applied up front by packshot.looks.resolve_request ---
    look: Annotated[str | None, Cli(metavar="NAME")] = Field(
        None, max_length=80, description="A saved look (scene recipe: prompt, engine settings, canvas, "
                                         "view, light, seed) to apply; options given here override it.")

    # -- H12: trained adapters (personalisation) and product-fidelity filtering ----------------
    adapters: Annotated[list[str], Cli(flags=("--adapter",), metavar="NAME|DIR[:WEIGHT]")] = Field(
        default_factory=list, max_length=MAX_ADAPTERS,
        description="A trained adapter (LoRA or textual inversion) by name or folder, optionally with "
                    ":WEIGHT (default 1.0); repeatable. '<product>' in the prompt becomes its trigger "
                    "token (diffusion).")
    min_similarity: float | None = Field(
        None, ge=0.0, le=1.0, description="Drop candidates whose generated product looks less like the "
                                          "reference photos than this (0..1); dropped ones are listed.")
    keep: int | None = Field(None, ge=1, le=16,
                             description="Return only the best KEEP of the n candidates (the others are "
                                         "listed as dropped, with their scores).")

    # every text field, whoever adds it: no NUL, no lone surrogate
    _text = field_validator("*")(_clean_text)

    @field_validator("size", "position")
    @classmethod
    def _parsed(cls, v, info):
        if v is not None:  # each parser raises with the value named
            (parse_size if info.field_name == "size" else parse_position)(v)
        return v

    @field_validator("adapters")
    @classmethod
    def _adapters(cls, v):
        for item in v:  # each parser raises with the value named
            parse_adapter(item)
        return v

    @model_validator(mode="after")
    def _exclusive(self):
        if self.preset is not None and self.size is not None:
            raise ValueError(f"give either preset ({self.preset!r}) or size ({self.size!r}), not both")
        if self.keep_framing and (self.preset or self.size or self.aspect != "original"):
            raise ValueError("keep_framing keeps the photo's own canvas: drop preset/size/aspect")
        if self.keep is not None and self.keep > self.n:
            raise ValueError(f"keep ({self.keep}) must not be more than n ({self.n})")
        return self

    def canvas_size(self) -> tuple[int, int] | None:
        return parse_size(self.size) if self.size else None


def validation_message(err: ValidationError) -> str:
    """A pydantic error as one line that names the field and the bad value."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "__root__")
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        value = e.get("input")
        shown = "" if isinstance(value, dict) or value is None else f" (got {value!r})"
        parts.append(f"{loc + ': ' if loc else ''}{msg}{shown}")
    return "; ".join(parts)


def build(model: type[BaseModel], data: dict) -> BaseModel:
    """Validate ``data`` into ``model``, raising InvalidInputError with a one-line message."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise InvalidInputError(validation_message(err)) from None


class TrainRequest(BaseModel):
    """Everything that decides a training run (``packshot train``, the library's ``packshot.train``,
    ``POST /api/v1/products/{id}/adapters`` and the training job). Photos are given separately (paths,
    or the product's photos in the API)."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field(..., max_length=MAX_NAME,
                      description="Base diffusion model the adapter is trained for: registry id or local "
                                  "folder (SD 1.x/2.x or SDXL family, text-to-image or inpainting).")
    method: Literal["lora", "dreambooth-lora", "textual-inversion"] = Field(
        "lora", description="lora: LoRA on the UNet; dreambooth-lora: LoRA on the UNet and text "
                            "encoder, with optional prior preservation; textual-inversion: one new "
                            "token embedding.")
    name: str | None = Field(None, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                             description="Adapter name (for --adapter NAME); default: the output "
                                         "folder's name.")
    token: str | None = Field(None, max_length=40,
                              description="Trigger token that stands for the product ('<product>' in "
                                          "prompts); default: a rare token chosen for the method.")
    product: str | None = Field(None, max_length=100,
                                description="What the product is ('ceramic mug'): the class word in "
                                            "captions and prior images; default: the captioner's noun "
                                            "or 'product'.")
    caption_template: str = Field("a photo of {token} {product}", max_length=200,
                                  description="Caption for every photo; {token} and {product} are "
                                              "filled in. A configured captioner adds its caption.")
    steps: int = Field(400, ge=1, le=20000, description="Optimiser steps.")
    learning_rate: float | None = Field(None, gt=0.0, le=1.0,
                                        description="Default: 1e-4 (LoRA), 5e-4 (textual inversion).")
    rank: int = Field(8, ge=1, le=256, description="LoRA rank.")
    resolution: int | None = Field(None, ge=64, le=2048,
                                   description="Training size in px; default: the family's (512 SD, "
                                               "1024 SDXL).")
    batch_size: int = Field(1, ge=1, le=16, description="Photos per step.")
    masked_loss: bool = Field(True, description="Loss only on the product (packshot's own cut-out), "
                                                "so the table it was shot on is not learned.")
    prior_preservation: bool = Field(False, description="Mix in base-model images of the class "
                                                        "(dreambooth-lora) so the class is not forgotten.")
    prior_images: int = Field(50, ge=1, le=1000, description="Class images for prior preservation.")
    prior_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the prior loss.")
    checkpoint_every: int = Field(100, ge=1, le=100000, description="Save a resumable checkpoint "
                                                                    "every K steps.")
    early_stop: int | None = Field(None, ge=1, le=100000,
                                   description="Stop when the smoothed loss has not improved for this "
                                               "many steps.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed (default: drawn and recorded).")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory.")
    adam_8bit: bool = Field(False, description="8-bit Adam (needs bitsandbytes and a GPU).")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field("no", description="Mixed precision (GPU).")

    _text = field_validator("*")(_clean_text)
