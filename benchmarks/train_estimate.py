"""An ESTIMATE of LoRA training speed and memory for real SD 1.5 and SDXL on a GPU, from arithmetic
on the real architectures (no weights, no GPU needed).

The UNets are built from the published configs (runwayml SD 1.5 / SDXL 1.0 base ``unet/config.json``)
on PyTorch's ``meta`` device: no memory, no weights. One training step (noise prediction, batch 1,
LoRA so frozen weights need no gradient) is traced with ``torch.utils.flop_counter.FlopCounterMode``
(FLOPs of forward and backward) and ``saved_tensors_hooks`` (bytes autograd keeps for the backward
pass = activation memory), with and without gradient checkpointing. Text-encoder and VAE sizes are
their published parameter counts (CLIP ViT-L/14 text 123 M, OpenCLIP bigG text 695 M, VAE 84 M).

    .venv/bin/python benchmarks/train_estimate.py

Converting FLOPs to time needs the GPU's sustained throughput at batch 1, which is far below peak:
the table uses an A100's dense fp16/bf16 peak of 312 TFLOP/s at 5-12 % utilisation. Basis: the
diffusers LoRA guide's SD 1.5 example (512 px, batch 1, gradient accumulation 4, 15 000 steps)
takes about 5 hours on an 11 GB RTX 2080 Ti, i.e. ~3.3 forward/backward passes per second, ~11-14 %
of that card's tensor-core fp16 peak with fp32 accumulation (~54 TFLOP/s) once the per-step VAE
encode is counted; batch-1 work fills a larger A100 less well. Say "estimate" wherever these
figures are quoted.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SD15 = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SDXL = dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
            cross_attention_dim=2048, attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10),
            use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
OTHER_PARAMS = {"sd15": 123e6 + 84e6, "sdxl": 123e6 + 695e6 + 84e6}   # text encoder(s) + VAE
A100_PEAK = 312e12
UTILISATION = (0.05, 0.12)
CUDA_OVERHEAD_GB = 1.0      # CUDA context, cuBLAS/cuDNN workspaces, allocator slack
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def _trace(cfg: dict, px: int, checkpointing: bool) -> dict:
    import torch
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        unet = UNet2DConditionModel(**cfg)
    unet.requires_grad_(False)
    params = sum(p.numel() for p in unet.parameters())
    lora = sum(m.in_features + m.out_features for n, m in unet.named_modules()
               if isinstance(m, torch.nn.Linear) and n.endswith(LORA_TARGETS))       # x rank
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    lat = px // 8
    x = torch.randn(1, 4, lat, lat, device="meta", requires_grad=True)   # stands for the LoRA path's need of grads
    enc = torch.randn(1, 77, cfg["cross_attention_dim"], device="meta")
    added = None
    if cfg.get("addition_embed_type"):
        added = {"text_embeds": torch.randn(1, 1280, device="meta"), "time_ids": torch.randn(1, 6, device="meta")}
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * 2        # bytes in fp16
        return t

    with FlopCounterMode(display=False) as fwd_count, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = unet(x, torch.tensor([500], device="meta"), enc, added_cond_kwargs=added).sample
    with FlopCounterMode(display=False) as bwd_count:
        out.float().pow(2).mean().backward()
    return {"params": params, "lora_per_rank": lora, "fwd": fwd_count.get_total_flops(),
            "bwd": bwd_count.get_total_flops(), "saved_fp16": saved[0]}


def estimate(name: str, cfg: dict, px: int, rank: int = 8) -> list[str]:
    plain, gc = _trace(cfg, px, False), _trace(cfg, px, True)
    weights_gb = (plain["params"] + OTHER_PARAMS[name]) * 2 / 1e9
    lora_gb = plain["lora_per_rank"] * rank * 16 / 1e9          # fp32 weight + grad + 2 Adam moments
    rows = []
    for label, t in (("no", plain), ("yes", gc)):
        flops = t["fwd"] + t["bwd"]
        lo, hi = (A100_PEAK * u / flops for u in UTILISATION)
        mem = weights_gb + lora_gb + t["saved_fp16"] / 1e9 + CUDA_OVERHEAD_GB
        rows.append(f"| {name} | {px} | {rank} | {label} | {plain['params'] / 1e6:.0f} M | "
                    f"{plain['lora_per_rank'] * rank / 1e6:.1f} M | {t['fwd'] / 1e12:.2f} | {flops / 1e12:.2f} | "
                    f"{lo:.1f}-{hi:.1f} | {t['saved_fp16'] / 1e9:.1f} | ~{mem:.0f} |")
    return rows


def main() -> int:
    print("ESTIMATE (arithmetic on the real architectures, not a measurement): LoRA, batch 1, fp16 weights, "
          f"A100 at {UTILISATION[0]:.0%}-{UTILISATION[1]:.0%} of {A100_PEAK / 1e12:.0f} TFLOP/s")
    print("| model | px | rank | grad. checkpointing | UNet params | LoRA params | fwd TFLOP | step TFLOP "
          "| steps/s (A100, est.) | activations GB (fp16) | GPU memory GB (est.) |")
    print("|" + "---|" * 11)
    for row in estimate("sd15", SD15, 512) + estimate("sdxl", SDXL, 1024):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
