"""Render the shipped example photo examples/mug.jpg (a rendered product, so the project may ship it).

A shaded ceramic mug with a real hole in its handle, on a light-grey paper sweep with a soft
contact shadow, sensor noise and JPEG compression: an ordinary "seller photo on a plain backdrop".
Licence: CC0 (rendered by this script).   usage: python examples/render_example.py
"""
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

W, H, SS = 1600, 1200, 3


def main(out=Path(__file__).with_name("mug.jpg")):
    rng = np.random.default_rng(7)
    Hs, Ws = H * SS, W * SS
    m = np.zeros((Hs, Ws), np.uint8)
    cx, cy, bw, bh = Ws // 2 - Ws // 18, int(Hs * 0.52), Ws // 7, int(Hs * 0.26)
    cv2.rectangle(m, (cx - bw, cy - bh), (cx + bw, cy + bh), 255, -1)
    cv2.ellipse(m, (cx, cy + bh), (bw, bh // 7), 0, 0, 180, 255, -1)
    cv2.ellipse(m, (cx, cy - bh), (bw, bh // 7), 0, 0, 360, 255, -1)
    hr = int(bh * 0.5)
    cv2.ellipse(m, (cx + bw, cy - bh // 10), (int(hr * 0.9), hr), 0, -90, 90, 255, hr // 3)
    alpha = cv2.resize(m.astype(np.float32) / 255, (W, H), interpolation=cv2.INTER_AREA)
    # backdrop: paper sweep, lighter at the top
    t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    bg = np.broadcast_to(np.float32([0.93, 0.93, 0.92]) * (1 - t) + np.float32([0.82, 0.82, 0.81]) * t,
                         (H, W, 3)).copy()
    ys, xs = np.nonzero(alpha > 0.5)
    sh = np.zeros((H, W), np.float32)
    cv2.ellipse(sh, (int(xs.mean()) + 20, int(ys.max()) - 4), (int((xs.max() - xs.min()) * 0.55), 26), 0, 0, 360, 1, -1)
    bg *= 1 - (cv2.GaussianBlur(sh, (0, 0), 18) * 0.45)[..., None]
    # mug: teal glaze, cylindrical shading, a highlight, the inner rim darker
    xx = np.linspace(0, 1, W, dtype=np.float32)[None, :]
    x_rel = np.clip((xx * W - cx / SS) / (bw / SS), -1.2, 1.2)
    shade = 0.55 + 0.45 * np.cos(np.clip(x_rel + 0.35, -1.57, 1.57))
    spec = np.exp(-((x_rel + 0.45) ** 2) / 0.01) * 0.35
    glaze = np.float32([0.10, 0.50, 0.55])
    fg = glaze[None, None, :] * shade[..., None] + spec[..., None]
    fg = np.broadcast_to(fg, (H, W, 3)).copy()
    rim = np.zeros((H, W), np.float32)
    cv2.ellipse(rim, (cx // SS, (cy - bh) // SS), (bw // SS - 10, bh // 7 // SS - 4), 0, 0, 360, 1, -1)
    fg *= 1 - 0.55 * cv2.GaussianBlur(rim, (0, 0), 2)[..., None]
    img = fg * alpha[..., None] + bg * (1 - alpha[..., None])
    img += rng.normal(0, 0.008, img.shape).astype(np.float32)
    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(out, quality=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
