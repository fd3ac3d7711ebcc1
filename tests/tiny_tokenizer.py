"""An offline CLIP tokenizer for the tiny test models (no hub access): the byte-level alphabet,
its ``</w>`` forms, a few merges and bos/eos, as transformers 5 builds it from a vocab and merges."""
from __future__ import annotations


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP byte-level alphabet: 256 printable stand-ins for the 256 byte values."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_clip_tokenizer(merges: list[tuple[str, str]], max_length: int = 77):
    from transformers import CLIPTokenizer

    syms = _bytes_to_unicode()
    vocab: dict[str, int] = {}
    for s in syms:
        vocab[s] = len(vocab)
    for s in syms:
        vocab[s + "</w>"] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)
