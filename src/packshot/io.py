"""Load and save images.

``load_image`` accepts any common photo (JPEG, PNG, WebP, TIFF, BMP, GIF...), applies EXIF
orientation, converts colour profiles to sRGB and every mode (greyscale, palette, CMYK, 16-bit,
alpha) to 8-bit RGB (+ alpha), and refuses decompression bombs *before* decoding.

``save_image`` writes PNG/JPEG/WebP in sRGB atomically (temp file + rename: nothing half-written),
with the generation parameters in a PNG text chunk ``parameters`` (the A1111 / ComfyUI format) and
an XMP ``Iptc4xmpExt:DigitalSourceType`` where the background was generated.
"""
from __future__ import annotations

import io
import os
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import ImageLoadError, ImageTooLargeError, InvalidInputError, PackshotError
from .types import Photo

FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
DEFAULT_MAX_PIXELS = 50_000_000

# IPTC NewsCodes for DigitalSourceType (https://cv.iptc.org/newscodes/digitalsourcetype/)
SOURCE_TYPE_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
SOURCE_TYPE_SYNTHETIC = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic"

_SRGB = None
_SRGB_BYTES: bytes | None = None


def _srgb_profile():
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB


def srgb_icc() -> bytes:
    """The sRGB ICC profile embedded in outputs, made reproducible: LittleCMS stamps the creation
    date/time into the header (bytes 24-36), which would make two runs' files differ; we pin it
    (2000-01-01) and zero the optional MD5 profile ID (bytes 84-100), so same seed = same bytes."""
    global _SRGB_BYTES
    if _SRGB_BYTES is None:
        icc = bytearray(_srgb_profile().tobytes())
        icc[24:36] = bytes([0x07, 0xD0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])
        icc[84:100] = bytes(16)
        _SRGB_BYTES = bytes(icc)
    return _SRGB_BYTES


def _name(src: Any) -> str:
    return str(src) if isinstance(src, (str, Path)) else "<upload>"


# bytes per pixel of the decoded samples, by PIL mode (what the decode limit counts)
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "I;16": 2, "I;16B": 2, "I;16L": 2,
               "I;16N": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4, "RGBX": 4,
               "CMYK": 4, "I": 4, "F": 4}
# modes a working copy is not needed for (with a format a browser shows: JPEG, PNG, WebP, GIF)
PLAIN_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")
WEB_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """Bytes the decoded samples take: what the pixel limit counts (``max_pixels`` x 4 bytes, the
    size of that many 8-bit RGBA pixels), so float, 32-bit, CMYK and alpha images count more than
    8-bit greyscale or RGB ones."""
    return width * height * _MODE_BYTES.get(mode, 4)


def decode_cost(width: int, height: int, mode: str) -> int:
    """Peak memory one decode needs, for :class:`DecodeBudget`: PIL's own buffer (up to 4 bytes a
    pixel whatever the mode), the 8-bit result (up to 3 bytes a pixel) and a little for the
    conversion, which works in bands of rows (measured: 296 MB for a 7000x7000 float TIFF)."""
    return width * height * 7 + 16 * 2**20


class DecodeBusyError(PackshotError):
    """Every byte of the decode budget is taken by decodes in flight: try again shortly."""

    http_status = 503
    retry_after_s = 2


class DecodeBudget:
    """Bounds the memory of concurrent decodes in one process (the API server): a decode reserves
    :func:`decode_cost` bytes before it starts and waits up to ``wait_s`` for room, else
    :class:`DecodeBusyError` (503 + Retry-After). One decode larger than the whole budget still runs,
    alone."""

    def __init__(self, total_bytes: int, wait_s: float = 20.0):
        import threading

        self.total, self.wait_s = int(total_bytes), wait_s
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()
        _libc("mallopt", -3, 4 * 2**20)  # M_MMAP_THRESHOLD = 4 MB, fixed (see _libc)

    @contextmanager
    def reserve(self, nbytes: int):
        import time

        need = min(int(nbytes), self.total)
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while self.used + need > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DecodeBusyError(f"the server is decoding other large images ({self.used >> 20} MB of "
                                          f"its {self.total >> 20} MB decode budget in use); retry in a moment")
                self._cond.wait(left)
            self.used += need
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= need
                self._cond.notify_all()
            if need >= 64 * 2**20:
                _libc("malloc_trim", 0)


def _libc(name: str, *args: int) -> None:
    """Call a glibc memory function (not glibc: nothing to do). Why: glibc serves big buffers from
    per-thread arenas once its dynamic mmap threshold has grown, and keeps what is freed there, so a
    server that decoded 8 big photos in 8 threads sat at 1.7-2.9 GB of RSS, and stayed there. A
    fixed mmap threshold (big buffers are mapped and unmapped) and a trim after each large decode
    keep it near the budget."""
    try:
        import ctypes

        getattr(ctypes.CDLL("libc.so.6"), name)(*args)
    except (OSError, AttributeError):
        pass


def _read_source(src: str | Path | bytes, name: str) -> bytes:
    if isinstance(src, (bytes, bytearray)):
        data = bytes(src)
    else:
        path = Path(src)
        if not path.exists():
            raise ImageLoadError(f"{name}: no such file")
        if path.is_dir():
            raise ImageLoadError(f"{name}: is a folder, not an image")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ImageLoadError(f"{name}: cannot read ({e.strerror})") from None
    if not data:
        raise ImageLoadError(f"{name}: empty file (0 bytes)")
    return data


@contextmanager
def _decoded(data: bytes, name: str, max_pixels: int, budget: "DecodeBudget | None"):
    """Open ``data``, check its size from the header (nothing decoded yet), reserve the budget,
    decode; yields the loaded PIL image (EXIF orientation applied)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > max_pixels:
                raise ImageTooLargeError(
                    f"{name}: {w}x{h} = {w * h} pixels is over the limit of {max_pixels} pixels")
            if w < 1 or h < 1:
                raise ImageLoadError(f"{name}: image has no pixels ({w}x{h})")
            nbytes = decoded_bytes(w, h, im.mode)
            if nbytes > max_pixels * 4:
                raise ImageTooLargeError(
                    f"{name}: {w}x{h} {im.mode} decodes to {nbytes >> 20} MB, over the limit of "
                    f"{(max_pixels * 4) >> 20} MB ({max_pixels} pixels of 8-bit RGBA)")
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name}: not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(f"{name}: too many pixels ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageLoadError(f"{name}: cannot decode image ({str(e) or type(e).__name__})") from None
    with budget.reserve(decode_cost(w, h, im.mode)) if budget is not None else nullcontext():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                ImageFile.LOAD_TRUNCATED_IMAGES = False
                im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageTooLargeError(f"{name}: too many pixels ({e})") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            msg = str(e) or type(e).__name__
            if "truncated" in msg.lower() or isinstance(e, EOFError):
                raise ImageLoadError(f"{name}: truncated or corrupt image data ({msg})") from None
            raise ImageLoadError(f"{name}: cannot decode image ({msg})") from None
        try:
            ImageOps.exif_transpose(im, in_place=True)  # without in_place: a full copy, always
            yield im
        except (OSError, ValueError) as e:
            raise ImageLoadError(f"{name}: cannot convert image ({e})") from None


def load_image(src: str | Path | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               budget: DecodeBudget | None = None) -> Photo:
    """Decode ``src`` (a path or the file's bytes) into a :class:`Photo`.

    Raises :class:`ImageLoadError` (one line, naming the file) for anything that is not a whole,
    decodable image, and :class:`ImageTooLargeError` above ``max_pixels`` pixels or when the decoded
    samples would take more than ``max_pixels`` x 4 bytes (:func:`decoded_bytes`). ``budget``: wait
    for room in a :class:`DecodeBudget` before decoding.
    """
    name = _name(src)
    data = _read_source(src, name)
    with _decoded(data, name, max_pixels, budget) as im:
        fmt = im.format or Image.open(io.BytesIO(data)).format
        rgb, alpha = _to_rgb(im)
    return Photo(rgb=rgb, source=name, format=fmt, alpha=alpha)


@dataclass(frozen=True)
class Upload:
    """An upload, decoded once: its size (after EXIF rotation), format, and the normalised 8-bit
    sRGB PNG working copy that later decodes use (None when the original is plain 8-bit in a
    format a browser shows: it is its own working copy)."""

    width: int
    height: int
    format: str | None
    work: bytes | None


def normalise_upload(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "<upload>",
                     budget: DecodeBudget | None = None) -> Upload:
    """Decode an upload once (under ``budget``) and make its working copy if it needs one."""
    data = _read_source(data, name)
    with _decoded(data, name, max_pixels, budget) as im:
        src_mode = im.mode
        fmt = Image.open(io.BytesIO(data)).format
        w, h = im.size
        if fmt in WEB_FORMATS and src_mode in PLAIN_MODES and not im.info.get("icc_profile"):
            return Upload(w, h, fmt, None)
        norm, alpha = _normalise(im)
        del im
        if alpha is not None:
            norm.putalpha(Image.fromarray(np.round(alpha * 255.0).astype(np.uint8), "L"))
        buf = io.BytesIO()
        norm.save(buf, "PNG", compress_level=1)
        return Upload(w, h, fmt, buf.getvalue())


def _grey8(im: Image.Image) -> Image.Image:
    """16/32-bit integer or float greyscale -> 8-bit "L", scaled (PIL's convert('L') clips instead
    of scaling), in bands of rows so no full-size float copy is ever made."""
    lo, hi = im.getextrema()
    if im.mode == "F":
        scale, top = (255.0 if hi <= 1.0 else 1.0), 1.0
    else:
        scale, top = 255.0, (65535.0 if (im.mode.startswith("I;16") or hi > 255) else 255.0)
    w, h = im.size
    out = np.empty((h, w), np.uint8)
    step = max(1, 2_000_000 // w)
    for y in range(0, h, step):
        a = np.asarray(im.crop((0, y, w, min(h, y + step))), dtype=np.float64)
        out[y:y + a.shape[0]] = np.clip(np.round(a / top * scale), 0, 255)
    return Image.fromarray(out, "L")


def _normalise(im: Image.Image) -> tuple[Image.Image, np.ndarray | None]:
    """Any PIL mode -> ("L" or "RGB" sRGB PIL image, HxW float32 alpha or None)."""
    icc = im.info.get("icc_profile")
    alpha = None
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _grey8(im), None
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "RGBa", "La"):
        if im.mode in ("RGBa", "La"):
            im = im.convert(im.mode.upper())
        a = np.asarray(im.getchannel("A"), dtype=np.float32) / 255.0
        if a.min() < 1.0:
            alpha = a
        im = im.convert("RGB") if im.mode == "RGBA" else im.convert("L").convert("RGB")
    if icc and im.mode in ("RGB", "CMYK", "L"):
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            im = ImageCms.profileToProfile(im, src, _srgb_profile(), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken embedded profile: fall back to a plain conversion below
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")  # CMYK without profile, 1, YCbCr, LAB, HSV
    return im, alpha


def _to_rgb(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any PIL mode -> (HxWx3 uint8 sRGB, HxW float32 alpha or None)."""
    norm, alpha = _normalise(im)
    if norm.mode == "L":
        grey = np.asarray(norm, dtype=np.uint8)
        return np.ascontiguousarray(np.dstack([grey] * 3)), alpha
    return np.ascontiguousarray(np.asarray(norm, dtype=np.uint8)), alpha


def format_parameters(prompt: str, params: dict[str, Any]) -> str:
    """The A1111 'parameters' text: prompt, 'Negative prompt: …', then 'Key: value, …'.

    ``params`` keys are used verbatim as labels ("Steps", "CFG scale", "Seed", "Size", "Model").
    """
    lines = [prompt]
    neg = params.get("negative_prompt")
    if neg:
        lines.append(f"Negative prompt: {neg}")
    kv = []
    for key, value in params.items():
        if key in ("negative_prompt", "prompt") or value is None:
            continue
        label = key
        text = str(value).replace("\n", " ")
        if "," in text or ":" in text:
            text = '"' + text.replace('"', "'") + '"'
        kv.append(f"{label}: {text}")
    lines.append(", ".join(kv))
    return "\n".join(lines)


def _xmp(source_type: str, description: str) -> bytes:
    desc = (description.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/">\n'
        f'   <Iptc4xmpExt:DigitalSourceType>{source_type}</Iptc4xmpExt:DigitalSourceType>\n'
        '   <xmp:CreatorTool>packshot</xmp:CreatorTool>\n'
        f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{desc}</rdf:li></rdf:Alt></dc:description>\n'
        '  </rdf:Description>\n'
        ' </rdf:RDF>\n'
        '</x:xmpmeta>\n'
        '<?xpacket end="w"?>'
    ).encode("utf-8")


def encode_image(image: np.ndarray, fmt: str = "png", *, parameters: str | None = None,
                 source_type: str | None = None, quality: int = 95) -> bytes:
    """Encode HxWx3 (or HxWx4 for PNG/WebP) uint8 to bytes, sRGB-tagged, with metadata."""
    key = FORMATS.get(fmt.lower().lstrip("."))
    if key is None:
        raise InvalidInputError(f"output format {fmt!r} is not one of png, jpeg, webp")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InvalidInputError(f"image must be HxWx3/4 uint8, got {image.shape} {image.dtype}")
    if image.shape[2] == 4 and key == "JPEG":
        raise InvalidInputError("JPEG has no alpha channel: save a cutout as png or webp")
    im = Image.fromarray(image, "RGBA" if image.shape[2] == 4 else "RGB")
    kwargs: dict[str, Any] = {"icc_profile": srgb_icc()}
    xmp = _xmp(source_type, parameters.split("\n", 1)[0] if parameters else "") if source_type else None
    if key == "PNG":
        info = PngImagePlugin.PngInfo()
        if parameters is not None:
            info.add_text("parameters", parameters)
        if xmp is not None:
            info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"))
        kwargs["pnginfo"] = info
        kwargs["optimize"] = False
        kwargs["compress_level"] = 1  # 3.5x faster than 6 at 2048 px, ~18% larger files
    else:
        kwargs["quality"] = quality
        if xmp is not None:
            kwargs["xmp"] = xmp
        if parameters is not None:
            exif = Image.Exif()
            # EXIF UserComment (0x9286), 'UNICODE' prefix as A1111 writes it for JPEG/WebP
            exif[0x9286] = b"UNICODE\x00" + parameters.encode("utf-16-be")
            kwargs["exif"] = exif.tobytes()
    buf = io.BytesIO()
    im.save(buf, key, **kwargs)
    return buf.getvalue()


def _new_temp(path: Path) -> tuple[int, str]:
    """A new temp file next to ``path``, opened with mode 0666 so the process's umask applies as
    for any file a program writes (0644 under the usual 022); ``tempfile.mkstemp`` forces 0600."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temp file next to {path}")


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename. The file's mode
    follows the umask (0644 under umask 022), like the files of any other program."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def save_image(image: np.ndarray, path: str | Path, fmt: str | None = None, *,
               parameters: str | None = None, source_type: str | None = None) -> Path:
    """Save atomically; ``fmt`` defaults to the path's extension."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".") or "png"
    return write_atomic(path, encode_image(image, fmt, parameters=parameters, source_type=source_type))


def read_parameters(path: str | Path) -> str | None:
    """The ``parameters`` text of a PNG written by :func:`save_image` (or A1111/ComfyUI)."""
    with Image.open(path) as im:
        return im.info.get("parameters")
