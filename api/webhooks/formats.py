"""Message bodies per subscription format: the IncidentEvent JSON, or DingTalk / WeCom / Feishu robot messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum

from pydantic import JsonValue

from api.jsontypes import EventJSON
from api.links import MediaLinks, public_event


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


def _link_items(event: EventJSON, page: str | None) -> list[tuple[str, str]]:
    """(text, url) of the event's links (made public: signed when the deployment signs links) and of its page."""
    items = [
        ("查看详情 Details", page),
        ("查看快照 Snapshot", event.get("snapshot_url")),
        ("查看视频 Clip", event.get("clip_url")),
    ]
    return [(text, str(url)) for text, url in items if url]


def markdown(event: EventJSON, page: str | None = None) -> str:
    """`event` as made public by `public_event` (its links are the ones to show); `page`: the mobile page's link."""
    text = [f"### {title(event)}", "", *_lines(event)]
    if event.get("snapshot_url"):
        text += ["", f"![snapshot]({event['snapshot_url']})"]
    links = _link_items(event, page)
    if links:
        text += ["", " | ".join(f"[{name}]({url})" for name, url in links)]
    return "\n".join(text)


def _json(event: EventJSON, page: str | None) -> EventJSON:
    return event  # exactly the IncidentEvent fields: its JSON forbids extra keys, so no page link here


def _dingtalk(event: EventJSON, page: str | None) -> EventJSON:
    return {"msgtype": "markdown", "markdown": {"title": title(event), "text": markdown(event, page)}}


def _wecom(event: EventJSON, page: str | None) -> EventJSON:
    return {"msgtype": "markdown", "markdown": {"content": markdown(event, page)}}


def _feishu(event: EventJSON, page: str | None) -> EventJSON:
    paragraphs: list[JsonValue] = [[{"tag": "text", "text": line.replace("**", "")}] for line in _lines(event)]
    links: list[JsonValue] = [{"tag": "a", "text": name, "href": url} for name, url in _link_items(event, page)]
    if links:
        paragraphs.append(links)
    return {"msg_type": "post", "content": {"post": {"zh_cn": {"title": title(event), "content": paragraphs}}}}


_RENDER: dict[WebhookFormat, Callable[[EventJSON, str | None], EventJSON]] = {
    WebhookFormat.json: _json,
    WebhookFormat.dingtalk: _dingtalk,
    WebhookFormat.wecom: _wecom,
    WebhookFormat.feishu: _feishu,
}


def render(fmt: str, payload: EventJSON, links: MediaLinks | str) -> bytes:
    """The raw body for one delivery (`payload` is the stored IncidentEvent JSON). `links`: signed `MediaLinks`
    (`snapshot_url`/`clip_url` open without a key; the chat formats link the mobile page too), or a base URL for
    plain API links."""
    event = public_event(payload, links)
    page = links.page(str(event["id"])) if isinstance(links, MediaLinks) and links.signer is not None else None
    body = _RENDER[WebhookFormat(fmt)](event, page)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
