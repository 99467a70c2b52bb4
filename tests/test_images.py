"""Robust image loading: a corpus of awkward and broken files made here, each with its expected
repair (the RGB pixels that must come out) or its typed error (which must name the file)."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, features

from acg2vec_lab.data.images import (
    CorruptImageError,
    ImageLoadError,
    ImageTooLargeError,
    NotAnImageError,
    load_image,
    scan_images,
)


def px(im: Image.Image, xy=(0, 0)) -> tuple[int, int, int]:
    assert im.mode == "RGB"
    return im.getpixel(xy)


def close(a, b, tol=3) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


# ------------------------------------------------------------------- repairs

def test_rgba_transparency_composited_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 255  # red
    arr[0, 0, 3] = 0  # fully transparent -> white
    arr[0, 1, 3] = 255  # opaque -> red
    arr[0, 2, 3] = 128  # half -> pink
    p = tmp_path / "rgba.png"
    Image.fromarray(arr, "RGBA").save(p)
    im = load_image(p)
    assert px(im, (0, 0)) == (255, 255, 255)
    assert px(im, (1, 0)) == (255, 0, 0)
    assert close(px(im, (2, 0)), (255, 127, 127), tol=2)


def test_la_composited_on_white(tmp_path):
    arr = np.zeros((2, 2, 2), np.uint8)  # black luminance
    arr[0, 0, 1] = 0
    arr[0, 1, 1] = 255
    p = tmp_path / "la.png"
    Image.fromarray(arr, "LA").save(p)
    im = load_image(p)
    assert px(im, (0, 0)) == (255, 255, 255) and px(im, (1, 0)) == (0, 0, 0)


def test_palette_with_transparency_index(tmp_path):
    im = Image.new("P", (3, 1))
    im.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    im.putdata([0, 1, 0])
    p = tmp_path / "pal.gif"
    im.save(p, transparency=0)  # palette entry 0 (blue) is transparent
    out = load_image(p)
    assert px(out, (0, 0)) == (255, 255, 255)
    assert px(out, (1, 0)) == (0, 255, 0)


def test_grayscale_and_bilevel_become_rgb(tmp_path):
    Image.new("L", (2, 2), 77).save(tmp_path / "g.png")
    Image.new("1", (2, 2), 1).save(tmp_path / "b.png")
    assert px(load_image(tmp_path / "g.png")) == (77, 77, 77)
    assert px(load_image(tmp_path / "b.png")) == (255, 255, 255)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(p, quality=95)  # pure red in CMYK
    out = load_image(p)
    assert out.mode == "RGB" and close(px(out), (255, 0, 0), tol=12)


def test_16bit_png_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    p = tmp_path / "deep.png"
    Image.fromarray(arr).save(p)  # I;16
    assert Image.open(p).mode.startswith("I")
    out = load_image(p)
    assert [px(out, (i, 0))[0] for i in range(3)] == [0, 128, 255]


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 tall
    arr[:, :20] = (255, 0, 0)  # left half red, right half blue
    arr[:, 20:] = (0, 0, 255)
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif, quality=95)
    out = load_image(p)
    assert out.size == (20, 40)
    # rotating 90 degrees clockwise puts the original left (red) half on top
    assert close(px(out, (10, 5)), (255, 0, 0), tol=30)
    assert close(px(out, (10, 34)), (0, 0, 255), tol=30)


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(p).is_animated
    assert close(px(load_image(p)), (255, 0, 0), tol=4)


@pytest.mark.skipif(not features.check("webp_anim") if "webp_anim" in features.get_supported_features() else not features.check("webp"),
                    reason="Pillow built without animated WebP")
def test_animated_webp_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((0, 200, 0), (200, 0, 200))]
    p = tmp_path / "anim.webp"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=50, lossless=True)
    assert close(px(load_image(p)), (0, 200, 0), tol=4)


# ------------------------------------------------------------------- refusals

def _png_bytes(size=(16, 16)) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_truncated_png_and_jpeg_raise_corrupt(tmp_path):
    data = _png_bytes((64, 64))
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    import io

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, "JPEG")
    (tmp_path / "trunc.jpg").write_bytes(buf.getvalue()[:300])
    for name in ("trunc.png", "trunc.jpg"):
        with pytest.raises(CorruptImageError) as err:
            load_image(tmp_path / name)
        assert name in str(err.value)


def test_garbage_empty_and_text_are_not_images(tmp_path):
    (tmp_path / "garbage.png").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a picture\n")
    for name in ("garbage.png", "empty.jpg", "notes.txt"):
        with pytest.raises(NotAnImageError) as err:
            load_image(tmp_path / name)
        assert name in str(err.value)
        assert isinstance(err.value, ImageLoadError)


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")


def _huge_header_png(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims ``width x height`` (a decompression-bomb shape)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_header(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_huge_header_png(100_000, 100_000))
    with pytest.raises(ImageTooLargeError) as err:
        load_image(p)
    msg = str(err.value)
    assert "bomb.png" in msg and "decompression bomb" in msg and "100000x100000" in msg


def test_pixel_budget_is_configurable(tmp_path):
    p = tmp_path / "big.png"
    Image.new("RGB", (300, 300), "white").save(p)
    with pytest.raises(ImageTooLargeError):
        load_image(p, max_pixels=300 * 300 - 1)
    assert load_image(p, max_pixels=300 * 300).size == (300, 300)
    assert load_image(p, max_pixels=None).size == (300, 300)


# ------------------------------------------------------------------- scanning

def test_scan_reports_every_skip_and_never_aborts(tmp_path):
    good = tmp_path / "a" / "good.png"
    good.parent.mkdir()
    Image.new("RGBA", (5, 5), (0, 0, 0, 0)).save(good)
    Image.new("L", (5, 5), 3).save(tmp_path / "a" / "gray.jpg")
    data = _png_bytes((64, 64))
    (tmp_path / "a" / "trunc.png").write_bytes(data[:100])
    (tmp_path / "bad.webp").write_bytes(b"RIFF0000WEBPjunk")
    (tmp_path / "bomb.png").write_bytes(_huge_header_png(50_000, 50_000))
    (tmp_path / "readme.txt").write_text("hello")
    ok, skipped = scan_images(tmp_path)
    assert sorted(p.name for p in ok) == ["good.png", "gray.jpg"]
    reasons = {p.name: r for p, r in skipped}
    assert set(reasons) == {"trunc.png", "bad.webp", "bomb.png", "readme.txt"}
    assert reasons["trunc.png"].startswith("CorruptImageError")
    assert reasons["bomb.png"].startswith("ImageTooLargeError")
    assert reasons["readme.txt"].startswith("NotAnImageError")
    ok2, skipped2 = scan_images(tmp_path, extensions=(".png",))
    assert [p.name for p in ok2] == ["good.png"] and {p.name for p, _ in skipped2} == {"trunc.png", "bomb.png"}
