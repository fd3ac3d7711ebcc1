"""A tiny randomly-initialised x2 / x4 super-resolution network in the real ONNX file format.

``input`` N x 3 x H x W (RGB in [0, 1]) -> two convolutions (a fixed 1x1 that copies each channel
to its s*s sub-pixels, plus a random 3x3 -> ReLU -> 3x3 residual) -> DepthToSpace(s) -> N x 3 x sH x sW.
The output is the input enlarged (nearest) plus small random detail: a real upscaler's shape, with
random weights. Written with the protobuf helpers of :mod:`tiny_onnx` (the ``onnx`` package is not
installed); loaded by onnxruntime through the same path as a real model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tiny_onnx import _bytes, _int, attr_ints, model, node, tensor, value_info


def _attr_int(name: str, v: int) -> bytes:
    return _bytes(1, name) + _int(3, v) + _int(20, 2)  # AttributeProto: i, type INT


def upscaler_model(path: Path, scale: int = 2, feat: int = 8, side: int | None = None, seed: int = 0) -> Path:
    """Write the network to ``path``; ``side`` fixes the input to side x side (else any H x W)."""
    rng = np.random.default_rng(seed)
    ss = scale * scale
    copy = np.zeros((3 * ss, 3, 1, 1), np.float32)
    for k in range(ss):
        copy[k * 3:(k + 1) * 3, :, 0, 0] = np.eye(3)  # DepthToSpace (DCR): channel k*3 + c -> sub-pixel k of c
    w1 = rng.normal(0, 0.2, (feat, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.02, (3 * ss, feat, 3, 3)).astype(np.float32)
    pads, k3 = attr_ints("pads", (1, 1, 1, 1)), attr_ints("kernel_shape", (3, 3))
    nodes = [node("Conv", ["input", "copy"], ["base"], [attr_ints("kernel_shape", (1, 1))]),
             node("Conv", ["input", "w1"], ["h1"], [pads, k3]),
             node("Relu", ["h1"], ["r1"]),
             node("Conv", ["r1", "w2"], ["detail"], [pads, k3]),
             node("Add", ["base", "detail"], ["sum"]),
             node("DepthToSpace", ["sum"], ["output"], [_attr_int("blocksize", scale)])]
    h, w = (side, side) if side else ("h", "w")
    oh, ow = (side * scale, side * scale) if side else ("oh", "ow")
    data = model(nodes, [value_info("input", ("n", 3, h, w))], [value_info("output", ("n", 3, oh, ow))],
                 [tensor("copy", copy), tensor("w1", w1), tensor("w2", w2)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
