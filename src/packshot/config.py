"""Settings: one object, passed in. Nothing is read from the environment at import time.

``Settings.from_env()`` reads ``PACKSHOT_*`` variables once, where a process starts (CLI, server,
worker); library callers may build ``Settings(...)`` themselves.
"""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field


def default_data_dir() -> Path:
    """XDG: ``$XDG_DATA_HOME/packshot``, else ``~/.local/share/packshot``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "packshot"


def default_model_dir() -> Path:
    return default_data_dir() / "models"


class Settings(BaseModel):
    data_dir: Path = Field(default_factory=default_data_dir, description="Database, blobs, job queue.")
    model_dir: Path = Field(default_factory=default_model_dir,
                            description="Folder searched first for model weights (then the HF cache).")
    clip_model: str | None = Field(None, description="CLIP or CLIPSeg id/folder for text prompts "
                                   "(sam engine); default clip-vit-base-patch32, then clipseg.")
    captioner: str | None = Field(None, description="Captioning model id/folder (BLIP, BLIP-2 class) for scene "
                                  "suggestions and descriptions; none: measured from the photo only.")
    similarity_model: str | None = Field(None, description="Image encoder id/folder (DINOv2 or CLIP, local only) for "
                                         "the similarity of generated products to the reference photos; none: "
                                         "classical parts only (colour, shape, detail).")
    upscaler: str | None = Field(None, description="Default for requests that give no upscaler (diffusion "
                                 "background below the output size): upscaler id / .onnx path, hires or lanczos.")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N | mps")
    dtype: str = Field("auto", description="auto | float32 | float16 | bfloat16")
    max_pixels: int = Field(50_000_000, gt=0, description="Decompression-bomb limit per image.")
    max_upload_bytes: int = Field(40 * 1024 * 1024, gt=0)
    max_output_side: int = Field(4096, gt=0, description="Largest canvas side accepted.")
    resident_models: int = Field(2, ge=1, description="Loaded models kept in memory (LRU).")
    model_slots: int = Field(2, ge=1, description="Jobs that may run a model at once.")
    cpu_offload: bool = False
    attention_slicing: bool = False
    vae_tiling: bool = False
    allow_pickle_weights: bool = Field(False, description="Load .bin/.ckpt weights (unsafe).")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data_dir.")
    queue: str = Field("local", description="local (in-process) | celery")
    broker_url: str = "redis://127.0.0.1:6379/0"
    blob_url: str | None = Field(None, description="Blob storage: s3://bucket/prefix (AWS_* variables "
                                 "for credentials); default the folder <data_dir>/blobs.")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, R2, B2, Ceph); "
                                        "AWS_ENDPOINT_URL works too.")
    api_url: str | None = Field(None, description="Remote workers: the server's URL (jobs over HTTP).")
    worker_key: str | None = Field(None, description="Remote workers: the worker key for api_url.")
    api_keys: list[str] = Field(default_factory=list, description="If set, every route but /health needs one.")
    rate_limit_per_minute: int = Field(600, ge=1)
    # -- service hardening (H16) --
    decode_budget_bytes: int = Field(1024 * 1024 * 1024, gt=0,
                                     description="Memory the server's concurrent image decodes may use; "
                                                 "beyond it uploads wait, then get 503 + Retry-After.")
    max_job_pixels: int = Field(70_000_000, gt=0, description="n x canvas pixels one job may make.")
    metrics_key: str | None = Field(None, description="Key for GET /metrics (operators); without it "
                                                      "/metrics answers only callers on the server's host.")
    trusted_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
                                     description="Host header values served ('*' = any).")
    allowed_origins: list[str] = Field(default_factory=list,
                                       description="Other origins (scheme://host:port) allowed to POST.")
    header_timeout_s: float = Field(10.0, gt=0, description="A client must send its headers within this.")
    body_timeout_s: float = Field(30.0, gt=0, description="Longest silence while a request body arrives.")

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = os.environ
        values: dict = {}
        for name, field in cls.model_fields.items():
            raw = env.get(f"PACKSHOT_{name.upper()}")
            if raw is None:
                continue
            if field.annotation is bool:
                values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif name in ("api_keys", "trusted_hosts", "allowed_origins"):
                values[name] = [k.strip() for k in raw.split(",") if k.strip()]
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
