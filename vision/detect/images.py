"""Loading untrusted images (CLI files, HTTP uploads) into RGB uint8 arrays, with clear errors.

The header is read first (PIL's lazy open) and the pixel count checked before anything is decoded, so a
decompression bomb costs nothing. Every exception a decoder raises on hostile bytes (truncated data, lying headers,
broken EXIF) becomes an ImageError naming the file: Pillow raises a dozen unrelated types, so the decode boundary
catches them all. EXIF orientation is applied, so boxes refer to the image as a viewer shows it.

`decode_image(..., max_side=N)` is for callers that only need about N pixels per side (a detector with a 416-640 px
input): a large JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself (`Image.draft`), other formats are
decoded whole and then reduced, so the image always ends up between N and 2N pixels on its longer side. The result
remembers the original size, and `DecodedImage.to_original` maps boxes back to the pixels of the image as sent.
`max_decoded_pixels` caps what is actually decoded, which is what the memory of one decode is proportional to,
independently of how large a baseline JPEG's header says the image is. Measured peaks per decoded pixel: 4-5 bytes
(RGB PNG, GIF, TIFF), 8 (RGBA PNG), 15 (WebP, whose decoder copies twice); a progressive JPEG needs 3-6 bytes per
pixel of the full image for its coefficients whatever the scale, so its full size is what counts.
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
import struct
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from vision.detect.errors import ImageError
from vision.types import Detections, ImageArray

DEFAULT_MAX_PIXELS = 50_000_000  # 8K UHD is 33 MP

#: What Pillow's plugins raise on hostile input, beyond their documented OSError (found by fuzzing the formats it
#: opens): header parsers raise ValueError/SyntaxError/struct.error/EOFError/IndexError/KeyError/TypeError,
#: arithmetic on lying sizes ZeroDivisionError/OverflowError, a huge allocation MemoryError.
DECODER_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    struct.error,
    EOFError,
    MemoryError,
    ArithmeticError,
    LookupError,
    TypeError,
    RuntimeError,
    Image.DecompressionBombError,
)
_MESSAGE_CHARS = 200  # decoder messages can quote header bytes; keep them short
_ORIENTATION = 0x0112
#: EXIF orientation → the transposition that shows the image upright (as `ImageOps.exif_transpose` does).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {
    Image.Transpose.TRANSPOSE,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """The decoded RGB pixels (possibly reduced) and the size of the image as sent (EXIF-rotated)."""

    pixels: ImageArray
    width: int
    height: int

    @property
    def reduced(self) -> bool:
        return (self.width, self.height) != (int(self.pixels.shape[1]), int(self.pixels.shape[0]))

    def to_original(self, det: Detections) -> Detections:
        """`det` (boxes in `pixels`) with its boxes in the pixels of the original image."""
        if not self.reduced or not len(det):
            return det
        sx, sy = self.width / self.pixels.shape[1], self.height / self.pixels.shape[0]
        scale = np.array([sx, sy, sx, sy], dtype=np.float32)
        return dataclasses.replace(det, xyxy=np.minimum(det.xyxy * scale, [self.width, self.height] * 2))


def load_image(
    source: pathlib.Path | bytes, *, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> npt.NDArray[np.uint8]:
    """Decode a file path or raw bytes to an RGB HxWx3 uint8 array; raises ImageError naming `name` (or the path)."""
    return decode_image(source, name=name, max_pixels=max_pixels).pixels


def decode_image(
    source: pathlib.Path | bytes,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
    max_decoded_pixels: int | None = None,
) -> DecodedImage:
    """Decode to RGB, reduced to [max_side, 2*max_side) px on the longer side when larger; raises ImageError.

    `max_pixels` limits the image's size as its header states it, `max_decoded_pixels` what is decoded (after a
    JPEG's reduced decoding); both refuse before any pixel is decoded.
    """
    label = name or (str(source) if isinstance(source, pathlib.Path) else "<upload>")
    data = _read(source, label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning, "Corrupt EXIF data": the limits below decide
        img = _open(data, label)
        try:
            return _decode(img, label, max_pixels, max_side, max_decoded_pixels)
        except ImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{label}: image too large ({exc})") from None
        except DECODER_ERRORS as exc:
            raise ImageError(f"{label}: corrupt or truncated {img.format or 'image'}: {_short(exc)}") from None
        finally:
            img.close()


def _read(source: pathlib.Path | bytes, label: str) -> bytes:
    if isinstance(source, pathlib.Path):
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            raise ImageError(f"{label}: file not found") from None
        except OSError as exc:
            raise ImageError(f"{label}: cannot read: {exc.strerror or exc}") from None
    else:
        data = source
    if not data:
        raise ImageError(f"{label}: empty file (0 bytes)")
    return data


def _short(exc: BaseException) -> str:
    text = f"{exc}" or type(exc).__name__
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "…"


def _open(data: bytes, label: str) -> Image.Image:
    """The lazily opened image (header parsed, nothing decoded)."""
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label}: image too large ({exc})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image (unrecognised format)") from None
    except DECODER_ERRORS as exc:
        raise ImageError(f"{label}: corrupt or truncated image header: {_short(exc)}") from None


def _decode(
    img: Image.Image, label: str, max_pixels: int, max_side: int | None, max_decoded_pixels: int | None
) -> DecodedImage:
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageError(f"{label}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(f"{label}: image too large: {width}x{height} = {width * height} pixels (limit {max_pixels})")
    orientation = img.getexif().get(_ORIENTATION)
    upright = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    if max_side is not None and img.format == "JPEG":
        img.draft("RGB", (max_side, max_side))  # libjpeg decodes at 1/2, 1/4 or 1/8 scale, never below max_side
    decoded_w, decoded_h = img.size
    # a progressive JPEG holds the DCT coefficients of the whole image while it decodes, at any scale
    progressive = img.format == "JPEG" and bool(img.info.get("progressive"))
    kind = "progressive JPEG" if progressive else img.format or "image"
    needed = width * height if progressive else decoded_w * decoded_h
    if max_decoded_pixels is not None and needed > max_decoded_pixels:
        raise ImageError(
            f"{label}: image too large: {width}x{height} {kind} needs {needed} pixels decoded "
            f"(limit {max_decoded_pixels}; large baseline JPEGs are decoded reduced)"
        )
    img.load()
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    if max_side is not None and (factor := max(rgb.size) // max_side) >= 2:
        rgb = rgb.reduce(factor)
    if upright is not None:
        rgb = rgb.transpose(upright)
    pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    swap = upright in _SWAPS_AXES
    return DecodedImage(pixels, width=height if swap else width, height=width if swap else height)


def sample_frames(video: pathlib.Path, count: int, step: int = 1, start: int = 0) -> list[npt.NDArray[np.uint8]]:
    """`count` RGB frames of a video file, every `step`-th from `start` (calibration, tests, benchmarks)."""
    import av  # local: only the callers that sample video pay for PyAV

    frames: list[npt.NDArray[np.uint8]] = []
    try:
        with av.open(str(video)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i >= start and (i - start) % step == 0:
                    frames.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
                    if len(frames) == count:
                        break
    except (OSError, av.FFmpegError) as exc:
        raise ImageError(f"{video}: cannot decode: {exc}") from None
    if not frames:
        raise ImageError(f"{video}: no frames decoded")
    return frames
