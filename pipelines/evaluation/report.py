"""The evaluation as text, JSON and an HTML report (timelines and plots are SVG written here: no plotting library).

The HTML report (`write_html`) holds the table per rule and overall, then per clip a timeline: one row per (rule,
zone), episodes as green bars, ignore spans grey, incidents as ticks at their opening time (blue TP, orange
duplicate, red FP, grey ignored); with a sweep, a table and a precision/recall plot per value.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.evaluation.episodes import Span
from pipelines.evaluation.metrics import OVERALL, Counts, Outcome
from pipelines.evaluation.run import ClipEvaluation, Evaluation

COLUMNS = ("RULE", "EPIS", "TP", "FP", "DUP", "MISS", "IGN", "PREC", "REC", "F1", "DELAY p50", "p90", "FA/h")
COLOURS = {Outcome.tp: "#1f77b4", Outcome.duplicate: "#ff7f0e", Outcome.fp: "#d62728", Outcome.ignored: "#888888"}


def _f(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _row(name: str, c: Counts) -> list[str]:
    return [
        name, str(c.episodes), str(c.tp), str(c.fp), str(c.duplicates), str(c.missed), str(c.ignored),
        _f(c.precision), _f(c.recall), _f(c.f1), _f(c.median_delay_s, ".1f"), _f(c.p90_delay_s, ".1f"),
        _f(c.false_alarms_per_hour, ".1f"),
    ]  # fmt: skip


def table_rows(totals: dict[str, Counts]) -> list[list[str]]:
    return [_row(name, c) for name, c in totals.items()]


def text(ev: Evaluation) -> str:
    """The table per rule and overall, after one line per clip."""
    lines = []
    for clip in ev.clips:
        es = clip.episodes
        lines.append(f"{es.file}: {es.clip.name} ({es.duration_s:.1f} s), camera {clip.camera.id}: "
                     f"{len(clip.incidents)} incidents, {len(es.episodes)} episodes")  # fmt: skip
    if ev.overrides:
        lines.append("with " + ", ".join(f"{p}={v}" for p, v in ev.overrides))
    lines.append(f"tolerance {ev.tolerance:g} s; delays in seconds")
    widths = [14, 5, 4, 4, 4, 5, 4, 5, 5, 5, 10, 5, 6]
    rows = [list(COLUMNS), *table_rows(ev.totals)]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
              for r in rows]  # fmt: skip
    return "\n".join(lines)


def sweep_text(param: str, runs: Sequence[tuple[Any, Evaluation]]) -> str:
    rules = list(dict.fromkeys(r for _, ev in runs for r in ev.totals))
    lines = [f"sweep {param}: precision / recall (F1) per value"]
    lines.append(f"{'VALUE':<10}" + "".join(f"{r:>24}" for r in rules))
    for value, ev in runs:
        cells = [f"{_f(c.precision)} / {_f(c.recall)} ({_f(c.f1)})" if (c := ev.totals.get(r)) else "-" for r in rules]
        lines.append(f"{value!s:<10}" + "".join(f"{cell:>24}" for cell in cells))
    return "\n".join(lines)


def _clip_json(clip: ClipEvaluation) -> dict[str, Any]:
    es = clip.episodes
    return {
        "file": str(es.file), "clip": str(es.clip), "camera": clip.camera.id, "duration_s": es.duration_s,
        "episodes": [{"rule": e.rule, "zone": e.zone, "subject": e.subject, "start": e.start, "end": e.end,
                      "note": e.note} for e in es.episodes],
        "incidents": [
            {"id": m.incident.id, "rule": m.incident.rule, "zone": m.incident.zone, "offset_s": m.incident.offset_s,
             "outcome": m.outcome.value, "episode": m.episode}
            for m in clip.matches
        ],
        "missed": sorted(set(range(len(es.episodes))) - {m.episode for m in clip.matches if m.outcome is Outcome.tp}),
        "rules": {r: c.as_dict() for r, c in clip.counts.items()},
    }  # fmt: skip


def as_json(ev: Evaluation) -> dict[str, Any]:
    return {
        "tolerance_s": ev.tolerance,
        "overrides": {p: v for p, v in ev.overrides},
        "rules": {r: c.as_dict() for r, c in ev.totals.items()},
        "clips": [_clip_json(c) for c in ev.clips],
    }


def sweep_json(param: str, runs: Sequence[tuple[Any, Evaluation]]) -> dict[str, Any]:
    return {"param": param, "runs": [{"value": v, **as_json(ev)} for v, ev in runs]}


def timeline_svg(clip: ClipEvaluation, width: int = 900) -> str:
    """Episodes, ignore spans and incidents per (rule, zone) of one clip on its time axis."""
    es = clip.episodes
    keys = list(dict.fromkeys([*(s.key for s in es.episodes), *(s.key for s in es.ignore),
                               *((m.incident.rule, m.incident.zone) for m in clip.matches)]))  # fmt: skip
    left, row_h, top = 190, 28, 10
    scale = (width - left - 10) / max(es.duration_s, 1e-6)
    height = top + row_h * len(keys) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11" '
           'font-family="sans-serif">']  # fmt: skip
    for row, key in enumerate(keys):
        y = top + row * row_h
        label = html.escape(key[0] + (f" / {key[1]}" if key[1] else ""))
        out.append(f'<text x="4" y="{y + 17}">{label}</text>')
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y + 14}" y2="{y + 14}" stroke="#ddd"/>')
        for spans, colour in ((es.ignore, "#cccccc"), (es.episodes, "#2ca02c")):
            mine = [s for s in spans if s.key == key]
            lane, lanes = _lanes(mine)
            for s, k in zip(mine, lane, strict=True):
                x, w, bar = left + s.start * scale, max((s.end - s.start) * scale, 2.0), 16 / lanes
                who = " ".join(t for t in (s.subject, s.note) if t)
                tip = html.escape(f"{s.start}-{s.end} s" + (f": {who}" if who else ""))
                out.append(f'<rect x="{x:.1f}" y="{y + 6 + k * bar:.1f}" width="{w:.1f}" height="{bar:.1f}" '
                           f'fill="{colour}" fill-opacity="0.6"><title>{tip}</title></rect>')  # fmt: skip
        for m in (m for m in clip.matches if (m.incident.rule, m.incident.zone) == key):
            x = left + m.incident.offset_s * scale
            tip = f"{m.outcome.value} at {m.incident.offset_s:.1f} s"
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 2}" y2="{y + 26}" stroke="{COLOURS[m.outcome]}" '
                       f'stroke-width="3"><title>{tip}</title></line>')  # fmt: skip
    axis_y = top + row_h * len(keys) + 12
    step = 10 if es.duration_s <= 300 else 60
    for t in range(0, int(es.duration_s) + 1, step):
        out.append(f'<text x="{left + t * scale:.1f}" y="{axis_y}" text-anchor="middle">{t}s</text>')
    out.append("</svg>")
    return "\n".join(out)


def _lanes(spans: Sequence[Span]) -> tuple[list[int], int]:
    """A lane per span so that overlapping spans (episodes of different subjects) sit one above the other; the
    lane of each span and how many lanes."""
    ends: list[float] = []
    lane = [0] * len(spans)
    for i in sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].end)):
        free = next((k for k, end in enumerate(ends) if end <= spans[i].start), None)
        if free is None:
            free = len(ends)
            ends.append(0.0)
        ends[free], lane[i] = spans[i].end, free
    return lane, max(len(ends), 1)


def sweep_svg(param: str, runs: Sequence[tuple[Any, Evaluation]], width: int = 600, height: int = 260) -> str:
    """Overall precision (blue) and recall (green) against the swept values (evenly spaced, in order given)."""
    left, right, top, bottom = 50, 20, 15, 40
    n = len(runs)
    xs = [left + (i + 0.5) * (width - left - right) / max(n, 1) for i in range(n)]

    def y(v: float) -> float:
        return top + (1 - v) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11" '
           'font-family="sans-serif">']  # fmt: skip
    for v in (0.0, 0.5, 0.9, 1.0):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')  # fmt: skip
    for attr, colour in (("precision", "#1f77b4"), ("recall", "#2ca02c")):
        pts = [(x, getattr(ev.totals[OVERALL], attr)) for x, (_, ev) in zip(xs, runs, strict=True)]
        known = [(x, v) for x, v in pts if v is not None]
        if len(known) > 1:
            path = " ".join(f"{x:.1f},{y(v):.1f}" for x, v in known)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y(v):.1f}" r="4" fill="{colour}"><title>{attr} {v:.2f}</title></circle>'
                for x, v in known]  # fmt: skip
    for x, (value, _) in zip(xs, runs, strict=True):
        out.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">{html.escape(str(value))}</text>'
        )
    out.append(f'<text x="{width / 2:.0f}" y="{height - 6}" text-anchor="middle">{html.escape(param)} '
               '(blue: precision, green: recall)</text></svg>')  # fmt: skip
    return "\n".join(out)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(
    out_dir: Path, ev: Evaluation, sweep: tuple[str, Sequence[tuple[Any, Evaluation]]] | None = None
) -> Path:
    """Write `out_dir/index.html` (module docs); returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>safewatch event-level evaluation</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}td:first-child{text-align:left}</style></head><body>",
        "<h1>Event-level evaluation</h1>",
        f"<p>Tolerance {ev.tolerance:g} s. Precision = TP / (TP + FP + duplicates); delays in seconds from the "
        "episode start; FA/h = false positives per hour of footage.</p>",
        _html_table(COLUMNS, table_rows(ev.totals)),
    ]
    for clip in ev.clips:
        es = clip.episodes
        parts.append(f"<h2>{html.escape(es.file.name)}: {html.escape(es.clip.name)}, camera "
                     f"{html.escape(clip.camera.id)}</h2>")  # fmt: skip
        parts.append(timeline_svg(clip))
        parts.append(_html_table(COLUMNS, table_rows(clip.counts)))
    if sweep is not None:
        param, runs = sweep
        parts.append(f"<h2>Sweep {html.escape(param)}</h2>")
        parts.append(sweep_svg(param, runs))
        rows = [[f"{param}={v}", *_row(r, c)] for v, e in runs for r, c in e.totals.items()]
        parts.append(_html_table(["VALUE", *COLUMNS], rows))
    parts.append("</body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
