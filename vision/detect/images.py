"""Loading untrusted images (CLI files, HTTP uploads) into RGB uint8 arrays, with clear errors.

The header is read first (PIL's lazy open) and the pixel count checked before anything is decoded, so a
decompression bomb costs nothing. Truncated files fail on decode with a message instead of a half-grey image.
EXIF orientation is applied, so boxes refer to the image as a viewer shows it.
"""

from __future__ import annotations

import io
import pathlib
import warnings

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from vision.detect.errors import ImageError

DEFAULT_MAX_PIXELS = 50_000_000  # 8K UHD is 33 MP


def load_image(
    source: pathlib.Path | bytes, *, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> npt.NDArray[np.uint8]:
    """Decode a file path or raw bytes to an RGB HxWx3 uint8 array; raises ImageError naming `name` (or the path)."""
    label = name or (str(source) if isinstance(source, pathlib.Path) else "<upload>")
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{label}: image too large ({exc})") from None
        except UnidentifiedImageError:
            raise ImageError(f"{label}: not an image (unrecognised format)") from None
        width, height = img.size
        if width < 1 or height < 1:
            raise ImageError(f"{label}: image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise ImageError(
                f"{label}: image too large: {width}x{height} = {width * height} pixels (limit {max_pixels})"
            )
        try:
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"{label}: corrupt or truncated {img.format or 'image'}: {exc}") from None
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


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
