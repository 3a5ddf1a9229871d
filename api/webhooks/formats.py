"""Message bodies per subscription format: the IncidentEvent JSON, or DingTalk / WeCom / Feishu robot messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum

from pydantic import JsonValue

from api.jsontypes import EventJSON
from api.links import public_event, snapshot_link


class WebhookFormat(StrEnum):
    json = "json"
    dingtalk = "dingtalk"
    wecom = "wecom"
    feishu = "feishu"


_TYPE_TEXT = {"opened": "新告警 opened", "updated": "告警更新 updated", "closed": "告警结束 closed"}


def title(event: EventJSON) -> str:
    return f"[{event.get('severity', 'warning')}] {event['rule']} @ {event['camera_id']}"


def _lines(event: EventJSON) -> list[str]:
    confidence = event.get("confidence")
    rows = [
        ("事件 Event", _TYPE_TEXT.get(str(event["type"]), str(event["type"]))),
        ("站点 Site", event["site"]),
        ("摄像头 Camera", event["camera_id"]),
        ("区域 Zone", event.get("zone") or "-"),
        ("开始 Started", event["started_at"]),
        ("结束 Ended", event.get("ended_at") or "-"),
        ("置信度 Confidence", f"{confidence if isinstance(confidence, int | float) else 0.0:.2f}"),
        ("ID", f"{event['id']}:{event['seq']}"),
    ]
    return [f"- **{k}**: {v}" for k, v in rows]


def markdown(event: EventJSON, base_url: str) -> str:
    text = [f"### {title(event)}", "", *_lines(event)]
    if event.get("snapshot_url"):
        link = snapshot_link(base_url, str(event["id"]))
        text += ["", f"![snapshot]({link})", f"[查看快照 Snapshot]({link})"]
    return "\n".join(text)


def _json(event: EventJSON, base_url: str) -> EventJSON:
    return event


def _dingtalk(event: EventJSON, base_url: str) -> EventJSON:
    return {"msgtype": "markdown", "markdown": {"title": title(event), "text": markdown(event, base_url)}}


def _wecom(event: EventJSON, base_url: str) -> EventJSON:
    return {"msgtype": "markdown", "markdown": {"content": markdown(event, base_url)}}


def _feishu(event: EventJSON, base_url: str) -> EventJSON:
    paragraphs: list[JsonValue] = [[{"tag": "text", "text": line.replace("**", "")}] for line in _lines(event)]
    if event.get("snapshot_url"):
        paragraphs.append(
            [{"tag": "a", "text": "查看快照 Snapshot", "href": snapshot_link(base_url, str(event["id"]))}]
        )
    return {"msg_type": "post", "content": {"post": {"zh_cn": {"title": title(event), "content": paragraphs}}}}


_RENDER: dict[WebhookFormat, Callable[[EventJSON, str], EventJSON]] = {
    WebhookFormat.json: _json,
    WebhookFormat.dingtalk: _dingtalk,
    WebhookFormat.wecom: _wecom,
    WebhookFormat.feishu: _feishu,
}


def render(fmt: str, payload: EventJSON, base_url: str) -> bytes:
    """The raw body for one delivery (`payload` is the stored IncidentEvent JSON)."""
    event = public_event(payload, base_url)
    return json.dumps(_RENDER[WebhookFormat(fmt)](event, base_url), ensure_ascii=False, separators=(",", ":")).encode()
