"""Input decoding (formats, EXIF, modes, limits) and output metadata, library-level."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from packshot.errors import ImageLoadError, ImageTooLargeError
from packshot.io import (SOURCE_TYPE_SYNTHETIC, encode_image, format_parameters, load_image,
                         read_parameters, save_image)


def _photo(w=64, h=48):
    rng = np.random.default_rng(0)
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    a[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    a[..., 2] = rng.integers(0, 255, (h, w))
    return a


def _bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP"])
def test_common_formats_load_as_rgb(fmt):
    src = _photo()
    data = _bytes(Image.fromarray(src), fmt, **({"quality": 100} if fmt in ("JPEG", "WEBP") else {}))
    photo = load_image(data)
    assert photo.rgb.shape == src.shape and photo.rgb.dtype == np.uint8
    assert photo.format == fmt
    if fmt in ("PNG", "TIFF", "BMP"):
        assert np.array_equal(photo.rgb, src)
    else:  # lossy: what the codec decodes, and close to the source on the smooth channels
        assert np.array_equal(photo.rgb, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        assert np.abs(photo.rgb[..., :2].astype(int) - src[..., :2]).mean() <= 10


def test_exif_orientation_is_applied():
    src = np.zeros((40, 80, 3), np.uint8)
    src[:, :40] = (255, 0, 0)  # left half red
    im = Image.fromarray(src)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    photo = load_image(_bytes(im, "JPEG", exif=exif.tobytes(), quality=95))
    assert photo.rgb.shape == (80, 40, 3)
    assert photo.rgb[5, 20, 0] > 200 and photo.rgb[75, 20, 0] < 60  # red is now on top


def test_greyscale_palette_cmyk_16bit_and_alpha():
    grey = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (10, 1)), "L")
    assert np.array_equal(load_image(_bytes(grey, "PNG")).rgb[..., 1], np.asarray(grey))

    pal = Image.fromarray(_photo()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    assert np.array_equal(load_image(_bytes(pal, "PNG")).rgb, np.asarray(pal.convert("RGB")))

    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    rgb = load_image(_bytes(cmyk, "JPEG", quality=100)).rgb
    assert rgb[4, 4, 0] > 200 and rgb[4, 4, 1] < 60 and rgb[4, 4, 2] < 60

    a16 = (np.linspace(0, 65535, 64)[None, :].repeat(4, 0)).astype(np.uint16)
    im16 = Image.fromarray(a16)  # 16-bit greyscale (mode I;16)
    got = load_image(_bytes(im16, "PNG")).rgb[..., 0]
    assert got[0, 0] == 0 and got[0, -1] == 255 and 120 <= got[0, 32] <= 135  # scaled, not clipped

    rgba = np.dstack([_photo(), np.full((48, 64), 255, np.uint8)])
    rgba[10:20, 10:20, 3] = 0
    photo = load_image(_bytes(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert photo.alpha is not None and photo.alpha[15, 15] == 0.0 and photo.alpha[30, 30] == 1.0
    assert np.array_equal(photo.rgb[30, 30], rgba[30, 30, :3])


def test_icc_profile_is_converted_to_srgb():
    src = Image.fromarray(_photo())
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = load_image(_bytes(src, "PNG", icc_profile=srgb))
    assert np.abs(photo.rgb.astype(int) - np.asarray(src)).max() <= 2


@pytest.mark.parametrize("data,needle", [
    (b"", "empty file"),
    (b"hello, I am not an image", "not an image"),
])
def test_bad_bytes(data, needle):
    with pytest.raises(ImageLoadError, match=needle):
        load_image(data)


def test_truncated_and_bomb():
    full = _bytes(Image.fromarray(_photo(256, 256)), "JPEG", quality=90)
    with pytest.raises(ImageLoadError, match="truncated|corrupt|decode"):
        load_image(full[: len(full) // 2])
    big = _bytes(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ImageTooLargeError, match="3000x3000"):
        load_image(big, max_pixels=1_000_000)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_output_carries_parameters_and_source_type(tmp_path, fmt):
    params = format_parameters("on marble", {"Seed": 5, "Size": "64x48", "Engine": "studio"})
    assert params == "on marble\nSeed: 5, Size: 64x48, Engine: studio"
    path = save_image(_photo(), tmp_path / f"x.{fmt}", parameters=params, source_type=SOURCE_TYPE_SYNTHETIC)
    with Image.open(path) as im:
        assert im.info.get("icc_profile"), "output must be tagged sRGB"
        xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
        xmp = xmp.decode() if isinstance(xmp, bytes) else xmp
        assert "DigitalSourceType" in xmp and SOURCE_TYPE_SYNTHETIC in xmp
        if fmt == "png":
            assert im.info["parameters"] == params
        else:
            comment = im.getexif().get_ifd(0x8769).get(0x9286) or im.getexif().get(0x9286)
            assert comment is not None and params.encode("utf-16-be") in comment
    if fmt == "png":
        assert read_parameters(path) == params
    assert not list(tmp_path.glob(".*.tmp")), "no temp files left behind"


def test_jpeg_refuses_alpha():
    from packshot.errors import InvalidInputError
    with pytest.raises(InvalidInputError, match="JPEG has no alpha"):
        encode_image(np.zeros((4, 4, 4), np.uint8), "jpeg")
