"""Annotated evidence image: zone polygon (semi-transparent fill + outline), boxes with label, track id and
confidence, and a header bar with rule, camera name and local time. Drawn with Pillow so CJK text renders
(OpenCV's putText has no CJK glyphs). Pure: returns a new array, never touches its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from vision.media.fonts import load_font
from vision.types import Detections

RGB = tuple[int, int, int]

ZONE_COLOR: RGB = (255, 48, 48)
HEADER_BG = (0, 0, 0, 170)
TEXT_COLOR: RGB = (255, 255, 255)
# Box colours, by track id (or class id when untracked); distinct from the zone red.
PALETTE: tuple[RGB, ...] = (
    (0, 200, 255),
    (255, 200, 0),
    (0, 230, 118),
    (255, 64, 255),
    (255, 140, 0),
    (120, 120, 255),
)


def box_color(tracker_id: int, class_id: int) -> RGB:
    key = tracker_id if tracker_id >= 0 else class_id
    return PALETTE[key % len(PALETTE)]


def line_width(height: int, width: int) -> int:
    return max(2, round(min(height, width) / 240))


def font_size(height: int) -> int:
    return max(12, round(height / 32))


def format_local_time(local_time: datetime) -> str:
    if local_time.tzinfo is None or local_time.utcoffset() is None:
        raise ValueError("local_time must be timezone-aware (the camera's local time)")
    return local_time.strftime("%Y-%m-%d %H:%M:%S %Z").strip() or local_time.isoformat()


def _zone_pixels(zone: Sequence[Sequence[float]], width: int, height: int) -> list[tuple[float, float]]:
    pts = np.asarray(zone, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise ValueError(f"zone polygon must be at least 3 normalised [x, y] points, got shape {pts.shape}")
    return [(float(x) * width, float(y) * height) for x, y in pts]


def _draw_zone(img: Image.Image, zone: Sequence[Sequence[float]], alpha: float, lw: int) -> Image.Image:
    poly = _zone_pixels(zone, img.width, img.height)
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.polygon(poly, fill=(*ZONE_COLOR, round(255 * alpha)))
    draw.line([*poly, poly[0]], fill=(*ZONE_COLOR, 255), width=lw, joint="curve")
    return Image.alpha_composite(img, overlay)


def _label(det: Detections) -> str:
    class_name = det.data.get("class_name")
    label = str(det.label[0]) or (str(class_name[0]) if class_name is not None else "") or str(int(det.class_id[0]))
    tid = int(det.tracker_id[0])
    return f"{label}{f' #{tid}' if tid >= 0 else ''} {float(det.confidence[0]):.2f}"


def _draw_boxes(img: Image.Image, detections: Detections, lw: int, fsize: int, font_path: Path | None) -> None:
    draw = ImageDraw.Draw(img)
    font = load_font(fsize, font_path)
    for det in detections:
        x1, y1, x2, y2 = (float(v) for v in det.xyxy[0])
        color = box_color(int(det.tracker_id[0]), int(det.class_id[0]))
        draw.rectangle((x1, y1, x2, y2), outline=color, width=lw)
        text = _label(det)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        th, tw = bottom - top + 4, right - left + 6
        ty = y1 - th if y1 - th >= 0 else y1
        draw.rectangle((x1, ty, x1 + tw, ty + th), fill=color)
        draw.text((x1 + 3, ty + 2 - top), text, fill=(0, 0, 0), font=font)


def _draw_header(img: Image.Image, text: str, fsize: int, font_path: Path | None) -> Image.Image:
    font = load_font(fsize, font_path)
    probe = ImageDraw.Draw(img)
    _, top, _, bottom = probe.textbbox((0, 0), text, font=font)
    bar_h = bottom - top + fsize // 2
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    ImageDraw.Draw(overlay).rectangle((0, 0, img.width, bar_h), fill=HEADER_BG)
    img = Image.alpha_composite(img, overlay)
    ImageDraw.Draw(img).text((fsize // 2, fsize // 4 - top), text, fill=TEXT_COLOR, font=font)
    return img


def header_text(rule: str, camera_name: str, local_time: datetime) -> str:
    return f"{rule}  |  {camera_name}  |  {format_local_time(local_time)}"


def draw_detections(
    image: npt.NDArray[np.uint8],
    detections: Detections,
    *,
    zone: Sequence[Sequence[float]] | None = None,
    zone_alpha: float = 0.25,
    font_path: Path | None = None,
) -> npt.NDArray[np.uint8]:
    """An RGB copy of `image` (HxWx3 uint8) with the zone (normalised [x, y], or None) and the boxes drawn."""
    img = _draw(image, detections, zone, zone_alpha, font_path)
    out: npt.NDArray[np.uint8] = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return out


def annotate(
    image: npt.NDArray[np.uint8],
    detections: Detections,
    *,
    zone: Sequence[Sequence[float]] | None,
    rule: str,
    camera_name: str,
    local_time: datetime,
    zone_alpha: float = 0.25,
    font_path: Path | None = None,
) -> npt.NDArray[np.uint8]:
    """`draw_detections` plus the evidence header bar (rule, camera name, local time)."""
    img = _draw(image, detections, zone, zone_alpha, font_path)
    img = _draw_header(img, header_text(rule, camera_name, local_time), font_size(image.shape[0]), font_path)
    out: npt.NDArray[np.uint8] = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return out


def _draw(
    image: npt.NDArray[np.uint8],
    detections: Detections,
    zone: Sequence[Sequence[float]] | None,
    zone_alpha: float,
    font_path: Path | None,
) -> Image.Image:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 uint8 RGB, got shape {image.shape} dtype {image.dtype}")
    height, width = image.shape[:2]
    lw, fsize = line_width(height, width), font_size(height)
    img = Image.fromarray(image).convert("RGBA")  # convert copies: the input is never drawn on
    if zone is not None:
        img = _draw_zone(img, zone, zone_alpha, lw)
    _draw_boxes(img, detections, lw, fsize, font_path)
    return img
