"""Message bodies per subscription format: the generic JSON, or DingTalk / WeCom / Feishu robot messages.

Three delivery kinds (`Kind`): an incident event, a digest of one camera's incidents of one rule (push rate control)
and an evidence checkpoint. The generic JSON of an incident is exactly the `IncidentEvent` (a contract, never
translated); a digest and a checkpoint have their own JSON, with `kind` naming them (README, "Push rate control").
The chat formats wrap a `Message` (`api.webhooks.messages`) worded in the subscription's language.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum

from pydantic import JsonValue

from api.jsontypes import EventJSON
from api.links import MediaLinks, public_event
from api.webhooks.i18n import DEFAULT_LANGUAGE, Language, label
from api.webhooks.i18n import language as language_of
from api.webhooks.messages import (
    Camera,
    Context,
    Message,
    checkpoint_message,
    digest_message,
    incident_message,
    public_digest,
)
from api.webhooks.messages import title as message_title


class WebhookFormat(StrEnum):
    json = "json"
    dingtalk = "dingtalk"
    wecom = "wecom"
    feishu = "feishu"


class Kind(StrEnum):
    """What a delivery carries; also the `X-Safewatch-Event-Type` header and the subscription's `events` names
    (`incident` covers digests, which fold incidents)."""

    incident = "incident"
    digest = "incident.digest"
    checkpoint = "evidence.checkpoint"


def title(event: EventJSON, language: Language = DEFAULT_LANGUAGE) -> str:
    """The chat title of an incident event: `[警告] 消防通道占用 @ cam-1`."""
    return message_title(event, language)


def message_markdown(message: Message) -> str:
    """The markdown DingTalk and WeCom show: title, lines with their links, image, footer links."""
    text = [f"### {message.title}", ""]
    for line in message.lines:
        links = " | ".join(f"[{name}]({url})" for name, url in line.links)
        text.append(f"- {line.text} {links}".rstrip())
    if message.image:
        text += ["", f"![snapshot]({message.image})"]
    if message.links:
        text += ["", " | ".join(f"[{name}]({url})" for name, url in message.links)]
    return "\n".join(text)


def markdown(event: EventJSON, page: str | None = None, language: Language = DEFAULT_LANGUAGE) -> str:
    """An incident event (as made public by `public_event`) as markdown; `page`: the mobile page's link."""
    message = incident_message(event, Context(links="", language=language))
    if page:
        message = Message(
            message.title, message.lines, ((label("details", language), page), *message.links), message.image
        )
    return message_markdown(message)


def _dingtalk(message: Message) -> EventJSON:
    return {"msgtype": "markdown", "markdown": {"title": message.title, "text": message_markdown(message)}}


def _wecom(message: Message) -> EventJSON:
    return {"msgtype": "markdown", "markdown": {"content": message_markdown(message)}}


def _feishu(message: Message) -> EventJSON:
    paragraphs: list[JsonValue] = []
    for line in message.lines:
        row: list[JsonValue] = [{"tag": "text", "text": line.text.replace("**", "")}]
        row += [{"tag": "a", "text": f" {name}", "href": url} for name, url in line.links]
        paragraphs.append(row)
    links: list[JsonValue] = [{"tag": "a", "text": name, "href": url} for name, url in message.links]
    if links:
        paragraphs.append(links)
    return {"msg_type": "post", "content": {"post": {"zh_cn": {"title": message.title, "content": paragraphs}}}}


_CHAT: dict[WebhookFormat, Callable[[Message], EventJSON]] = {
    WebhookFormat.dingtalk: _dingtalk,
    WebhookFormat.wecom: _wecom,
    WebhookFormat.feishu: _feishu,
}


def chat_body(fmt: str, message: Message) -> EventJSON:
    """A `Message` in a chat robot's envelope (`fmt`: dingtalk, wecom or feishu)."""
    return _CHAT[WebhookFormat(fmt)](message)


def encode(body: EventJSON) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def render(
    fmt: str,
    payload: EventJSON,
    links: MediaLinks | str,
    *,
    kind: str = Kind.incident,
    language: str | None = None,
    camera: Camera | None = None,
) -> bytes:
    """The raw body of one delivery. `payload`: the stored IncidentEvent JSON, digest or checkpoint. `links`: signed
    `MediaLinks` (`snapshot_url`/`clip_url` open without a key; the chat formats link the mobile page too), or a
    base URL for plain API links. `language` (zh-CN by default) and `camera` (name, time zone) word the chat
    formats; the generic JSON ignores them."""
    lang = language_of(language)
    ctx = Context(links=links, language=lang, camera=camera or Camera())
    if kind == Kind.digest:
        public = public_digest(payload, links)
        body = public if fmt == WebhookFormat.json else chat_body(fmt, digest_message(public, ctx))
    elif kind == Kind.checkpoint:
        body = payload if fmt == WebhookFormat.json else chat_body(fmt, checkpoint_message(payload, ctx))
    else:
        event = public_event(payload, links)
        body = event if fmt == WebhookFormat.json else chat_body(fmt, incident_message(event, ctx))
    return encode(body)
