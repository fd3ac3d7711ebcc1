"""A tiny randomly initialised BLIP captioner saved in the real on-disk layout (save_pretrained:
config.json, model.safetensors, the BERT tokenizer files, preprocessor_config.json), built offline."""
from __future__ import annotations

from pathlib import Path

# words the random decoder can emit: scene words, product nouns and filler
WORDS = ("a", "photo", "of", "the", "on", "with", "white", "marble", "table", "wooden", "floor", "soft",
         "window", "light", "from", "left", "leaves", "shoes", "bottle", "mug", "cookie", "blue", "wall",
         "warm", "calm", "and", "in", "pair", "brown", "leather", "stone", "water")


def build_tiny_blip(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil, \
        BlipProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True, bos_token="[DEC]", model_max_length=64)
    ids = {t: i for i, t in enumerate(vocab)}
    cfg = BlipConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, encoder_hidden_size=32, max_position_embeddings=64,
                         bos_token_id=ids["[DEC]"], pad_token_id=ids["[PAD]"], sep_token_id=ids["[SEP]"],
                         eos_token_id=ids["[SEP]"]),
        projection_dim=32, image_text_hidden_size=32)
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(cfg).eval()
    model.save_pretrained(folder)
    proc = BlipProcessor(image_processor=BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer=tok)
    proc.save_pretrained(folder)
    return folder
