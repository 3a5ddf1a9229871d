"""The domain's names in zh-CN (the default) and English, shared by everything that writes words for people:
chat messages (api/webhooks), daily reports and digests (api/reports). The web UI has its own catalogue
(api/ui/i18n.js) with the same words.

One table per vocabulary (rules, event types, handling states, severities). A name missing from a table (a rule added
later) shows as it is stored; local times for an ISO time in a camera's zone.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from enum import StrEnum


class Language(StrEnum):
    zh_cn = "zh-CN"
    en = "en"


DEFAULT_LANGUAGE = Language.zh_cn

RULES: dict[Language, dict[str, str]] = {
    Language.zh_cn: {
        "no_helmet": "未戴安全帽",
        "exit_blocked": "消防通道占用",
        "ebike_indoor": "电动车入室",
        "smoke_fire": "烟雾火焰",
        "intrusion": "区域入侵",
        "loitering": "徘徊",
        "line_crossing": "越线",
        "camera_offline": "摄像头离线",
        "camera_tamper": "摄像头遮挡/移位",
    },
    Language.en: {
        "no_helmet": "No helmet",
        "exit_blocked": "Fire exit blocked",
        "ebike_indoor": "E-bike indoors",
        "smoke_fire": "Smoke/fire",
        "intrusion": "Intrusion",
        "loitering": "Loitering",
        "line_crossing": "Line crossing",
        "camera_offline": "Camera offline",
        "camera_tamper": "Camera covered/moved",
    },
}

EVENT_TYPES: dict[Language, dict[str, str]] = {
    Language.zh_cn: {"opened": "新告警", "updated": "告警更新", "closed": "告警结束"},
    Language.en: {"opened": "New alert", "updated": "Alert updated", "closed": "Alert ended"},
}

HANDLING: dict[Language, dict[str, str]] = {
    Language.zh_cn: {"new": "新事件", "acknowledged": "已确认", "resolved": "已处置", "false_positive": "误报"},
    Language.en: {
        "new": "New",
        "acknowledged": "Acknowledged",
        "resolved": "Resolved",
        "false_positive": "False positive",
    },
}

SEVERITIES: dict[Language, dict[str, str]] = {
    Language.zh_cn: {"info": "提示", "warning": "警告", "critical": "严重"},
    Language.en: {"info": "Info", "warning": "Warning", "critical": "Critical"},
}


def language(value: str | None) -> Language:
    """The subscription's language; anything unknown (a row written by a newer release) reads as the default."""
    try:
        return Language(value) if value else DEFAULT_LANGUAGE
    except ValueError:
        return DEFAULT_LANGUAGE


def rule_name(rule: str, lang: Language = DEFAULT_LANGUAGE) -> str:
    return RULES[lang].get(rule, rule)


def event_type_name(event_type: str, lang: Language = DEFAULT_LANGUAGE) -> str:
    return EVENT_TYPES[lang].get(event_type, event_type)


def handling_name(state: str, lang: Language = DEFAULT_LANGUAGE) -> str:
    return HANDLING[lang].get(state, state)


def severity_name(severity: str, lang: Language = DEFAULT_LANGUAGE) -> str:
    return SEVERITIES[lang].get(severity, severity)


def local_time(value: object, zone: tzinfo | None) -> str:
    """An ISO time (as in the event JSON) in `zone` (None: the server's local zone), `2026-12-02 11:50:26 +08:00`;
    anything that is not a time is shown as it is."""
    if not isinstance(value, str | datetime):
        return "-" if value is None else str(value)
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        return value if isinstance(value, str) else str(value)
    local = when.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}" if offset else f"{local:%Y-%m-%d %H:%M:%S}"
