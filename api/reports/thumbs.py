"""Thumbnails of incident snapshots for the report: the annotated snapshot downscaled to a small JPEG, inlined as a
`data:` URI so the report file stands alone (printed, mailed, opened offline).

JPEGs are decoded reduced (`Image.draft`: the decoder's 1/2-1/8 scaling), so a report of a few hundred incidents is
quick. A snapshot that is missing, outside the media root or unreadable has no thumbnail (the row says so).
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from api.routers.incidents import resolve_media

log = logging.getLogger(__name__)

THUMB_SIDE = 240  # px, longest side; shown at half that size, sharp on high-density screens and in print
QUALITY = 70


def thumbnail(media_root: Path, snapshot_path: str | None) -> str | None:
    """`data:image/jpeg;base64,…` of the incident's annotated snapshot, or None."""
    path = resolve_media(media_root, snapshot_path)
    if path is None:
        return None
    try:
        with Image.open(path) as img:
            img.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
            small = img.convert("RGB")
            small.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR)
            buf = io.BytesIO()
            small.save(buf, format="JPEG", quality=QUALITY)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        log.warning("no thumbnail of %s: %s", path, type(exc).__name__)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
