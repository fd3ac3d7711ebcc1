"""ControlNet conditioning: control images at working size, and how the ControlNet is fed.

* ``canny``: edges of the product at working size (never edges computed at canvas size and then
  shrunk to faint grey). A canny map is black outside the product, which a ControlNet reads as
  "no edges here" and answers with a blank backdrop; so the ControlNet's residuals are applied only
  over the product and a margin around it (``region``): the backdrop is left to the prompt.
* ``depth``: a pseudo-depth of the layout (floor, wall, product), meaningful everywhere.
* 9-channel inpainting ControlNets (Yahoo's photo-background-generation, made with
  ``ControlNetModel.from_unet`` from SD2-inpainting): the control image is the inverted product
  mask, and the ControlNet reads the same 9-channel input as the UNet (noisy latents + mask +
  masked-image latents). Stock diffusers feeds ControlNets the 4-channel latents, so the loaded
  ControlNet's ``forward`` is wrapped once (:func:`patch_controlnet`) to append the 5 extra
  channels that :func:`inpaint_extra` computes with the pipeline's own processors and VAE.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ...types import Layer

REGION_MARGIN = 1 / 16   # canny ControlNet acts within this fraction of the short side around the product


def canny_control(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Canny edges of the placed product (and its outline), HxWx3 uint8, white edges on black.

    ``rgb``/``alpha`` are at working size, so the edges are one pixel wide where the model reads them."""
    a = alpha[..., None]
    grey = np.full_like(rgb, 127)
    comp = np.clip(rgb * a + grey * (1 - a), 0, 255).astype(np.uint8)
    edges = cv2.Canny(cv2.cvtColor(comp, cv2.COLOR_RGB2GRAY), 100, 200)
    outline = cv2.Canny((alpha >= 0.5).astype(np.uint8) * 255, 100, 200)
    e = np.maximum(edges, outline)
    return np.dstack([e, e, e])


def control_region(alpha: np.ndarray) -> np.ndarray:
    """float32 HxW in [0, 1]: 1 on the product and a soft margin around it, 0 on the backdrop."""
    m = (alpha >= 0.5).astype(np.uint8)
    r = max(2, round(REGION_MARGIN * min(alpha.shape)))
    grown = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return cv2.GaussianBlur(grown.astype(np.float32), (0, 0), r / 2.0)


def mask_control(alpha: np.ndarray) -> np.ndarray:
    """The inverted product mask (white = background to paint) as an RGB control image (Yahoo's input)."""
    inv = np.where(alpha >= 0.5, 0, 255).astype(np.uint8)
    return np.dstack([inv, inv, inv])


def depth_control(layer: Layer) -> np.ndarray:
    """Pseudo-depth of the layout (bright = near), HxWx3 uint8, for a depth ControlNet.

    No depth model: a floor that comes nearer towards the bottom of the canvas (0.15 -> 0.55 below
    the product's base line, a far wall above it) and the product as a near, gently rounded body
    (0.75..0.95 from its distance-to-edge). Enough to pin the product's place and silhouette.
    """
    H, W = layer.alpha.shape
    y = np.arange(H, dtype=np.float32)[:, None]
    floor = layer.placement.floor_y if layer.placement.floor_y is not None else int(H * 0.75)
    horizon = max(0, min(H - 1, int(floor - 0.35 * H)))
    depth = np.where(y < horizon, 0.15, 0.15 + 0.4 * (y - horizon) / max(1, H - 1 - horizon))
    depth = np.broadcast_to(depth, (H, W)).astype(np.float32).copy()
    m = (layer.alpha >= 0.5).astype(np.uint8)
    if m.any():
        dist = cv2.distanceTransform(m, cv2.DIST_L2, 5)
        body = 0.75 + 0.2 * np.sqrt(dist / max(1.0, float(dist.max())))
        depth = np.where(m > 0, body, depth)
    d = (np.clip(depth, 0, 1) * 255).round().astype(np.uint8)
    return np.dstack([d, d, d])


# -- feeding the ControlNet ----------------------------------------------------------------------------

def patch_controlnet(cn: Any) -> None:
    """Wrap ``cn.forward`` (once) so that, while ``cn._packshot`` holds them, it appends the
    inpainting channels to its input (9-channel ControlNets) and scales its residuals by a spatial
    region. With nothing set it is the stock forward."""
    if getattr(cn, "_packshot", None) is not None:
        return
    import torch
    import torch.nn.functional as F

    base = type(cn).forward
    cn._packshot = {}

    def forward(sample, timestep, *args, **kwargs):
        st = cn._packshot
        extra = st.get("extra")
        if extra is not None:
            extra = extra.to(device=sample.device, dtype=sample.dtype)
            sample = torch.cat([sample, extra.expand(sample.shape[0], -1, -1, -1)], dim=1)
        out = base(cn, sample, timestep, *args, **kwargs)
        region = st.get("region")
        if region is None:
            return out
        down, mid = (out[0], out[1]) if isinstance(out, tuple) else (out.down_block_res_samples,
                                                                     out.mid_block_res_sample)

        def scaled(t):
            r = F.interpolate(region.to(device=t.device, dtype=t.dtype), size=t.shape[-2:], mode="area")
            return t * r

        down = tuple(scaled(d) for d in down)
        mid = scaled(mid)
        if isinstance(out, tuple):
            return (down, mid)
        out.down_block_res_samples, out.mid_block_res_sample = down, mid
        return out

    cn.forward = forward


def inpaint_extra(pipe: Any, init, mask) -> Any:
    """(1, 5, h/8, w/8) tensor: the latent mask and the masked-image latents, as the inpainting
    pipeline builds them for its 9-channel UNet (its own processors; the VAE's mean, no sampling,
    so the seeds' random streams are untouched)."""
    import torch
    import torch.nn.functional as F

    w, h = init.size
    device = pipe._execution_device
    vae = pipe.vae
    image = pipe.image_processor.preprocess(init, height=h, width=w).to(device=device, dtype=vae.dtype)
    m = pipe.mask_processor.preprocess(mask, height=h, width=w).to(device=device, dtype=vae.dtype)
    masked = image * (m < 0.5)
    with torch.inference_mode():
        latents = vae.encode(masked).latent_dist.mode() * vae.config.scaling_factor
    m_lat = F.interpolate(m, size=latents.shape[-2:])
    return torch.cat([m_lat, latents], dim=1)


def set_control_state(pipe: Any, extra: Any = None, region: np.ndarray | None = None) -> None:
    """Set (or with no arguments clear) what the patched ControlNet of ``pipe`` appends and scales by."""
    cn = getattr(pipe, "controlnet", None)
    if cn is None or getattr(cn, "_packshot", None) is None:
        return
    st = {}
    if extra is not None:
        st["extra"] = extra
    if region is not None:
        import torch
        st["region"] = torch.from_numpy(np.ascontiguousarray(region, dtype=np.float32))[None, None]
    cn._packshot = st
