"""Snapshot evidence: the annotated JPEG and the original frame's JPEG, plus the best-frame selector.

`write_snapshots` renders and writes both files (`snapshot.jpg`, `snapshot_raw.jpg`) and returns their paths and
sha256s; write errors (disk full, permissions) come back as `missing` results, never as exceptions.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from vision.media.annotate import annotate
from vision.media.config import SnapshotConfig
from vision.media.results import WriteResult, write_bytes_atomic
from vision.types import Detections

log = logging.getLogger(__name__)

ANNOTATED_NAME = "snapshot.jpg"
RAW_NAME = "snapshot_raw.jpg"


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    annotated: WriteResult
    raw: WriteResult

    @property
    def files(self) -> tuple[WriteResult, WriteResult]:
        return (self.annotated, self.raw)


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) of an image downscaled (aspect kept) so its longest side is at most `max_side`."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_jpeg(image: npt.NDArray[np.uint8], quality: int = 90, max_side: int | None = None) -> bytes:
    """JPEG bytes of an RGB image, downscaled (aspect kept) so its longest side is at most `max_side`."""
    img = Image.fromarray(image)
    size = scaled_size(img.width, img.height, max_side)
    if size != img.size:
        img = img.resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def save_snapshots(
    raw: npt.NDArray[np.uint8], annotated: npt.NDArray[np.uint8], out_dir: Path, config: SnapshotConfig
) -> SnapshotResult:
    """Write `snapshot.jpg` (annotated) and `snapshot_raw.jpg` (the original pixels) into `out_dir`."""
    ann = encode_jpeg(annotated, config.jpeg_quality, config.max_side)
    orig = encode_jpeg(raw, config.jpeg_quality, config.raw_max_side)
    return SnapshotResult(
        annotated=write_bytes_atomic(out_dir / ANNOTATED_NAME, ann),
        raw=write_bytes_atomic(out_dir / RAW_NAME, orig),
    )


def write_snapshots(
    image: npt.NDArray[np.uint8],
    detections: Detections,
    out_dir: Path,
    *,
    zone: Sequence[Sequence[float]] | None,
    rule: str,
    camera_name: str,
    local_time: datetime,
    config: SnapshotConfig | None = None,
) -> SnapshotResult:
    """Render the annotated copy of `image` and write both JPEGs into `out_dir`."""
    cfg = config or SnapshotConfig()
    annotated = annotate(
        image,
        detections,
        zone=zone,
        rule=rule,
        camera_name=camera_name,
        local_time=local_time,
        zone_alpha=cfg.zone_alpha,
        font_path=cfg.font_path,
    )
    return save_snapshots(image, annotated, out_dir, cfg)


@dataclass(frozen=True, slots=True)
class EvidenceFrame:
    """A frame kept as evidence: its own copy of the pixels, the detections drawn on it and its score."""

    image: npt.NDArray[np.uint8]
    detections: Detections
    confidence: float
    pts: float
    wall_time: float


class BestFrameSelector:
    """Keeps the highest-confidence evidence frame of one incident; the frame is copied only when it is better."""

    def __init__(self) -> None:
        self._best: EvidenceFrame | None = None

    @property
    def best(self) -> EvidenceFrame | None:
        return self._best

    def offer(
        self,
        image: npt.NDArray[np.uint8],
        detections: Detections,
        confidence: float,
        *,
        pts: float = 0.0,
        wall_time: float = 0.0,
    ) -> bool:
        """Keep this frame if its confidence beats the current best (ties keep the earlier one); True if kept."""
        if self._best is not None and confidence <= self._best.confidence:
            return False
        self._best = EvidenceFrame(image.copy(), detections, float(confidence), float(pts), float(wall_time))
        return True

    def reset(self) -> None:
        self._best = None
