"""Tiny, randomly initialised SAM / CLIP / CLIPSeg checkpoints in the real on-disk layout.

Each builder writes what ``save_pretrained`` writes for the real models (config.json,
model.safetensors, preprocessor_config.json, tokenizer files) so the code under test loads them
through the same path as users' real weights (``--sam-model PATH``, ``settings.model_dir/<id>``).
Random weights give arbitrary masks: tests check plumbing and contracts, not quality.
"""
from __future__ import annotations

from tiny_tokenizer import tiny_clip_tokenizer

from pathlib import Path

SAM_IMAGE_SIZE = 128   # model input side (real SAM: 1024); embedding 8x8, low-res masks 32x32
TEXT_MAX_LEN = 16


def tiny_tokenizer():
    """The shared offline CLIP tokenizer (tests/tiny_tokenizer.py) with this file's merges."""
    return tiny_clip_tokenizer([("t", "h"), ("th", "e</w>"), ("m", "u"), ("mu", "g</w>"), ("o", "f</w>")], max_length=TEXT_MAX_LEN)


def build_tiny_sam(out: Path, seed: int = 0, init_range: float = 0.2) -> Path:
    """A ~0.2 MB SamModel (2-layer ViT, 8x8 embedding) + SamImageProcessorPil, saved to ``out``.

    ``init_range`` 0.2 (instead of 0.02) makes the random decoder's masks depend visibly on the
    prompts, so tests can tell prompts apart.
    """
    import torch
    from transformers import SamConfig, SamImageProcessorPil, SamModel
    from transformers.models.sam.configuration_sam import (SamMaskDecoderConfig, SamPromptEncoderConfig,
                                                           SamVisionConfig)

    torch.manual_seed(seed)
    s = SAM_IMAGE_SIZE
    vision = SamVisionConfig(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2,
                             image_size=s, patch_size=16, window_size=4, global_attn_indexes=[1],
                             num_pos_feats=16, mlp_dim=64, initializer_range=init_range)
    prompt = SamPromptEncoderConfig(hidden_size=32, image_size=s, patch_size=16, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                                   iou_head_hidden_dim=32)
    config = SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder,
                       initializer_range=init_range)
    model = SamModel(config).eval()
    out = Path(out)
    model.save_pretrained(out)
    low = s // 4
    SamImageProcessorPil(size={"longest_edge": s}, pad_size={"height": s, "width": s},
                         mask_size={"longest_edge": low},
                         mask_pad_size={"height": low, "width": low}).save_pretrained(out)
    return out


def _text_config(tok) -> dict:
    return dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=TEXT_MAX_LEN, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def build_tiny_clip(out: Path, seed: int = 0) -> Path:
    """A tiny CLIPModel (32 px images, 16 tokens) + CLIPImageProcessorPil + CLIPTokenizer."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=32, patch_size=8)
    model = CLIPModel(CLIPConfig(text_config=_text_config(tok), vision_config=vision, projection_dim=16)).eval()
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def build_tiny_clipseg(out: Path, seed: int = 0) -> Path:
    """A tiny CLIPSegForImageSegmentation (32 px) + ViTImageProcessorPil + CLIPTokenizer."""
    import torch
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, ViTImageProcessorPil

    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=32, patch_size=8)
    config = CLIPSegConfig(text_config=_text_config(tok), vision_config=vision, projection_dim=16,
                           extract_layers=[1], reduce_dim=16, decoder_num_attention_heads=2,
                           decoder_intermediate_size=32)
    model = CLIPSegForImageSegmentation(config).eval()
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    ViTImageProcessorPil(size={"height": 32, "width": 32}, image_mean=[0.485, 0.456, 0.406],
                         image_std=[0.229, 0.224, 0.225]).save_pretrained(out)
    return out


def build_model_dir(root: Path, sam: bool = True, clip: bool = True, clipseg: bool = False) -> Path:
    """A ``PACKSHOT_MODEL_DIR`` with the tiny models under their registry ids."""
    root = Path(root)
    if sam:
        build_tiny_sam(root / "sam-vit-base")
    if clip:
        build_tiny_clip(root / "clip-vit-base-patch32")
    if clipseg:
        build_tiny_clipseg(root / "clipseg")
    return root
