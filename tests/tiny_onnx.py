"""Tiny randomly-initialised ONNX models, written in the real ONNX file format (protobuf).

The ``onnx`` package is not a dependency (onnxruntime does not need it), so the few protobuf
messages a model needs (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto) are
encoded here with the protobuf wire format; field numbers are onnx.proto's. onnxruntime loads
these files through the same ``InferenceSession(path)`` call a real model takes.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _int(field: int, v: int) -> bytes:
    return _key(field, 0) + _varint(v)


def _bytes(field: int, v: bytes | str) -> bytes:
    v = v.encode() if isinstance(v, str) else v
    return _key(field, 2) + _varint(len(v)) + v


def _float(field: int, v: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", v)


FLOAT = 1  # TensorProto.DataType.FLOAT


def tensor(name: str, arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, np.float32)
    return b"".join(_int(1, d) for d in arr.shape) + _int(2, FLOAT) + _bytes(8, name) + _bytes(9, arr.tobytes())


def value_info(name: str, shape: tuple) -> bytes:
    dims = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in shape)
    tensor_type = _int(1, FLOAT) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def attr_ints(name: str, values) -> bytes:
    return _bytes(1, name) + b"".join(_int(8, v) for v in values) + _int(20, 7)  # type INTS


def attr_float(name: str, v: float) -> bytes:
    return _bytes(1, name) + _float(2, v) + _int(20, 1)  # type FLOAT


def node(op: str, inputs, outputs, attrs=()) -> bytes:
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
            + _bytes(4, op) + b"".join(_bytes(5, a) for a in attrs))


def model(nodes, inputs, outputs, initializers=(), opset: int = 13) -> bytes:
    graph = (b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "tiny")
             + b"".join(_bytes(5, t) for t in initializers)
             + b"".join(_bytes(11, v) for v in inputs) + b"".join(_bytes(12, v) for v in outputs))
    return _int(1, 8) + _bytes(2, "packshot-tests") + _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, opset))


def cutout_model(path: Path, side: int = 64, sigmoid: bool = True, seed: int = 0) -> Path:
    """A salient-object-shaped model: ``input`` 1x3xSxS -> 3x3 conv (random) -> [sigmoid] -> 1x1xSxS.

    The output follows the image's brightness (a bright object on a dark ground comes out as
    foreground), so tests can check geometry end to end.
    """
    rng = np.random.default_rng(seed)
    w = (rng.normal(0, 0.05, (1, 3, 3, 3)) + 0.4).astype(np.float32)
    b = np.zeros(1, np.float32)
    nodes = [node("Conv", ["input", "w", "b"], ["logits" if sigmoid else "out"],
                  [attr_ints("pads", (1, 1, 1, 1)), attr_ints("kernel_shape", (3, 3))])]
    if sigmoid:
        nodes.append(node("Sigmoid", ["logits"], ["out"]))
    data = model(nodes, [value_info("input", (1, 3, side, side))], [value_info("out", (1, 1, side, side))],
                 [tensor("w", w), tensor("b", b)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def classifier_model(path: Path, side: int = 32) -> Path:
    """A model of the wrong kind: 1x3xSxS -> global average pool -> 1x3x1x1 (not a 1-channel map)."""
    data = model([node("GlobalAveragePool", ["input"], ["out"])], [value_info("input", (1, 3, side, side))],
                 [value_info("out", (1, 3, 1, 1))])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
