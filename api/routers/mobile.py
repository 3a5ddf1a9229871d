"""`/ui/i/{id}`: the mobile incident page a pushed link opens (`?exp=…&sig=…`), in a phone browser, without a key.

Server-rendered HTML (every value escaped) with the annotated snapshot, the clip in `<video preload=metadata>` (the
browser streams it with Range requests) and the incident's camera, zone, rule and times. Its media links reuse the
`exp`/`sig` the page was opened with, so a signed page never hands out links that live longer than itself; opened
with a key instead (a proxy that adds it), the page signs new ones. The ack / resolve / false-positive buttons show
when the page was opened with a key or the browser tab holds the web UI's key (`mobile.js`), and call the handling
routes with it: a signed link alone never handles anything.

Security headers: a strict Content-Security-Policy (only this origin; no inline script or style), no Referer (the
link's signature must not leak to other sites), no caching by shared caches.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse

from api.camera_store import CameraFileInvalid, CameraNotFound
from api.deps import SIGNED_LINK, CamerasDep, MediaKey, SettingsDep, StoreDep
from api.jsontypes import Responses
from api.links import MediaLinks
from api.media_links import link_signer
from api.routers.incidents import evidence_dir
from api.store.handling import Action
from api.store.incidents import get_incident
from api.store.models import Incident
from vision.media.manifest import read_clips

router = APIRouter(tags=["ui"])

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
}
_PROBLEM = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}  # errors stay JSON
RESPONSES: Responses = {
    200: {"content": {"text/html": {}}, "description": "The page"},
    403: {"content": _PROBLEM, "description": "Signed link tampered with, for another incident, incomplete or expired"},
    404: {"content": _PROBLEM, "description": "Unknown incident"},
}
ACTION_TEXT = {Action.ack: "确认 Ack", Action.resolve: "处置 Resolve", Action.false_positive: "误报 False positive"}


@router.get("/ui/i/{incident_id}", response_class=HTMLResponse, responses=RESPONSES, summary="Mobile incident page")
def incident_page(
    incident_id: str,
    key: MediaKey,
    store: StoreDep,
    settings: SettingsDep,
    cameras: CamerasDep,
    exp: Annotated[int | None, Query(include_in_schema=False)] = None,
    sig: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> HTMLResponse:
    with store.read() as session:
        row = get_incident(session, incident_id, sites=key.sites)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id!r} not found")
        session.expunge(row)
    signed = key is SIGNED_LINK
    links = MediaLinks("", query=f"exp={exp}&sig={sig}") if signed else MediaLinks("", link_signer(settings))
    name = _camera_name(cameras, row.camera_id)
    html = _page(row, name, links, _clip_count(settings.media_dir, row), keyed=not signed)
    return HTMLResponse(html, headers=HEADERS)


def _camera_name(cameras: CamerasDep, camera_id: str) -> str:
    try:
        return cameras.get(camera_id).config.name or camera_id
    except (CameraNotFound, CameraFileInvalid):  # deleted or broken since: the page shows the id
        return camera_id


def _clip_count(media_dir: Path, row: Incident) -> int:
    directory = evidence_dir(media_dir, row.clip_path)
    return len(read_clips(directory)) if directory is not None else 0


def _time(value: datetime | None) -> str:
    if value is None:
        return "-"
    text = escape(value.isoformat())
    return f'<time datetime="{text}">{text}</time>'


def _facts(row: Incident, camera: str) -> str:
    rows = [
        ("摄像头 Camera", escape(camera)),
        ("站点 Site", escape(row.site)),
        ("规则 Rule", escape(row.rule)),
        ("区域 Zone", escape(row.zone or "-")),
        ("级别 Severity", escape(row.severity)),
        ("状态 Status", f"{escape(row.status)} / <span id=handling>{escape(row.handling)}</span>"),
        ("开始 Started", _time(row.started_at)),
        ("结束 Ended", _time(row.ended_at)),
        ("置信度 Confidence", f"{row.confidence:.2f}"),
    ]
    return "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)


def _media(row: Incident, links: MediaLinks, clips: int) -> str:
    parts = []
    if row.snapshot_path:
        src = escape(links.snapshot(row.id))
        parts.append(f'<a href="{src}"><img id=snapshot src="{src}" alt="snapshot 快照"></a>')
    if row.clip_path:
        poster = f' poster="{escape(links.snapshot(row.id))}"' if row.snapshot_path else ""
        src = escape(links.clip(row.id))
        parts.append(f'<video id=clip controls playsinline preload=metadata src="{src}"{poster}></video>')
    if clips > 1:
        items = "".join(
            f'<li><a href="{escape(links.clips(row.id, i))}">视频 Clip {i + 1}/{clips}</a></li>' for i in range(clips)
        )
        parts.append(f"<ul class=clips>{items}</ul>")
    return "".join(parts) or "<p class=muted>暂无证据 No evidence yet</p>"


def _page(row: Incident, camera: str, links: MediaLinks, clips: int, *, keyed: bool) -> str:
    buttons = "".join(
        f'<button type=button data-action="{a.value}">{escape(text)}</button>' for a, text in ACTION_TEXT.items()
    )
    title = escape(f"{row.rule} @ {camera}")
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · safewatch</title><link rel="stylesheet" href="/ui/mobile.css"></head>
<body data-incident="{escape(row.id)}" data-keyed="{int(keyed)}">
<header><strong>safewatch</strong> <span class="badge {escape(row.severity)}">{escape(row.severity)}</span></header>
<main><h1>{title}</h1>{_media(row, links, clips)}<dl>{_facts(row, camera)}</dl>
<div id=actions class=actions hidden>{buttons}</div><p id=message role=status></p></main>
<script src="/ui/mobile.js"></script></body></html>
"""
