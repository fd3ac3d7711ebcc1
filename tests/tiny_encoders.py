"""Tiny, randomly initialised image encoders in the real on-disk layout, for the similarity score.

``build_tiny_dinov2`` writes what ``Dinov2Model.save_pretrained`` + ``BitImageProcessor`` write for
facebook/dinov2-*; ``build_tiny_clip_vision`` what ``CLIPVisionModelWithProjection`` +
``CLIPImageProcessor`` write. packshot loads them through its public path
(``Settings(similarity_model=folder)``), like users' real weights. Random weights give meaningless
embeddings: tests check plumbing and ranges, never orderings.
"""
from __future__ import annotations

from pathlib import Path

SIDE = 32   # model input side (real: 224)


def build_tiny_dinov2(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import BitImageProcessorPil, Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       image_size=SIDE, patch_size=8)
    out = Path(out)
    Dinov2Model(cfg).eval().save_pretrained(out)
    # dinov2's own preprocessor: resize shortest edge, centre crop, ImageNet mean/std
    BitImageProcessorPil(size={"shortest_edge": SIDE}, crop_size={"height": SIDE, "width": SIDE},
                         do_center_crop=True, do_convert_rgb=True,
                         image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(out)
    return out


def build_tiny_clip_vision(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=SIDE, patch_size=8, projection_dim=16)
    out = Path(out)
    CLIPVisionModelWithProjection(cfg).eval().save_pretrained(out)
    CLIPImageProcessorPil(size={"shortest_edge": SIDE}, crop_size={"height": SIDE, "width": SIDE}).save_pretrained(out)
    return out
