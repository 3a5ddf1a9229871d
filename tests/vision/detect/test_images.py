from __future__ import annotations

import io
import pathlib
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vision.detect.errors import ImageError
from vision.detect.images import load_image, sample_frames


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height (zeros), a few hundred KB: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg(test_images: pathlib.Path) -> bytes:
    return (test_images / "bus.jpg").read_bytes()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda ti: b"", "empty file"),
        (lambda ti: b"hello, not an image", "not an image"),
        (lambda ti: _jpeg(ti)[:30000], "truncated JPEG"),
        (lambda ti: png_bomb(20000, 20000), "too large"),
        (lambda ti: png_bomb(9000, 6000), "9000x6000 = 54000000 pixels"),
    ],
    ids=["zero-size", "not-an-image", "truncated-jpeg", "bomb-20000", "over-limit"],
)
def test_bad_images_are_clear_errors(
    tmp_path: pathlib.Path, test_images: pathlib.Path, make: object, message: str
) -> None:
    path = tmp_path / "upload.jpg"
    path.write_bytes(make(test_images))  # type: ignore[operator]
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(info.value).startswith(str(path))


def test_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ImageError, match=r"nope\.png: file not found"):
        load_image(tmp_path / "nope.png")


def test_good_images_are_rgb(test_images: pathlib.Path) -> None:
    bus = load_image(test_images / "bus.jpg")
    assert bus.shape == (1080, 810, 3) and bus.dtype == np.uint8
    png = load_image((test_images / "astronaut.png").read_bytes(), name="astronaut")
    assert png.shape == (512, 512, 3)


def test_grey_and_exif_rotated_uploads(tmp_path: pathlib.Path) -> None:
    buf = io.BytesIO()
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    img.save(buf, format="JPEG", exif=exif)
    out = load_image(buf.getvalue())
    assert out.shape == (40, 20, 3) and out[..., 0].mean() > 200
    grey = io.BytesIO()
    Image.new("L", (8, 6), 128).save(grey, format="PNG")
    assert load_image(grey.getvalue()).shape == (6, 8, 3)


def test_sample_frames(sample_clip: pathlib.Path, tmp_path: pathlib.Path) -> None:
    frames = sample_frames(sample_clip, 3, step=10, start=5)
    assert len(frames) == 3 and frames[0].shape == (576, 768, 3)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nothing")
    with pytest.raises(ImageError, match=r"bad\.mp4"):
        sample_frames(bad, 1)
