"""The words of the daily report and digest in Chinese (default) and English: the page's labels and lifecycle names
here; rule, handling and severity names from api/vocabulary.py (the same words as the chat messages)."""

from __future__ import annotations

from typing import Literal

from api import vocabulary

Language = Literal["zh-CN", "en"]  # as the webhooks' `language` (api/webhooks/i18n.py)
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")

LIFECYCLE: dict[str, tuple[str, str]] = {"open": ("进行中", "Ongoing"), "closed": ("已结束", "Ended")}
TEXT: dict[str, tuple[str, str]] = {
    "title": ("安全日报", "Daily safety report"),
    "site": ("站点", "Site"),
    "date": ("日期", "Date"),
    "timezone": ("时区", "Time zone"),
    "tz_cameras": ("取自站点摄像头的排程时区", "from the site's camera schedules"),
    "tz_default": ("站点摄像头未设时区，按 UTC", "no camera of the site sets one: UTC"),
    "total": ("事件总数", "Incidents"),
    "backlog": ("待处理", "Not yet handled"),
    "ack_median": ("确认用时中位数", "Median time to acknowledge"),
    "resolve_median": ("处置用时中位数", "Median time to resolve"),
    "fp_rate": ("误报率", "False-positive rate"),
    "of_handled": ("共 {n} 起", "of {n}"),
    "per_hour": ("各时段事件数（按规则）", "Incidents per hour, by rule"),
    "per_rule": ("各规则事件数", "Incidents per rule"),
    "handling": ("处置状态", "Handling status"),
    "top_cameras": ("事件最多的摄像头", "Top cameras"),
    "top_zones": ("事件最多的区域", "Top zones"),
    "incidents": ("事件列表", "Incidents"),
    "col_time": ("时间", "Time"),
    "col_snapshot": ("快照", "Snapshot"),
    "col_rule": ("规则", "Rule"),
    "col_camera": ("摄像头", "Camera"),
    "col_zone": ("区域", "Zone"),
    "col_severity": ("级别", "Severity"),
    "col_status": ("状态", "Status"),
    "col_duration": ("持续", "Duration"),
    "no_incidents": ("当日无事件。", "No incidents on this day."),
    "more_rows": (
        "另有 {n} 起事件未列出（每份日报最多 {max} 行）。",
        "{n} more incidents not listed (at most {max} rows).",
    ),
    "no_snapshot": ("无快照", "no snapshot"),
    "none": ("无", "none"),
    "digest_title": ("{site} 安全日报 {date}", "{site} daily report {date}"),
    "digest_rules": ("各规则事件", "Incidents per rule"),
    "digest_backlog": ("站点待处理事件（全部日期）", "Site backlog (all days, not yet handled)"),
    "digest_link": ("查看日报", "Open the report"),
    "digest_missed": ("错过的日报", "Missed reports"),
    "digest_more": ("另有 {n} 天", "{n} more days"),
}


def _pick(table: dict[str, tuple[str, str]], key: str, lang: Language) -> str:
    pair = table.get(key)
    return key if pair is None else pair[0 if lang == "zh-CN" else 1]


def rule_name(rule: str, lang: Language) -> str:
    return vocabulary.rule_name(rule, vocabulary.Language(lang))


def handling_name(handling: str, lang: Language) -> str:
    return vocabulary.handling_name(handling, vocabulary.Language(lang))


def lifecycle_name(status: str, lang: Language) -> str:
    return _pick(LIFECYCLE, status, lang)


def severity_name(severity: str, lang: Language) -> str:
    return vocabulary.severity_name(severity, vocabulary.Language(lang))


def text(key: str, lang: Language, **values: object) -> str:
    return _pick(TEXT, key, lang).format(**values)
