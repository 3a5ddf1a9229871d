"""Words of the chat messages (DingTalk, WeCom, Feishu): the field labels here, the domain's names (rules, event
types, handling states, severities) and local times from api/vocabulary.py. The generic JSON format is a contract and
never translated.
"""

from __future__ import annotations

from api.vocabulary import (
    DEFAULT_LANGUAGE,
    EVENT_TYPES,
    HANDLING,
    RULES,
    SEVERITIES,
    Language,
    event_type_name,
    handling_name,
    language,
    local_time,
    rule_name,
    severity_name,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "EVENT_TYPES",
    "HANDLING",
    "LABELS",
    "RULES",
    "SEVERITIES",
    "Language",
    "event_type_name",
    "handling_name",
    "label",
    "language",
    "local_time",
    "rule_name",
    "severity_name",
]

LABELS: dict[Language, dict[str, str]] = {
    Language.zh_cn: {
        "event": "事件",
        "site": "站点",
        "camera": "摄像头",
        "zone": "区域",
        "started": "开始",
        "ended": "结束",
        "confidence": "置信度",
        "details": "查看详情",
        "snapshot": "查看快照",
        "clip": "查看视频",
        "digest": "{count} 起{rule}（{camera}，最近 {minutes} 分钟）",
        "digest_more": "另有 {count} 起",
        "checkpoint": "证据链检查点",
        "chain": "证据链",
        "seq": "序号",
        "recorded": "记录时间",
        "key": "签名密钥",
    },
    Language.en: {
        "event": "Event",
        "site": "Site",
        "camera": "Camera",
        "zone": "Zone",
        "started": "Started",
        "ended": "Ended",
        "confidence": "Confidence",
        "details": "Details",
        "snapshot": "Snapshot",
        "clip": "Clip",
        "digest": "{count} more {rule} at {camera} in the last {minutes} min",
        "digest_more": "{count} more",
        "checkpoint": "Evidence checkpoint",
        "chain": "Chain",
        "seq": "Sequence",
        "recorded": "Recorded",
        "key": "Signing key",
    },
}


def label(key: str, lang: Language = DEFAULT_LANGUAGE) -> str:
    return LABELS[lang][key]
