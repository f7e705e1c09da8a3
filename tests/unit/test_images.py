"""load_image: every odd image a user may upload becomes RGB, or fails with a sentence naming it."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from imprint_core.images import (
    MAX_PIXELS,
    MIN_SIDE,
    ImageError,
    decoded_size,
    hash_bytes,
    hash_image_source,
    load_image,
)


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _px(image: Image.Image, xy) -> tuple[int, int, int]:
    return tuple(int(v) for v in image.getpixel(xy))


def test_rgb_from_path_bytes_file_and_pil_agree(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(arr), "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    results = [
        load_image(path),
        load_image(str(path)),
        load_image(data),
        load_image(io.BytesIO(data)),
        load_image(Image.fromarray(arr)),
    ]
    for im in results:
        assert im.mode == "RGB" and im.size == (32, 24)
        np.testing.assert_array_equal(np.asarray(im), arr)


def test_exif_orientation_is_applied():
    # 40 x 20: left half red, right half blue; orientation 6 means "rotate 90 degrees clockwise".
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    image = Image.fromarray(arr)
    exif = image.getexif()
    exif[0x0112] = 6
    out = load_image(_encode(image, "JPEG", quality=95, exif=exif))
    assert out.size == (20, 40)  # portrait after rotation
    top, bottom = _px(out, (10, 5)), _px(out, (10, 34))
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_grayscale_becomes_rgb():
    out = load_image(_encode(Image.new("L", (8, 8), 77), "PNG"))
    assert out.mode == "RGB" and _px(out, (3, 3)) == (77, 77, 77)
    out = load_image(_encode(Image.new("1", (8, 8), 1), "PNG"))
    assert _px(out, (0, 0)) == (255, 255, 255)


def test_rgba_is_composited_on_white():
    image = Image.new("RGBA", (10, 10), (255, 0, 0, 255))
    image.paste((0, 0, 255, 0), (5, 0, 10, 10))  # right half fully transparent
    out = load_image(_encode(image, "PNG"))
    assert out.mode == "RGB"
    assert _px(out, (2, 2)) == (255, 0, 0)
    assert _px(out, (7, 2)) == (255, 255, 255)
    half = load_image(_encode(Image.new("RGBA", (4, 4), (0, 0, 0, 128)), "PNG"))
    assert abs(_px(half, (0, 0))[0] - 127) <= 1  # black at 50 % over white


def test_la_is_composited_on_white():
    out = load_image(_encode(Image.new("LA", (4, 4), (0, 0)), "PNG"))
    assert _px(out, (1, 1)) == (255, 255, 255)


def test_cmyk_jpeg_becomes_rgb():
    out = load_image(_encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95))
    r, g, b = _px(out, (8, 8))
    assert out.mode == "RGB" and r > 200 and g < 60 and b < 60  # no magenta/yellow ink left: red


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_grayscale_is_scaled_not_clipped(fmt):
    arr = np.array([[0, 32896, 65535, 1000]], dtype=np.uint16)
    image = Image.new("I;16", (4, 1))
    image.frombytes(arr.astype("<u2").tobytes())
    out = load_image(_encode(image, fmt))
    assert out.mode == "RGB"
    assert [_px(out, (x, 0))[0] for x in range(4)] == [0, 128, 255, 4]


def test_32bit_int_and_float_images():
    out = load_image(Image.fromarray(np.array([[0, 65535]], dtype=np.int32), mode="I"))
    assert [_px(out, (x, 0))[0] for x in range(2)] == [0, 255]
    out = load_image(_encode(Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)), "TIFF"))
    assert [_px(out, (x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_palette_with_transparency_becomes_white():
    image = Image.new("P", (6, 6), 1)
    image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(0, (0, 0, 3, 6))
    out = load_image(_encode(image, "PNG", transparency=0))
    assert _px(out, (1, 1)) == (255, 255, 255)
    assert _px(out, (4, 1)) == (0, 255, 0)
    gif = load_image(_encode(image, "GIF"))  # palette without transparency
    assert _px(gif, (4, 1)) == (0, 255, 0) and _px(gif, (1, 1)) == (0, 0, 0)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    r, g, b = _px(load_image(data), (4, 4))
    assert r > 200 and b < 60


def _png_with_header_size(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, followed by a tiny (insufficient) image body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: (  # noqa: E731
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    )
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [8_000, 20_000])  # 64 MP (our limit), 400 MP (Pillow's too)
def test_decompression_bomb_is_refused_from_the_header(side):
    data = _png_with_header_size(side, side)  # claims side x side pixels, holds a few bytes
    assert len(data) < 200
    with pytest.raises(ImageError) as info:
        load_image(data, name="bomb.png")
    msg = str(info.value)
    # "too large", not "truncated": the size was refused before any pixel was decoded
    assert "'bomb.png'" in msg and "too large" in msg
    assert f"{side * side / 1e6:.1f} megapixels" in msg
    assert f"at most {MAX_PIXELS / 1e6:g} megapixels" in msg


def test_pixel_limit_is_configurable():
    data = _encode(Image.new("RGB", (20, 20)), "PNG")
    with pytest.raises(ImageError, match="too large"):
        load_image(data, name="x.png", max_pixels=399)
    assert load_image(data, max_pixels=400).size == (20, 20)
    with pytest.raises(ImageError, match="too large"):
        load_image(Image.new("RGB", (20, 20)), max_pixels=10)


def test_truncated_jpeg_names_the_file_and_the_class(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(arr), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as info:
        load_image(path, context="cats")
    msg = str(info.value)
    assert "cut.jpg" in msg and "'cats'" in msg and "truncated" in msg and "Allowed" in msg


def test_corrupt_png_body():
    data = bytearray(_encode(Image.new("RGB", (32, 32), (9, 9, 9)), "PNG"))
    data[40:60] = b"\xff" * 20  # inside IHDR/IDAT: CRC and zlib stream broken
    with pytest.raises(ImageError, match="'broken.png'"):
        load_image(bytes(data), name="broken.png")


def test_empty_and_non_image_files(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="'.*empty.png' is an empty file"):
        load_image(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    with pytest.raises(ImageError) as info:
        load_image(text, context="dogs")
    msg = str(info.value)
    assert "notes.jpg" in msg and "'dogs'" in msg and "not an image" in msg
    assert "JPEG, PNG" in msg  # says what is allowed


def test_formats_outside_the_allowed_list_are_refused():
    # Pillow could open EPS (through Ghostscript); we never hand user data to it.
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(ImageError, match="not an image"):
        load_image(eps, name="a.eps")


# The first bytes of an iPhone photo: an ISO media file whose ``ftyp`` box names the HEIC brand.
HEIC_HEAD = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def test_a_heic_photo_is_refused_with_a_sentence_by_content_or_by_name(tmp_path):
    """Pillow cannot read HEIC: the user learns what to do, not that the file is "corrupt"."""
    photo = tmp_path / "IMG_0001.HEIC"
    photo.write_bytes(HEIC_HEAD)
    for source, name in ((photo, None), (HEIC_HEAD, "IMG_0001.dat")):
        with pytest.raises(ImageError) as info:
            load_image(source, name=name, context="cats")
        msg = str(info.value)
        assert "HEIC photos are not supported yet: export as JPEG" in msg, msg
        assert "IMG_0001" in msg and "'cats'" in msg, msg
        with pytest.raises(ImageError, match="HEIC photos are not supported yet"):
            decoded_size(source, name=name)
    # a JPEG renamed .heic: the name is what the user sees, so the sentence is the same
    jpeg = tmp_path / "renamed.heic"
    jpeg.write_bytes(_encode(Image.new("RGB", (32, 32), (9, 9, 9)), "JPEG"))
    with pytest.raises(ImageError, match=r"'.*renamed.heic' is a HEIC photo\. HEIC photos are"):
        load_image(jpeg)


@pytest.mark.parametrize("size", [(1, 1), (MIN_SIDE - 1, 64), (64, MIN_SIDE - 1)])
def test_an_image_smaller_than_the_minimum_is_refused_naming_it_and_the_rule(size):
    data = _encode(Image.new("RGB", size, (200, 10, 10)), "PNG")
    rule = rf"is {size[0]} x {size[1]} pixels, too small .* at least {MIN_SIDE} pixels on each side"
    with pytest.raises(ImageError, match=rf"'pixel.png' in class 'dots' {rule}"):
        load_image(data, name="pixel.png", context="dots", smallest=MIN_SIDE)
    with pytest.raises(ImageError, match=rule):
        decoded_size(data, name="pixel.png", smallest=MIN_SIDE)
    with pytest.raises(ImageError, match=rule):
        load_image(Image.new("RGB", size), name="pixel.png", smallest=MIN_SIDE)
    ok = _encode(Image.new("RGB", (MIN_SIDE, MIN_SIDE), (200, 10, 10)), "PNG")
    assert load_image(ok, smallest=MIN_SIDE).size == (MIN_SIDE, MIN_SIDE)


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="expected a file path, bytes or a PIL image"):
        load_image(12345)


def test_hashes_follow_content():
    a = _encode(Image.new("RGB", (5, 5), (1, 2, 3)), "PNG")
    b = _encode(Image.new("RGB", (5, 5), (1, 2, 4)), "PNG")
    assert hash_bytes(a) == hash_bytes(bytes(a)) and hash_bytes(a) != hash_bytes(b)
    assert hash_image_source(a) == (hash_bytes(a), a)
    h1, _ = hash_image_source(Image.new("RGB", (5, 5), (1, 2, 3)))
    h2, _ = hash_image_source(Image.new("RGB", (5, 5), (1, 2, 3)))
    h3, _ = hash_image_source(Image.new("RGB", (5, 6), (1, 2, 3)))
    assert h1 == h2 != h3


def test_big_jpeg_may_decode_at_reduced_scale():
    image = Image.new("RGB", (2400, 1800), (200, 100, 50))
    jpeg, png = _encode(image, "JPEG"), _encode(image, "PNG")
    assert load_image(jpeg).size == (2400, 1800)
    assert load_image(jpeg, min_side=512).size == (1200, 900)  # 1/4 would make 450 < 512
    assert load_image(jpeg, min_side=200).size == (300, 225)  # 1/8
    assert load_image(png, min_side=512).size == (2400, 1800)  # JPEG only
    r, g, b = _px(load_image(jpeg, min_side=200), (10, 10))
    assert abs(r - 200) < 8 and abs(g - 100) < 8 and abs(b - 50) < 8


def test_a_jpeg_to_be_fitted_decodes_at_the_scale_that_covers_its_fit():
    """``fit_side``: the smallest DCT scale whose picture is still at least as large as the fit
    in a ``fit_side`` square (so the fitted picture has the size a full decode gives)."""
    for size, fitted, decoded in [
        ((4032, 3024), (448, 336), (504, 378)),  # 1/8; both sides >= 448 would need 1/4
        ((3024, 4032), (336, 448), (378, 504)),
        ((1600, 1200), (448, 336), (800, 600)),  # 1/4 would give 400 < 448
        ((8000, 2000), (448, 112), (1000, 250)),
        ((300, 200), (300, 200), (300, 200)),  # small: decoded and kept as it is
    ]:
        jpeg = _encode(Image.new("RGB", size, (200, 100, 50)), "JPEG")
        assert decoded_size(jpeg, fit_side=448) == decoded
        image = load_image(jpeg, fit_side=448)
        assert image.size == decoded
        image.thumbnail((448, 448))
        assert image.size == fitted
    png = _encode(Image.new("RGB", (4032, 3024)), "PNG")
    assert decoded_size(png, fit_side=448) == (4032, 3024)  # JPEG only
