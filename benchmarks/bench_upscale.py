"""Upscaler timing: 1024x1024 background -> 2048x2048 through packshot's tiled ONNX upscaler.

Two networks, both RANDOM weights (real weights cannot be downloaded on the build machine), both
written as real .onnx files and run through ``upscale.model_upscale`` (the engine's path):

* the tiny x2 test net (tests/tiny_upscaler.py): the cost of the tiling itself;
* an RRDBNet the size of Real-ESRGAN x4plus (23 RRDB blocks, 64 features, 32 growth, 16.7 M
  parameters; same graph ops as the published export): the realistic compute. On a CPU it is
  timed on a few fixed 128 px tiles (the Qualcomm export's tile) and the full image is
  extrapolated from the tile count.

Run: .venv/bin/python benchmarks/bench_upscale.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tiny_onnx import _bytes, _float, _int, attr_ints, model, node, tensor, value_info  # noqa: E402
from tiny_upscaler import upscaler_model  # noqa: E402

from packshot.backgrounds.diffusion import upscale as U  # noqa: E402
from packshot.config import Settings  # noqa: E402


def _attr_int(name, v):
    return _bytes(1, name) + _int(3, v) + _int(20, 2)


def _attr_float(name, v):
    return _bytes(1, name) + _float(2, v) + _int(20, 1)


class _G:
    def __init__(self, seed=0):
        self.nodes, self.inits, self.n, self.rng, self.params = [], [], 0, np.random.default_rng(seed), 0

    def name(self, p="t"):
        self.n += 1
        return f"{p}{self.n}"

    def conv(self, x, cin, cout, lrelu=False):
        w, b, y = self.name("w"), self.name("b"), self.name()
        self.inits += [tensor(w, self.rng.normal(0, 0.02, (cout, cin, 3, 3))), tensor(b, np.zeros(cout))]
        self.params += cout * cin * 9 + cout
        attrs = [attr_ints("pads", (1, 1, 1, 1)), attr_ints("kernel_shape", (3, 3))]
        self.nodes.append(node("Conv", [x, w, b], [y], attrs))
        if lrelu:
            z = self.name()
            self.nodes.append(node("LeakyRelu", [y], [z], [_attr_float("alpha", 0.2)]))
            return z
        return y

    def op(self, op, ins, attrs=()):
        y = self.name()
        self.nodes.append(node(op, ins, [y], attrs))
        return y


def rrdbnet_x4(path: Path, blocks: int = 23, nf: int = 64, gc: int = 32, side: int = 128) -> int:
    g = _G()
    g.inits += [tensor("k02", np.array([0.2], np.float32)), tensor("scales", np.array([1, 1, 2, 2], np.float32)),
                tensor("roi", np.zeros(0, np.float32))]
    fea = g.conv("input", 3, nf)
    body = fea
    for _ in range(blocks):
        x_rrdb = body
        for _ in range(3):                       # residual dense block
            feats = [body]
            for i in range(4):
                cat = feats[0] if len(feats) == 1 else g.op("Concat", feats, [_attr_int("axis", 1)])
                feats.append(g.conv(cat, nf + i * gc, gc, lrelu=True))
            x5 = g.conv(g.op("Concat", feats, [_attr_int("axis", 1)]), nf + 4 * gc, nf)
            body = g.op("Add", [g.op("Mul", [x5, "k02"]), body])
        body = g.op("Add", [g.op("Mul", [body, "k02"]), x_rrdb])
    fea = g.op("Add", [fea, g.conv(body, nf, nf)])
    for _ in range(2):
        up = g.op("Resize", [fea, "roi", "scales"], [_bytes(1, "mode") + _bytes(4, "nearest") + _int(20, 3)])
        fea = g.conv(up, nf, nf, lrelu=True)
    out = g.conv(g.conv(fea, nf, nf, lrelu=True), nf, 3)
    g.nodes.append(node("Identity", [out], ["output"]))
    path.write_bytes(model(g.nodes, [value_info("input", (1, 3, side, side))],
                           [value_info("output", (1, 3, 4 * side, 4 * side))], g.inits, opset=13))
    return g.params


def main() -> None:
    s = Settings()
    rng = np.random.default_rng(0)
    rgb = (rng.random((1024, 1024, 3)) * 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        tiny = U.check_upscaler(str(upscaler_model(Path(tmp) / "tiny-x2.onnx", 2)), s)
        t = time.perf_counter()
        out, passes = U.model_upscale(tiny, rgb, (2048, 2048))
        t_tiny = time.perf_counter() - t
        big_path = Path(tmp) / "rrdb-x4.onnx"
        params = rrdbnet_x4(big_path)
        t = time.perf_counter()
        big = U.check_upscaler(str(big_path), s)          # load + probe (runs one tile)
        t_load = time.perf_counter() - t
        tile = rgb[:128, :128]
        times = []
        for _ in range(2):
            t = time.perf_counter()
            U.run_tiled(big, tile)
            times.append(time.perf_counter() - t)
        per_tile = min(times)
        ov = min(U.OVERLAP, big.tile // 4)
        n = len(U._starts(1024, big.tile, ov)) ** 2
    print("| network | weights | params | 1024² -> 2048² | notes |\n|---|---|---|---|---|")
    print(f"| tiny x2 test net (tests/tiny_upscaler.py) | random | 1.3 k | {t_tiny:.1f} s measured | "
          f"{passes} pass, 256 px tiles (4 x 4 + overlap) |")
    print(f"| RRDBNet x4 (Real-ESRGAN x4plus size) | random | {params / 1e6:.1f} M | "
          f"~{per_tile * n / 60:.0f} min estimated | {per_tile:.1f} s per 128 px tile x {n} tiles; "
          f"load+probe {t_load:.1f} s; then area 4096²->2048² |")


if __name__ == "__main__":
    main()
