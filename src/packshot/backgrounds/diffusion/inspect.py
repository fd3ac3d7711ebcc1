"""What a model is, read from its configs / safetensors header without torch, and checked.

Diffusion pipelines (diffusers folder or single-file checkpoint), ControlNets (4-channel, or
9-channel inpainting ControlNets in Yahoo's photo-background-generation layout) and IP-Adapters.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...config import Settings
from ...errors import MissingWeightsError, ModelError
from ...models import (MODELS, check_pipeline_folder, check_weights_folder, pipeline_components, resolve,
                       safetensors_header, weight_files)
from .stack import import_stack


@dataclass(frozen=True)
class ModelInfo:
    """What a local model is, read from its configs / safetensors header (no torch)."""

    path: Path
    name: str                 # registry id, or the folder/file name (recorded as "Model")
    format: str               # "diffusers" | "single-file"
    family: str               # "sd" (1.x/2.x) | "sdxl"
    in_channels: int          # 9 = inpainting UNet, 4 = text-to-image
    native: int               # px side the model was trained at
    min_side: int             # smallest working side (px) the UNet can take
    cross_attention_dim: int | None = None
    variant: str | None = None            # "fp16" when only fp16 weights are there
    config_dir: Path | None = None        # single-file: diffusers folder whose configs are used
    v2: bool = False
    vae_scale: int = 8                    # pixels per latent cell

    @property
    def inpaint(self) -> bool:
        return self.in_channels == 9

    @property
    def kind(self) -> str:
        base = "sdxl" if self.family == "sdxl" else ("sd2" if self.v2 else "sd15")
        return f"{base}-inpaint" if self.inpaint else base

    def describe(self) -> str:
        fam = "an SDXL" if self.family == "sdxl" else "an SD 1.x/2.x"
        what = "inpainting" if self.inpaint else "text-to-image"
        return f"{fam} {what} model (UNet in_channels={self.in_channels})"


def _read_json(path: Path, folder: Path) -> dict:
    import json
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model folder {folder} is corrupt or incomplete: {path.relative_to(folder)} is missing") from None
    except (OSError, ValueError):
        raise ModelError(f"model folder {folder} is corrupt: {path.relative_to(folder)} is not valid JSON") from None


def _variant(folder: Path) -> str | None:
    """'fp16' when a component has only ``*.fp16.*`` weights (as `models pull` fetches for SDXL)."""
    files = weight_files(folder)
    if files and all(".fp16." in p.name for p in files):
        return "fp16"
    return None


def _unet_facts(unet_cfg: dict, vae_cfg: dict) -> tuple[int, int, int, int]:
    """(in_channels, native px, min side px, VAE scale) from the UNet and VAE configs."""
    scale = 2 ** (len(vae_cfg.get("block_out_channels", (1, 1, 1, 1))) - 1)
    sample = unet_cfg.get("sample_size", 64)
    sample = sample[0] if isinstance(sample, (list, tuple)) else sample
    downs = len(unet_cfg.get("down_block_types", ())) - 1
    return int(unet_cfg.get("in_channels", 4)), int(sample) * scale, scale * 2 ** max(downs, 0), scale


def inspect_model(path: Path, name: str, settings: Settings) -> ModelInfo:
    """Read what ``path`` is (diffusers folder or single ``.safetensors`` checkpoint) and check it.

    Raises ModelError naming the path and the broken or unsuitable part: not a pipeline, a
    ControlNet given as the model, a missing/truncated weights file, unreadable configs.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "model_index.json").exists():
            cfg = path / "config.json"
            if cfg.exists():
                cls = _read_json(cfg, path).get("_class_name") or _read_json(cfg, path).get("model_type")
                raise ModelError(f"model {name!r} ({path}) is a {cls} folder, not a diffusion pipeline"
                                 + (": pass it as --controlnet" if cls == "ControlNetModel" else ""))
            raise ModelError(f"model {name!r} ({path}) is not a diffusers pipeline folder (no model_index.json) "
                             f"nor a .safetensors checkpoint")
        comps = pipeline_components(path)
        if "unet" not in comps:
            cls = _read_json(path / "model_index.json", path).get("_class_name")
            raise ModelError(f"model {name!r} ({path}) is a {cls} without a UNet; the diffusion engine runs "
                             f"Stable Diffusion 1.x/2.x/XL pipelines")
        problem = check_pipeline_folder(path, settings.allow_pickle_weights)
        if problem:
            raise ModelError(f"model folder {path} is corrupt or incomplete: {problem}")
        unet = _read_json(path / "unet" / "config.json", path)
        vae = _read_json(path / "vae" / "config.json", path)
        in_ch, native, min_side, vae_scale = _unet_facts(unet, vae)
        sdxl = "text_encoder_2" in comps or unet.get("addition_embed_type") == "text_time"
        v2 = not sdxl and unet.get("cross_attention_dim") == 1024
        return ModelInfo(path=path, name=name, format="diffusers", family="sdxl" if sdxl else "sd",
                         in_channels=in_ch, native=native, min_side=min_side,
                         cross_attention_dim=unet.get("cross_attention_dim"), variant=_variant(path / "unet"),
                         v2=v2, vae_scale=vae_scale)
    return _inspect_single_file(path, name, settings)


def _single_file_keys(path: Path, settings: Settings) -> dict[str, list[int]]:
    """Tensor name -> shape of a single-file checkpoint, without loading the weights."""
    if path.suffix == ".safetensors":
        header = safetensors_header(path)
        return {k: v.get("shape", []) for k, v in header.items() if k != "__metadata__"}
    if path.suffix in (".ckpt", ".pt", ".pth", ".bin"):
        if not settings.allow_pickle_weights:
            raise ModelError(f"model {path} is a pickle checkpoint; loading it can run code: convert it to "
                             f".safetensors, or set PACKSHOT_ALLOW_PICKLE_WEIGHTS=1 if you trust the source")
        torch, _ = import_stack()
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:
            raise ModelError(f"model {path} is corrupt or not a checkpoint: {type(e).__name__}") from None
        sd = sd.get("state_dict", sd) if isinstance(sd, dict) else {}
        return {k: list(getattr(v, "shape", ())) for k, v in sd.items()}
    raise ModelError(f"model {path} is not a diffusers folder or a .safetensors checkpoint")


def _inspect_single_file(path: Path, name: str, settings: Settings) -> ModelInfo:
    keys = _single_file_keys(path, settings)
    first = keys.get("model.diffusion_model.input_blocks.0.0.weight")
    if not first or len(first) != 4:
        raise ModelError(f"{path} is not a Stable Diffusion checkpoint (no model.diffusion_model.* UNet weights)")
    in_ch = int(first[1])
    sdxl = any(k.startswith("conditioner.embedders.1.") for k in keys)
    v2 = not sdxl and any(k.startswith("cond_stage_model.model.") for k in keys)
    inpaint = in_ch == 9
    base = "sdxl" if sdxl else ("sd2" if v2 else "sd15")
    config_id = f"{base}-inpaint" if inpaint else base
    config_dir = None
    if config_id in MODELS:
        try:
            found = resolve(config_id, settings)
            if (found / "model_index.json").exists():
                config_dir = found
        except MissingWeightsError:
            pass
    if config_dir is None:
        hint = (f"fetch it (a few KB) with: packshot models pull {config_id} --config-only" if config_id in MODELS
                else "convert the checkpoint to a diffusers folder")
        raise ModelError(f"single-file checkpoint {path.name} ({base}{' inpainting' if inpaint else ''}) needs the "
                         f"configs of its base model {config_id!r}, which are not present; {hint}")
    unet = _read_json(config_dir / "unet" / "config.json", config_dir)
    vae = _read_json(config_dir / "vae" / "config.json", config_dir)
    cfg_in, native, min_side, vae_scale = _unet_facts(unet, vae)
    if cfg_in != in_ch:
        raise ModelError(f"single-file checkpoint {path.name} has a UNet with in_channels={in_ch} but the configs "
                         f"in {config_dir} say {cfg_in}")
    return ModelInfo(path=path, name=name, format="single-file", family="sdxl" if sdxl else "sd",
                     in_channels=in_ch, native=native, min_side=min_side,
                     cross_attention_dim=unet.get("cross_attention_dim"), config_dir=config_dir, v2=v2,
                     vae_scale=vae_scale)


@dataclass(frozen=True)
class ControlNetInfo:
    path: Path
    name: str
    variant: str | None
    in_channels: int = 4      # 9: an inpainting ControlNet (Yahoo's layout) that reads the UNet's 9-channel input

    @property
    def inpaint(self) -> bool:
        return self.in_channels == 9


def inspect_controlnet(ref: str, info: ModelInfo, settings: Settings) -> ControlNetInfo:
    """Resolve and check a ControlNet folder against the model it will steer."""
    path = resolve(ref, settings, kinds=("controlnet",))
    name = ref if ref in MODELS else path.name
    if path.is_dir() and not (path / "config.json").exists() and (path / "controlnet" / "config.json").exists():
        path = path / "controlnet"   # a whole pipeline repo holding its ControlNet (Yahoo's layout)
    if not path.is_dir() or not (path / "config.json").exists():
        raise ModelError(f"ControlNet {ref!r} ({path}) must be a diffusers ControlNetModel folder "
                         f"(config.json + weights)")
    cfg = _read_json(path / "config.json", path)
    if cfg.get("_class_name") != "ControlNetModel":
        raise ModelError(f"ControlNet {ref!r} ({path}) is a {cfg.get('_class_name')}, not a ControlNetModel")
    problem = check_weights_folder(path, settings.allow_pickle_weights)
    if problem:
        raise ModelError(f"ControlNet folder {path} is corrupt or incomplete: {problem}")
    cn_xl = cfg.get("addition_embed_type") == "text_time"
    if cn_xl != (info.family == "sdxl") or (info.cross_attention_dim and cfg.get("cross_attention_dim")
                                            and cfg["cross_attention_dim"] != info.cross_attention_dim):
        cn_what = "SDXL" if cn_xl else f"SD 1.x/2.x (cross_attention_dim {cfg.get('cross_attention_dim')})"
        raise ModelError(f"ControlNet {name!r} is for {cn_what} but model {info.name!r} is {info.describe()} "
                         f"(cross_attention_dim {info.cross_attention_dim})")
    in_ch = int(cfg.get("in_channels", 4))
    if in_ch == 9 and not info.inpaint:
        raise ModelError(f"ControlNet {name!r} is an inpainting ControlNet (in_channels=9, made from an inpainting "
                         f"UNet) but model {info.name!r} is {info.describe()}; use it with its inpainting model")
    if in_ch not in (4, 9):
        raise ModelError(f"ControlNet {name!r} takes in_channels={in_ch}; packshot runs ControlNets on the "
                         f"4-channel latents, or on the inpainting UNet's 9-channel input")
    return ControlNetInfo(path=path, name=name, variant=_variant(path), in_channels=in_ch)


@dataclass(frozen=True)
class IPAdapterInfo:
    root: Path
    subfolder: str
    weight_name: str
    image_encoder_folder: str
    name: str

    @property
    def key(self) -> tuple[str, str, str]:
        return str(self.root), self.subfolder, self.weight_name


def inspect_ip_adapter(ref: str, info: ModelInfo, settings: Settings) -> IPAdapterInfo:
    """Resolve an IP-Adapter: a registry id, a ``.safetensors`` file (image_encoder/ next to it) or a
    folder holding one ``ip-adapter*.safetensors`` (top level or ``models/``) and ``image_encoder/``."""
    path = resolve(ref, settings, kinds=("ip-adapter",))
    spec = MODELS.get(ref)
    if spec is not None:
        base = spec.extra.get("base")
        if base and (base == "sdxl") != (info.family == "sdxl"):
            raise ModelError(f"IP-Adapter {ref!r} is for {base} but model {info.name!r} is {info.describe()}")
        ip = IPAdapterInfo(path, spec.extra["subfolder"], spec.extra["weight_name"],
                           spec.extra["image_encoder_folder"], ref)
    elif path.is_file():
        ip = IPAdapterInfo(path.parent, "", path.name, "image_encoder", path.name)
    else:
        found = [p for sub in ("", "models", "sdxl_models") for p in sorted((path / sub).glob("*.safetensors"))
                 if "ip-adapter" in p.name or "ip_adapter" in p.name]
        if len(found) != 1:
            listed = ", ".join(str(p.relative_to(path)) for p in found) or "none"
            raise ModelError(f"IP-Adapter folder {path} must hold exactly one ip-adapter*.safetensors (found: {listed}); "
                             f"pass the file itself")
        sub = found[0].parent.relative_to(path).as_posix()
        ip = IPAdapterInfo(path, "" if sub == "." else sub, found[0].name, "image_encoder", path.name)
    weights = ip.root / ip.subfolder / ip.weight_name
    header = safetensors_header(weights)  # raises on a truncated file
    if not any(k.startswith("image_proj.") for k in header):
        raise ModelError(f"{weights} is not an IP-Adapter (no image_proj.* weights)")
    enc_dir = (ip.root / ip.image_encoder_folder if "/" in ip.image_encoder_folder
               else ip.root / ip.subfolder / ip.image_encoder_folder)
    problem = check_weights_folder(enc_dir, settings.allow_pickle_weights) if enc_dir.is_dir() else \
        f"{enc_dir} is missing"
    if problem:
        raise ModelError(f"IP-Adapter {ip.name!r}: its image encoder is unusable: {problem}")
    return ip


