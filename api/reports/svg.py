"""Charts of the daily report as inline SVG, drawn here on the server: they print, and the page needs no script.

Two kinds: a stacked column chart (incidents per local hour, one colour per rule) and horizontal bars (per rule,
handling status, top cameras and zones). Every text is escaped; sizes are in CSS pixels of a viewBox, so the
charts scale with the page.
"""

from __future__ import annotations

import hashlib
from html import escape

PALETTE = {
    "no_helmet": "#f59e0b",
    "exit_blocked": "#ef4444",
    "ebike_indoor": "#8b5cf6",
    "smoke_fire": "#dc2626",
    "intrusion": "#3b82f6",
    "loitering": "#14b8a6",
    "line_crossing": "#6366f1",
    "camera_offline": "#6b7280",
    "camera_tamper": "#a16207",
    "new": "#ef4444",
    "acknowledged": "#f59e0b",
    "resolved": "#10b981",
    "false_positive": "#9ca3af",
}
_SPARE = ("#0ea5e9", "#84cc16", "#e11d48", "#7c3aed", "#059669", "#d97706")
_FONT = 'font-family="system-ui, sans-serif"'


def color(key: str) -> str:
    """A fixed colour per rule / status; others get one of the spare colours by a hash of the name."""
    return PALETTE.get(key) or _SPARE[hashlib.sha256(key.encode()).digest()[0] % len(_SPARE)]


def _nice_max(value: int) -> int:
    """The axis maximum: `value` rounded up to 1, 2 or 5 × a power of ten (at least 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if value <= m * step:
                return m * step
        step *= 10


def stacked_hours(hours: list[dict[str, int]], series: list[tuple[str, str]], label: str) -> str:
    """Columns per hour (0-23) stacked by `series` ([(key, legend text)], bottom first)."""
    width, height, left, top, bottom = 720, 230, 36, 12, 56
    plot_h = height - top - bottom
    peak = _nice_max(max((sum(h.values()) for h in hours), default=0))
    slot = (width - left - 8) / 24
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" {_FONT} font-size="11">'
    ]
    for tick in (0, peak // 2, peak) if peak > 1 else (0, peak):
        y = top + plot_h - plot_h * tick / peak
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#6b7280">{tick}</text>')
    for hour, counts in enumerate(hours):
        x, base = left + hour * slot + 2, float(top + plot_h)
        for key, _name in series:
            n = counts.get(key, 0)
            if n:
                h = plot_h * n / peak
                base -= h
                parts.append(
                    f'<rect class="bar" data-rule="{escape(key)}" data-hour="{hour}" data-count="{n}" x="{x:.1f}" '
                    f'y="{base:.1f}" width="{slot - 4:.1f}" height="{h:.1f}" fill="{color(key)}"/>'
                )
        if hour % 3 == 0:
            parts.append(
                f'<text x="{x + (slot - 4) / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                f'fill="#6b7280">{hour:02d}:00</text>'
            )
    parts.append(_legend(series, left, height - 22, width))
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: list[tuple[str, str]], x0: int, y: int, width: int) -> str:
    parts, x = [], float(x0)
    for key, name in series:
        if x > width - 90:
            break
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{color(key)}"/>')
        parts.append(f'<text x="{x + 14:.1f}" y="{y + 9}" fill="#374151">{escape(name)}</text>')
        x += 24 + 12 * len(name) if not name.isascii() else 24 + 6.5 * len(name)
    return "".join(parts)


def hbars(items: list[tuple[str, str, int]], label: str) -> str:
    """Horizontal bars [(colour key, text, value)], in the given order."""
    if not items:
        return ""
    row, width, left = 26, 340, 130
    height = row * len(items) + 6
    peak = max(v for _k, _t, v in items) or 1
    parts = [
        f'<svg class="chart hbars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" {_FONT} font-size="12">'
    ]
    for n, (key, name, value) in enumerate(items):
        y = 4 + n * row
        w = (width - left - 44) * value / peak
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" fill="#374151">{escape(_short(name))}</text>'
            f'<rect class="bar" data-key="{escape(key)}" data-count="{value}" x="{left}" y="{y + 3}" '
            f'width="{max(w, 1):.1f}" height="16" rx="2" fill="{color(key)}"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" fill="#111827">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(name: str, limit: int = 16) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
