"""A salient-object ONNX model (U2-Net, IS-Net, BiRefNet, RMBG) run with onnxruntime.

``CutoutModel(path, spec_extra)`` checks the file and the graph once (one input ``N x 3 x S x S``,
a map-shaped first output), keeps one onnxruntime session, and ``predict(rgb)`` returns the
model's foreground map in [0, 1] at the model's input size. Input size and normalisation come
from the catalog entry (said once per model in :mod:`packshot.models.catalog`); a bare ``.onnx``
file given by path gets U2-Net's (the input side is read from the graph).

Sessions are cached per (file, size, mtime, providers): loading is done once per process.
Providers: CUDA, then CoreML, then CPU, whichever this onnxruntime build has. onnxruntime is
imported lazily (never at CLI start-up).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..errors import DependencyMissingError, ModelError

_DEFAULT = {"input": 320, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "scale": "max",
            "output": "minmax"}
_SESSIONS: dict[tuple, Any] = {}
_LOCK = threading.Lock()
_PREFERRED = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "CPUExecutionProvider")


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise DependencyMissingError("the learned cut-out engine (onnxruntime)", "core") from None
    return onnxruntime


def providers() -> list[str]:
    available = set(_ort().get_available_providers())
    return [p for p in _PREFERRED if p in available] or ["CPUExecutionProvider"]


def _session(path: Path, expected_bytes: int | None):
    try:
        st = path.stat()
    except OSError:
        raise ModelError(f"{path}: no such model file") from None
    if expected_bytes and st.st_size != expected_bytes:
        raise ModelError(f"{path} is truncated or not the published file ({st.st_size} bytes, expected "
                         f"{expected_bytes}); fetch it again with packshot models pull")
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, tuple(providers()))
    with _LOCK:
        if key in _SESSIONS:
            return _SESSIONS[key]
        ort = _ort()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # no busy-waiting worker threads: on a shared or busy CPU (job threads, other processes)
        # spinning threads slowed a 320 px u2netp run ~10x here
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=list(key[3]))
        except Exception as e:  # onnxruntime raises its own types for corrupt/truncated graphs
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise ModelError(f"{path} is not a loadable ONNX model ({first})") from None
        _SESSIONS[key] = sess
        return sess


@dataclass
class CutoutModel:
    """One loaded cut-out model: ``predict(rgb)`` -> float32 map in [0, 1] at ``side`` x ``side``."""

    path: Path
    session: Any
    input_name: str
    side: int
    mean: np.ndarray
    std: np.ndarray
    scale_max: bool
    sigmoid: bool

    @classmethod
    def load(cls, path: Path, extra: dict | None = None) -> "CutoutModel":
        extra = {**_DEFAULT, **(extra or {})}
        path = Path(path)
        sess = _session(path, extra.get("bytes"))
        inputs, outputs = sess.get_inputs(), sess.get_outputs()
        shape = list(inputs[0].shape) if inputs else []
        if len(inputs) != 1 or len(shape) != 4 or shape[1] not in (3, "3"):
            raise ModelError(f"{path} is not a cut-out model: it takes {[(i.name, i.shape) for i in inputs]}, "
                             f"a cut-out model takes one N x 3 x H x W image")
        out = list(outputs[0].shape) if outputs else []
        if len(out) not in (3, 4) or (len(out) == 4 and out[1] not in (1, "1")):
            raise ModelError(f"{path} is not a cut-out model: its first output is {out}, "
                             f"a cut-out model outputs a 1-channel map")
        side = shape[2] if isinstance(shape[2], int) and shape[2] > 0 else int(extra["input"])
        return cls(path=path, session=sess, input_name=inputs[0].name, side=int(side),
                   mean=np.asarray(extra["mean"], np.float32), std=np.asarray(extra["std"], np.float32),
                   scale_max=extra.get("scale") == "max", sigmoid=extra.get("output") == "sigmoid")

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Foreground map of an HxWx3 uint8 RGB image, float32 ``side`` x ``side`` in [0, 1]."""
        # PIL's Lanczos, as rembg does for these models: its published pre-processing, matched exactly
        x = np.asarray(Image.fromarray(rgb).resize((self.side, self.side), Image.LANCZOS), np.float32)
        x /= max(float(x.max()), 1e-6) if self.scale_max else 255.0
        x = (x - self.mean) / self.std
        blob = np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)
        try:
            raw = self.session.run(None, {self.input_name: blob})[0]
        except Exception as e:
            raise ModelError(f"{self.path}: inference failed ({type(e).__name__}: {str(e)[:120]})") from None
        m = np.asarray(raw, np.float32).reshape(raw.shape[-2], raw.shape[-1])
        if self.sigmoid:
            m = 1.0 / (1.0 + np.exp(-m))
        else:
            lo, hi = float(m.min()), float(m.max())
            m = (m - lo) / (hi - lo) if hi - lo > 1e-6 else np.zeros_like(m)
        if m.shape != (self.side, self.side):
            m = cv2.resize(m, (self.side, self.side), interpolation=cv2.INTER_LINEAR)
        return np.clip(m, 0, 1).astype(np.float32)


def upsample(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A model map resized to ``size`` (w, h) with Lanczos (as rembg's post-processing), in [0, 1]."""
    img = Image.fromarray(np.round(np.clip(prob, 0, 1) * 255).astype(np.uint8))
    return np.asarray(img.resize(size, Image.LANCZOS), np.float32) / 255
