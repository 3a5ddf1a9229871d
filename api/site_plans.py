"""Site plan images: an uploaded PNG/JPEG (or a camera's frame) checked, decoded and re-encoded for storage.

Uploads are decoded like `POST /v1/detect`'s (`vision.detect.images.decode_image`: header read first, the pixel
count checked before anything is decoded, every decoder failure an `ImageError`), and only PNG and JPEG are taken.
What is stored is never the uploaded bytes but the decoded pixels re-encoded (PNG stays PNG for line drawings, JPEG
stays JPEG), upright after EXIF orientation, without metadata (no GPS or camera EXIF of a phone photo), reduced to
at most `2 * MAX_SIDE - 1` pixels on the longer side. So the plan served back to browsers is an image this server
wrote.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import numpy.typing as npt
from fastapi import status
from PIL import Image

from api.store.site_maps import Plan
from vision.detect.errors import ImageError
from vision.detect.images import decode_image
from vision.media.snapshot import encode_jpeg

MAX_SIDE = 2048  # decoded at 2048-4095 px on the longer side: enough to read a site plan, small enough to store
MAX_BYTES = 10 * 1024 * 1024  # the upload limit (also at most the server's `max_upload_bytes`)
JPEG_QUALITY = 90
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


class PlanRefused(Exception):
    """The upload is not a usable plan image; `status_code` and the reason for the client."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


def _format_of(data: bytes) -> str:
    if data.startswith(_PNG):
        return "PNG"
    if data.startswith(_JPEG):
        return "JPEG"
    raise PlanRefused(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "the plan must be a PNG or JPEG image")


def _refusal(exc: ImageError) -> PlanRefused:
    message = str(exc)
    if "not an image" in message:
        return PlanRefused(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, message)
    if "empty file" in message:
        return PlanRefused(status.HTTP_400_BAD_REQUEST, message)
    return PlanRefused(status.HTTP_422_UNPROCESSABLE_CONTENT, message)  # truncated, corrupt, too many pixels


def _png(pixels: npt.NDArray[np.uint8]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _plan(data: bytes, content_type: str, pixels: npt.NDArray[np.uint8]) -> Plan:
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    return Plan(data, hashlib.sha256(data).hexdigest(), content_type, width, height)


def plan_from_upload(data: bytes, *, name: str, max_decoded_pixels: int) -> Plan:
    """The stored form of an uploaded plan; raises PlanRefused (400 empty, 415 not PNG/JPEG, 422 corrupt or too
    large)."""
    if not data:
        raise PlanRefused(status.HTTP_400_BAD_REQUEST, "the uploaded file is empty (0 bytes)")
    kind = _format_of(data)
    try:
        image = decode_image(data, name=name, max_side=MAX_SIDE, max_decoded_pixels=max_decoded_pixels)
    except ImageError as exc:
        raise _refusal(exc) from None
    if kind == "PNG":
        return _plan(_png(image.pixels), "image/png", image.pixels)
    return _plan(encode_jpeg(image.pixels, quality=JPEG_QUALITY), "image/jpeg", image.pixels)


def plan_from_frame(pixels: npt.NDArray[np.uint8]) -> Plan:
    """A camera's frame (RGB) as a JPEG plan."""
    data = encode_jpeg(pixels, quality=JPEG_QUALITY, max_side=2 * MAX_SIDE - 1)
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
    return Plan(data, hashlib.sha256(data).hexdigest(), "image/jpeg", width, height)
