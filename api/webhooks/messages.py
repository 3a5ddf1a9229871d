"""What a chat message says, before a platform's envelope wraps it (`api.webhooks.formats`).

A `Message` is a title, lines (each with its own links), footer links and an optional image. One builder per
delivery kind: an incident event, a digest of a camera's incidents of one rule (push rate control,
`api/store/pacing.py`), an evidence checkpoint. Words come from `api.webhooks.i18n` in the subscription's language,
times are shown in the camera's time zone (`Camera.zone`; None: the server's).

The daily report builds its own `Message` and sends it through `api.webhooks.formats.chat_body`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from api.jsontypes import EventJSON
from api.links import MediaLinks, public_event
from api.webhooks.i18n import (
    DEFAULT_LANGUAGE,
    Language,
    event_type_name,
    label,
    local_time,
    rule_name,
    severity_name,
)

Link = tuple[str, str]
#: How many incidents a digest links one by one; the others are counted ("another 12").
DIGEST_LINKS = 20
_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Line:
    text: str
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Message:
    title: str
    lines: tuple[Line, ...]
    links: tuple[Link, ...] = ()
    image: str | None = None


@dataclass(frozen=True)
class Camera:
    """What a message shows of a camera: its display name and time zone (None: unknown, the server's zone)."""

    name: str | None = None
    zone: tzinfo | None = None


@dataclass(frozen=True)
class Context:
    """How one delivery is worded: language, links (signed `MediaLinks`, or a base URL for plain API links) and the
    camera the message is about."""

    links: MediaLinks | str
    language: Language = DEFAULT_LANGUAGE
    camera: Camera = field(default_factory=Camera)

    def page(self, incident_id: str) -> str | None:
        """The mobile incident page, when links are signed (it needs no key then)."""
        links = self.links
        return links.page(incident_id) if isinstance(links, MediaLinks) and links.signer is not None else None

    def camera_text(self, camera_id: str) -> str:
        name = self.camera.name
        return f"{name} ({camera_id})" if name and name != camera_id else camera_id


def _field(name: str, value: object, lang: Language) -> Line:
    return Line(f"**{label(name, lang)}**: {value}")


def title(event: EventJSON, lang: Language = DEFAULT_LANGUAGE, camera: str | None = None) -> str:
    severity = severity_name(str(event.get("severity", "warning")), lang)
    return f"[{severity}] {rule_name(str(event['rule']), lang)} @ {camera or event['camera_id']}"


def incident_links(event: EventJSON, page: str | None, lang: Language) -> tuple[Link, ...]:
    """(text, url) of a public event's links (signed when the deployment signs links) and of its page."""
    items = [
        (label("details", lang), page),
        (label("snapshot", lang), event.get("snapshot_url")),
        (label("clip", lang), event.get("clip_url")),
    ]
    return tuple((text, str(url)) for text, url in items if url)


def incident_message(event: EventJSON, ctx: Context) -> Message:
    """`event` as made public by `public_event` (its links are the ones to show)."""
    lang = ctx.language
    confidence = event.get("confidence")
    lines = (
        _field("event", event_type_name(str(event["type"]), lang), lang),
        _field("site", event["site"], lang),
        _field("camera", ctx.camera_text(str(event["camera_id"])), lang),
        _field("zone", event.get("zone") or "-", lang),
        _field("started", local_time(event.get("started_at"), ctx.camera.zone), lang),
        _field("ended", local_time(event.get("ended_at"), ctx.camera.zone), lang),
        _field("confidence", f"{confidence if isinstance(confidence, int | float) else 0.0:.2f}", lang),
        Line(f"**ID**: {event['id']}:{event['seq']}"),
    )
    snapshot = event.get("snapshot_url")
    return Message(
        title=title(event, lang, ctx.camera_text(str(event["camera_id"]))),
        lines=lines,
        links=incident_links(event, ctx.page(str(event["id"])), lang),
        image=str(snapshot) if snapshot else None,
    )


def public_digest(payload: EventJSON, links: MediaLinks | str) -> EventJSON:
    """The stored digest with each event made public (`public_event`): the generic JSON body of a digest."""
    events = payload.get("events")
    listed = events if isinstance(events, list) else []
    public: list[EventJSON] = [public_event(e, links) for e in listed if isinstance(e, dict)]
    return {**payload, "events": public}  # type: ignore[dict-item]


def _minutes(since: object, until: object) -> int:
    try:
        span = datetime.fromisoformat(str(until)) - datetime.fromisoformat(str(since))
    except ValueError:
        return 1
    return max(1, round(span.total_seconds() / 60))


def digest_message(digest: EventJSON, ctx: Context) -> Message:
    """ "3 起区域入侵（1号门，最近 5 分钟）" / "3 more Intrusion at 1号门 in the last 5 min", one line per incident with
    its links (the first `DIGEST_LINKS`), the others counted. `digest` as made public by `public_digest`."""
    lang = ctx.language
    events = [e for e in digest.get("events") or [] if isinstance(e, dict)]  # type: ignore[union-attr]
    camera = ctx.camera_text(str(digest["camera_id"]))
    rule = rule_name(str(digest["rule"]), lang)
    heading = label("digest", lang).format(
        count=len({e.get("id") for e in events}),
        rule=rule,
        camera=camera,
        minutes=_minutes(digest.get("since"), digest.get("until")),
    )
    severities = [str(e.get("severity", "warning")) for e in events]
    worst = max(severities, key=lambda s: _RANK.get(s, 1), default="warning")
    lines = [
        Line(
            f"{local_time(e.get('started_at'), ctx.camera.zone)} {event_type_name(str(e.get('type')), lang)}"
            f" {e.get('zone') or ''} ({e.get('id')}:{e.get('seq')})".replace("  ", " "),
            incident_links(e, ctx.page(str(e.get("id"))), lang),
        )
        for e in events[:DIGEST_LINKS]
    ]
    if len(events) > DIGEST_LINKS:
        lines.append(Line(label("digest_more", lang).format(count=len(events) - DIGEST_LINKS)))
    site = Line(f"**{label('site', lang)}**: {digest.get('site')}")
    return Message(title=f"[{severity_name(worst, lang)}] {heading}", lines=(site, *lines))


def checkpoint_message(checkpoint: EventJSON, ctx: Context) -> Message:
    lang = ctx.language
    entry = checkpoint.get("entry")
    signature = entry.get("signature") if isinstance(entry, dict) else None
    key_id = signature.get("key_id") if isinstance(signature, dict) else None
    lines = (
        _field("chain", checkpoint.get("chain"), lang),
        _field("seq", checkpoint.get("seq"), lang),
        Line(f"**sha256**: {checkpoint.get('entry_sha256')}"),
        _field("key", key_id or "-", lang),
        _field("recorded", local_time(checkpoint.get("recorded_at"), ctx.camera.zone), lang),
    )
    return Message(title=f"{label('checkpoint', lang)} {checkpoint.get('chain')} #{checkpoint.get('seq')}", lines=lines)
