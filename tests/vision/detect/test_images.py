from __future__ import annotations

import io
import pathlib
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vision.detect.errors import ImageError
from vision.detect.images import DecodedImage, decode_image, load_image, sample_frames
from vision.types import Detections


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


# -- hostile bytes: every decoder failure is an ImageError ----------------------------------------------------------

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM"]


def encoded(fmt: str, size: tuple[int, int] = (64, 48), **params: object) -> bytes:
    """A small real image (a colour gradient) in `fmt`."""
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    y = np.linspace(0, 255, size[1], dtype=np.uint8)
    rgb = np.stack(np.broadcast_arrays(x[None, :], y[:, None], (x[None, :] // 2 + y[:, None] // 2)), axis=-1)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format=fmt, **params)
    return buf.getvalue()


def _damaged() -> list[tuple[str, bytes]]:
    cases = []
    for fmt in FORMATS:
        data = encoded(fmt)
        for cut in (4, 8, 16, 24, 40, 64, len(data) // 2, len(data) - 4):
            cases.append((f"{fmt}-cut-{cut}", data[:cut]))
        for at in (10, 20, 30, len(data) // 3):
            flipped = bytearray(data)
            flipped[at] ^= 0xFF
            cases.append((f"{fmt}-flip-{at}", bytes(flipped)))
    return cases


@pytest.mark.parametrize(("case", "data"), _damaged(), ids=[c for c, _ in _damaged()])
def test_damaged_images_decode_or_fail_with_image_error(case: str, data: bytes) -> None:
    try:
        out = load_image(data, name=case)
    except ImageError as exc:
        assert str(exc).startswith(f"{case}: ")
    else:
        assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"P6 100 100 255\n" + b"\x00" * 100, "corrupt or truncated PPM"),  # the pixels are cut short
        (b"P6 100 100", "corrupt or truncated image header: Reached EOF while reading header"),
        (b"P6 100 100 x\n", "corrupt or truncated image header"),
        (b"P6 10 10 0\n" + b"\x00" * 300, "maxval must be greater than 0"),
        (encoded("PNG")[:20], "corrupt or truncated image header: Truncated File Read"),
        (encoded("JPEG")[:40], "corrupt or truncated image header"),
        (encoded("WEBP")[:40], "corrupt or truncated image header"),
    ],
    ids=["ppm-pixels-cut", "ppm-header-cut", "ppm-bad-token", "ppm-maxval-0", "png-header", "jpeg-header", "webp"],
)
def test_header_and_pixel_errors_are_image_errors(data: bytes, message: str) -> None:
    """These raised ValueError/OSError out of load_image (500 from POST /v1/detect, a traceback from the CLI)."""
    with pytest.raises(ImageError, match=message):
        load_image(data, name="upload.ppm")


# -- reduced decoding --------------------------------------------------------------------------------------------------


def test_large_jpeg_is_decoded_reduced_by_the_decoder() -> None:
    data = encoded("JPEG", (4000, 3000))
    full = decode_image(data)
    assert full.pixels.shape == (3000, 4000, 3) and not full.reduced
    small = decode_image(data, max_side=640)
    assert (small.width, small.height) == (4000, 3000)
    assert small.pixels.shape == (750, 1000, 3)  # libjpeg at 1/4 scale: the smaller side limits the factor
    assert np.abs(small.pixels[::75, ::100].astype(int) - full.pixels[::300, ::400].astype(int)).mean() < 12


def test_other_formats_are_reduced_after_decoding() -> None:
    small = decode_image(encoded("PNG", (4000, 3000)), max_side=640)
    assert (small.width, small.height) == (4000, 3000)
    assert small.pixels.shape == (500, 667, 3)  # 1/6 (rounded up): between max_side and twice it
    assert decode_image(encoded("PNG", (1200, 800)), max_side=640).pixels.shape == (800, 1200, 3)  # factor 1


def test_decoded_pixel_cap_counts_what_is_decoded() -> None:
    png = encoded("PNG", (3000, 2000))
    with pytest.raises(ImageError, match=r"3000x2000 PNG needs 6000000 pixels decoded \(limit 2000000"):
        decode_image(png, max_side=640, max_decoded_pixels=2_000_000)
    jpeg = decode_image(encoded("JPEG", (3000, 2000)), max_side=640, max_decoded_pixels=2_000_000)
    assert jpeg.pixels.shape == (500, 750, 3)  # decoded at 1/2 (1.5 MP), then halved
    progressive = encoded("JPEG", (3000, 2000), progressive=True)  # holds every coefficient at any scale
    with pytest.raises(ImageError, match=r"3000x2000 progressive JPEG needs 6000000 pixels decoded"):
        decode_image(progressive, max_side=640, max_decoded_pixels=2_000_000)
    assert decode_image(progressive, max_side=640, max_decoded_pixels=6_000_000).pixels.shape == (500, 750, 3)


def test_exif_rotation_with_reduced_decoding() -> None:
    img = Image.new("RGB", (3000, 2000), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 1500, 2000))  # left half blue
    exif = img.getexif()
    exif[0x0112] = 6  # shown rotated 90° clockwise: the blue half ends up on top
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    out = decode_image(buf.getvalue(), max_side=640)
    assert (out.width, out.height) == (2000, 3000) and out.pixels.shape == (750, 500, 3)
    assert out.pixels[100, 250, 2] > 200 and out.pixels[650, 250, 0] > 200


def test_boxes_map_back_to_the_original_pixels() -> None:
    image = DecodedImage(np.zeros((500, 750, 3), np.uint8), width=3000, height=2000)
    det = Detections(
        xyxy=np.array([[10, 20, 110, 220], [700, 400, 750, 500]], np.float32),
        confidence=np.array([0.9, 0.5], np.float32),
        class_id=np.array([0, 0]),
    )
    out = image.to_original(det)
    assert out.xyxy.tolist() == [[40, 80, 440, 880], [2800, 1600, 3000, 2000]]
    assert out.confidence.tolist() == det.confidence.tolist()
    same = DecodedImage(np.zeros((20, 30, 3), np.uint8), width=30, height=20)
    assert same.to_original(det) is det
