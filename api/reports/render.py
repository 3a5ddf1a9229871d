"""The daily report as one self-contained HTML page: inline CSS with a print stylesheet (A4, rows never split, table
header repeated on each page), charts as inline SVG (`api/reports/svg.py`) and thumbnails as `data:` URIs, so the
same bytes work served by the API, written by `safewatch report`, printed or mailed. No script at all.

Every value from the store or the camera configs is escaped. Chinese by default, English with `lang="en"`.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from api.reports import svg
from api.reports.daily import MAX_ROWS, DailyReport, ReportIncident
from api.reports.i18n import Language, handling_name, lifecycle_name, rule_name, severity_name, text

Thumbs = Callable[[ReportIncident], str | None]

CSS = """
*{box-sizing:border-box}
body{margin:0 auto;max-width:1080px;padding:24px;font:14px/1.5 system-ui,"PingFang SC","Noto Sans CJK SC",
"Microsoft YaHei",sans-serif;color:#111827;background:#fff}
header{border-bottom:3px solid #1d4ed8;margin-bottom:16px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:20px 0 8px}
.meta{color:#4b5563;margin:0 0 10px}
.cards{display:grid;grid-template-columns:repeat(5,1fr);gap:10px}
.card{border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px}
.card b{display:block;font-size:22px}.card span{color:#6b7280;font-size:12px}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin-top:12px}
figure{margin:0;border:1px solid #e5e7eb;border-radius:8px;padding:8px 10px;break-inside:avoid}
figure.wide{grid-column:1/-1}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block}svg.hbars{max-width:460px}
.empty{color:#6b7280}
table{width:100%;border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid #e5e7eb;padding:6px;text-align:left;vertical-align:middle}
th{background:#f3f4f6}thead{display:table-header-group}tr{break-inside:avoid}
td.thumb img{width:120px;height:auto;display:block;border-radius:4px}
.tag{display:inline-block;padding:1px 6px;border-radius:10px;font-size:12px;color:#fff}
.h-new{background:#ef4444}.h-acknowledged{background:#f59e0b}.h-resolved{background:#10b981}
.h-false_positive{background:#9ca3af}
.sev-critical{color:#b91c1c;font-weight:600}
footer{margin-top:20px;color:#9ca3af;font-size:12px}
@page{size:A4;margin:12mm}
@media print{body{padding:0;max-width:none;font-size:12px}.charts{grid-template-columns:1fr 1fr}
.card,figure{border-color:#d1d5db}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
td.thumb img{width:96px}}
@media (max-width:700px){.cards{grid-template-columns:1fr 1fr}.charts{grid-template-columns:1fr}}
"""


def duration(seconds: float | None, lang: Language) -> str:
    if seconds is None:
        return "-"
    zh = lang == "zh-CN"
    if seconds < 60:
        return f"{seconds:.0f} 秒" if zh else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} 分钟" if zh else f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} 小时" if zh else f"{seconds / 3600:.1f} h"


def _cards(report: DailyReport, lang: Language) -> str:
    ack, acked = report.median_ack_s()
    res, resolved = report.median_resolve_s()
    fp = report.false_positive_rate()
    cards = [
        ("total", str(report.total), ""),
        ("backlog", str(report.backlog), ""),
        ("ack_median", duration(ack, lang), text("of_handled", lang, n=acked)),
        ("resolve_median", duration(res, lang), text("of_handled", lang, n=resolved)),
        ("fp_rate", "-" if fp is None else f"{fp:.0%}", ""),
    ]
    return "".join(
        f'<div class="card" id="card-{k}"><span>{escape(text(k, lang))}</span><b>{escape(v)}</b>'
        f"<span>{escape(note)}</span></div>"
        for k, v, note in cards
    )


def _figure(key: str, body: str, lang: Language, *, wide: bool = False) -> str:
    content = body or f'<p class="empty">{escape(text("none", lang))}</p>'
    css = ' class="wide"' if wide else ""
    return f'<figure id="chart-{key}"{css}><figcaption>{escape(text(key, lang))}</figcaption>{content}</figure>'


def _charts(report: DailyReport, lang: Language) -> str:
    rules = report.per_rule()
    series = [(r, rule_name(r, lang)) for r in rules]
    per_rule = [(r, rule_name(r, lang), n) for r, n in rules.items()]
    handling = [(h, handling_name(h, lang), n) for h, n in report.per_handling().items()]
    cameras = [(c, c, n) for c, n in report.top_cameras()]
    zones = [(z, z, n) for z, n in report.top_zones()]
    figures = [
        _figure("per_hour", svg.stacked_hours(report.per_hour(), series, text("per_hour", lang)), lang, wide=True),
        _figure("per_rule", svg.hbars(per_rule, text("per_rule", lang)), lang),
        _figure("handling", svg.hbars(handling, text("handling", lang)), lang),
        _figure("top_cameras", svg.hbars(cameras, text("top_cameras", lang)), lang),
        _figure("top_zones", svg.hbars(zones, text("top_zones", lang)), lang),
    ]
    return "".join(figures)


def _row(i: ReportIncident, thumb: str | None, lang: Language) -> str:
    img = (
        f'<img src="{thumb}" alt="{escape(i.id)}">'
        if thumb
        else f'<span class="empty">{text("no_snapshot", lang)}</span>'
    )
    span = (i.ended_at - i.started_at).total_seconds() if i.ended_at else None
    status = f"{lifecycle_name(i.status, lang)} · " if i.status == "open" else ""
    cells = [
        f'<td class="thumb">{img}</td>',
        f'<td><time datetime="{escape(i.started_at.isoformat())}">{i.started_at:%H:%M:%S}</time></td>',
        f"<td>{escape(rule_name(i.rule, lang))}</td>",
        f"<td>{escape(i.camera)}</td>",
        f"<td>{escape(i.zone or '-')}</td>",
        f'<td class="sev-{escape(i.severity)}">{escape(severity_name(i.severity, lang))}</td>',
        f'<td>{escape(status)}<span class="tag h-{escape(i.handling)}">{escape(handling_name(i.handling, lang))}'
        "</span></td>",
        f"<td>{escape(duration(span, lang))}</td>",
    ]
    return f'<tr data-incident="{escape(i.id)}">{"".join(cells)}</tr>'


def _table(report: DailyReport, lang: Language, thumbs: Thumbs) -> str:
    if not report.incidents:
        return f'<p class="empty">{escape(text("no_incidents", lang))}</p>'
    cols = ("snapshot", "time", "rule", "camera", "zone", "severity", "status", "duration")
    head = "".join(f"<th>{escape(text('col_' + c, lang))}</th>" for c in cols)
    rows = "".join(_row(i, thumbs(i), lang) for i in report.listed)
    more = report.total - len(report.listed)
    note = f'<p class="empty">{escape(text("more_rows", lang, n=more, max=MAX_ROWS))}</p>' if more > 0 else ""
    return f'<table class="incidents"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}'


def render_daily(report: DailyReport, lang: Language, thumbs: Thumbs) -> str:
    """The page. `thumbs(incident)`: its thumbnail as a data: URI, or None."""
    zone = text("tz_cameras" if report.zone.from_cameras else "tz_default", lang)
    title = f"{text('title', lang)} · {report.site} · {report.day.isoformat()}"
    meta = (
        f"{text('site', lang)} {report.site} · {text('date', lang)} {report.day.isoformat()} · "
        f"{text('timezone', lang)} {report.zone.name}（{zone}）"
    )
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer">
<title>{escape(title)}</title><style>{CSS}</style></head>
<body><header><h1>{escape(text("title", lang))} · {escape(report.site)}</h1><p class="meta">{escape(meta)}</p></header>
<section class="cards">{_cards(report, lang)}</section>
<section class="charts">{_charts(report, lang)}</section>
<section><h2>{escape(text("incidents", lang))} ({report.total})</h2>{_table(report, lang, thumbs)}</section>
<footer>safewatch</footer></body></html>
"""
