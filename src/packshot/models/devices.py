"""Device and dtype selection, and the memory options of a loaded diffusers pipeline.

``runtime(settings)`` decides once per load:

* device: ``settings.device`` (auto | cpu | cuda | cuda:N | mps); auto = cuda if torch sees a CUDA
  GPU, else mps (Apple) if available, else cpu. Asking for a device torch cannot see is an error,
  never a silent fallback.
* dtype: ``settings.dtype`` (auto | float32 | float16 | bfloat16); auto = float16 on cuda and mps
  (what Stable Diffusion weights are published and tuned in; bfloat16 where asked), float32 on
  cpu (half precision on CPU is slow or unsupported). float16 on cpu is refused with a one-line
  error; bfloat16 on cpu is allowed.

``apply_memory_options(pipe, rt, settings)`` moves the pipeline to its device, or enables model CPU
offload (``settings.cpu_offload``, accelerators only: weights wait in RAM and each sub-model visits
the GPU in turn), attention slicing and VAE tiling for small GPUs. Options that cannot apply (CPU
offload on a CPU) come back as notes, never silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..errors import DependencyMissingError, InvalidInputError

DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Runtime:
    device: str                 # "cpu" | "cuda" | "cuda:1" | "mps"
    dtype_name: str             # "float32" | "float16" | "bfloat16"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def dtype(self) -> Any:
        import torch
        return getattr(torch, self.dtype_name)

    @property
    def accelerator(self) -> bool:
        return not self.device.startswith("cpu")


def _torch():
    try:
        import torch
    except ImportError:
        raise DependencyMissingError("model inference", "ai") from None
    return torch


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(settings: Settings) -> str:
    torch = _torch()
    want = (settings.device or "auto").strip().lower()
    if want == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available(torch):
            return "mps"
        return "cpu"
    if want == "cpu":
        return "cpu"
    if want == "mps":
        if not _mps_available(torch):
            raise InvalidInputError("device 'mps' was asked for but torch sees no Apple GPU (MPS)")
        return "mps"
    if want == "cuda" or want.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InvalidInputError(f"device {settings.device!r} was asked for but torch sees no CUDA GPU "
                                    f"(torch {torch.__version__}); use device auto or cpu")
        if ":" in want:
            try:
                index = int(want.split(":", 1)[1])
            except ValueError:
                raise InvalidInputError(f"device {settings.device!r} is not cuda:N") from None
            if not 0 <= index < torch.cuda.device_count():
                raise InvalidInputError(f"device {settings.device!r}: torch sees {torch.cuda.device_count()} "
                                        f"CUDA device(s)")
        return want
    raise InvalidInputError(f"device {settings.device!r} is not one of auto, cpu, cuda, cuda:N, mps")


def select_dtype(settings: Settings, device: str) -> str:
    want = (settings.dtype or "auto").strip().lower()
    if want == "auto":
        return "float32" if device == "cpu" else "float16"
    if want not in DTYPES:
        raise InvalidInputError(f"dtype {settings.dtype!r} is not one of auto, {', '.join(DTYPES)}")
    if want == "float16" and device == "cpu":
        raise InvalidInputError("dtype 'float16' is not supported on cpu (slow or missing kernels); "
                                "use float32 or bfloat16, or a GPU")
    if want == "bfloat16" and device.startswith("cuda"):
        torch = _torch()
        if not torch.cuda.is_bf16_supported():
            raise InvalidInputError(f"dtype 'bfloat16' is not supported by this GPU ({torch.cuda.get_device_name()}); "
                                    f"use float16")
    return want


def runtime(settings: Settings) -> Runtime:
    device = select_device(settings)
    return Runtime(device=device, dtype_name=select_dtype(settings, device))


def apply_memory_options(pipe: Any, rt: Runtime, settings: Settings) -> list[str]:
    """Place ``pipe`` on ``rt.device`` (or CPU offload) and enable slicing/tiling. Returns notes."""
    notes: list[str] = []
    if settings.cpu_offload and rt.accelerator:
        try:
            pipe.enable_model_cpu_offload(device=rt.device)
        except Exception as e:  # accelerate missing or too old
            raise DependencyMissingError(f"cpu_offload ({type(e).__name__}: {e})", "ai") from None
    else:
        if settings.cpu_offload:
            notes.append("cpu_offload applies to GPUs only: the model runs on cpu")
        pipe.to(rt.device)
    if settings.attention_slicing:
        pipe.enable_attention_slicing()
    if settings.vae_tiling:
        vae = getattr(pipe, "vae", None)
        if vae is not None and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        else:
            notes.append("vae_tiling: this pipeline's VAE cannot tile")
    return notes


def free_memory_bytes(device: str) -> int | None:
    """Free accelerator memory in bytes (cuda), None where unknown (cpu, mps)."""
    if not device.startswith("cuda"):
        return None
    torch = _torch()
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def free_bytes(device: str) -> int | None:
    """Memory a new model can take on ``device``: free GPU memory (cuda), available RAM (cpu; mps
    shares it), None where unknown."""
    if device.startswith("cuda"):
        return free_memory_bytes(device)
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with accelerate (the ai extra)
        return None
    return int(psutil.virtual_memory().available)


def resident_estimate(weights_bytes: int, stored_fp16: bool, dtype_name: str) -> int:
    """Bytes a model takes once loaded: its weights converted to ``dtype_name`` (fp16 files loaded
    as float32 double; float32 files loaded as float16 halve), plus 20 % for buffers."""
    per = 2 if dtype_name in ("float16", "bfloat16") else 4
    return int(weights_bytes * per / (2 if stored_fp16 else 4) * 1.2)
