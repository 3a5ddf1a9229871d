"""Find and load a font that has CJK glyphs (Noto Sans CJK SC), for camera names like '3号门 消防通道'.

Order: an explicit path, fontconfig (`fc-match :lang=zh-cn`), then known Debian/Ubuntu/Fedora paths. In a .ttc
collection the Simplified Chinese face is chosen by name. When none is found the error is logged once and Pillow's
built-in font is used: Latin text still renders, CJK characters come out as boxes.
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
from pathlib import Path

from PIL import ImageFont

log = logging.getLogger(__name__)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

KNOWN_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)


class FontNotFoundError(RuntimeError):
    """No font with CJK glyphs was found."""


def _fc_match() -> Path | None:
    exe = shutil.which("fc-match")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-f", "%{file}", ":lang=zh-cn"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None
    return path if path is not None and path.is_file() else None


@functools.cache
def find_cjk_font(explicit: Path | None = None) -> Path:
    """The path of a font with CJK glyphs; raises `FontNotFoundError` naming what was tried."""
    if explicit is not None:
        if explicit.is_file():
            return explicit
        raise FontNotFoundError(f"font file not found: {explicit}")
    candidates = [p for p in (_fc_match(), *map(Path, KNOWN_CJK_FONTS)) if p is not None]
    for path in candidates:
        if path.is_file():
            return path
    raise FontNotFoundError(
        "no CJK font found (install Debian fonts-noto-cjk, or set font_path); tried fc-match and "
        + ", ".join(KNOWN_CJK_FONTS)
    )


def _sc_index(path: Path) -> int:
    """Index of the Simplified Chinese face in a collection (Noto Sans CJK: JP, KR, SC, TC, HK), else 0."""
    if path.suffix.lower() != ".ttc":
        return 0
    for index in range(10):
        try:
            family = ImageFont.truetype(str(path), 12, index=index).getname()[0] or ""
        except OSError:
            break
        if family.endswith(" SC"):
            return index
    return 0


@functools.cache
def load_font(size: int, explicit: Path | None = None) -> Font:
    """A font of `size` pixels with CJK glyphs, or Pillow's built-in font (logged once) when none exists."""
    try:
        path = find_cjk_font(explicit)
        return ImageFont.truetype(str(path), size, index=_sc_index(path))
    except (FontNotFoundError, OSError) as exc:
        log.error("CJK text will render as boxes: %s", exc)
        return ImageFont.load_default(size)
