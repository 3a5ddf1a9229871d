"""Incidents: list (filters + cursor), detail (events + audit trail + clips), snapshot, clips (HTTP Range), handling.

A site-scoped key sees only its sites: the list is filtered in the query, and another site's incident (detail, media,
handling) is 404 like an unknown one, so a key cannot learn that it exists.

A long incident's evidence is split into `clip-000.mp4`, `clip-001.mp4`, ... in its evidence folder (the folder of
the stored clip path); the detail lists those on disk with the times and sha256 of the folder's manifest
(`vision.media.manifest.read_clips`), `clips/{index}.mp4` serves each and `clip.mp4` the first. Every media route
answers HEAD with the headers of its GET and no body.

The media routes open with a viewer key or with a signed link for that incident (`?exp=…&sig=…`, `api.media_links`,
`api.deps.media_access`); the list and the detail hand out signed links (`snapshot_url`, `clip_url`, `clips[].url`,
the events' links and `page_url`), so a browser can show and stream evidence without sending a key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Body, HTTPException, Query, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import MediaKey, OperatorKey, SettingsDep, StoreDep, ViewerKey
from api.jsontypes import Responses
from api.links import MediaLinks, public_event, signed_links
from api.schemas import (
    ActionOut,
    ClipOut,
    EventOut,
    HandlingRequest,
    IncidentDetail,
    IncidentOut,
    IncidentPage,
    IsoDateTime,
    Problem,
)
from api.settings import Settings
from api.store.handling import Action, Actor, IncidentNotFound, InvalidTransition, handle
from api.store.incidents import (
    BadCursor,
    IncidentFilter,
    get_incident,
    incident_actions,
    incident_events,
    list_incidents,
)
from api.store.models import Incident
from vision.media.clip_plan import clip_filename
from vision.media.manifest import read_clips

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])

StatusFilter = Literal["open", "closed", "new", "acknowledged", "resolved", "false_positive"]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "Unknown incident or missing media"}}
LINK_REFUSED: Responses = {
    403: {"model": Problem, "description": "Signed link tampered with, for another incident, incomplete or expired"}
}
CLIP_RESPONSES: Responses = {
    200: {"content": {"video/mp4": {}}},
    206: {"description": "Partial content (Range)"},
    416: {"description": "Range not satisfiable (`Content-Range: bytes */size`)"},
    **NOT_FOUND,
    **LINK_REFUSED,
}
Endpoint = TypeVar("Endpoint", bound=Callable[..., FileResponse])


def _utc(value: datetime | None) -> datetime | None:
    """Naive datetimes in queries are taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@router.get("", response_model=IncidentPage, responses={400: {"model": Problem}})
def list_(
    key: ViewerKey,
    store: StoreDep,
    settings: SettingsDep,
    camera: str | None = None,
    site: str | None = None,
    rule: str | None = None,
    status_: Annotated[StatusFilter | None, Query(alias="status")] = None,
    since: Annotated[
        IsoDateTime | None, Query(description="started_at >= since (ISO 8601 date-time; naive = UTC; not a number)")
    ] = None,
    until: Annotated[IsoDateTime | None, Query(description="started_at < until (ISO 8601 date-time)")] = None,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    shadow: Annotated[
        Literal["only", "include"] | None,
        Query(description="Shadow runs' incidents (candidate models): left out unless `only` or `include`"),
    ] = None,
) -> IncidentPage:
    since, until = _utc(since), _utc(until)
    if since and until and since > until:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "`since` must not be after `until`")
    filters = IncidentFilter(
        camera=camera,
        site=site,
        rule=rule,
        status=status_,
        since=since,
        until=until,
        scope=key.sites,
        shadow=shadow or "exclude",
    )
    try:
        with store.read() as session:
            rows, next_cursor = list_incidents(session, filters, cursor=cursor, limit=limit)
            links = signed_links(settings)
            items = [_signed(IncidentOut.of(r, settings.base_url), links) for r in rows]
    except BadCursor as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    return IncidentPage(items=items, next_cursor=next_cursor)


def _signed(out: IncidentOut, links: MediaLinks) -> IncidentOut:
    """`out` with its media links signed."""
    return out.model_copy(
        update={
            "snapshot_url": links.snapshot(out.id) if out.snapshot_url else None,
            "clip_url": links.clip(out.id) if out.clip_url else None,
        }
    )


def _detail(session: Session, row: Incident, settings: Settings) -> IncidentDetail:
    base_url, directory = settings.base_url, evidence_dir(settings.media_dir, row.clip_path)
    links = signed_links(settings)
    clips = [ClipOut.of(c, base_url, row.id) for c in read_clips(directory)] if directory is not None else []
    return IncidentDetail(
        **_signed(IncidentOut.of(row, base_url), links).model_dump(),
        events=[
            EventOut.of(e, base_url).model_copy(update={"event": public_event(e.payload, links)})
            for e in incident_events(session, row.id)
        ],
        actions=[ActionOut.of(a) for a in incident_actions(session, row.id)],
        clips=[c.model_copy(update={"url": links.clips(row.id, c.index)}) for c in clips],
    )


def _require(session: Session, incident_id: str, key: Principal) -> Incident:
    row = get_incident(session, incident_id, sites=key.sites)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id!r} not found")
    return row


@router.get("/{incident_id}", response_model=IncidentDetail, responses=NOT_FOUND)
def detail(incident_id: str, key: ViewerKey, store: StoreDep, settings: SettingsDep) -> IncidentDetail:
    with store.read() as session:
        return _detail(session, _require(session, incident_id, key), settings)


def _local(media_root: Path, stored: str | None) -> Path | None:
    """A stored snapshot/clip reference → a resolved local path inside `media_root` (relative paths are under it)."""
    if not stored:
        return None
    if stored.startswith("file://"):
        stored = unquote(urlsplit(stored).path)
    elif "://" in stored:
        return None
    path = Path(stored)
    root = media_root.resolve()
    path = (path if path.is_absolute() else root / path).resolve()
    return path if path.is_relative_to(root) else None


def resolve_media(media_root: Path, stored: str | None) -> Path | None:
    """A stored snapshot/clip reference → an existing local file inside `media_root` (relative paths are under it)."""
    path = _local(media_root, stored)
    return path if path is not None and path.is_file() else None


def evidence_dir(media_root: Path, stored_clip: str | None) -> Path | None:
    """The incident's evidence folder: the folder of its stored clip path (the file itself may not exist yet), never
    the media root itself."""
    path = _local(media_root, stored_clip)
    if path is None or path.parent == media_root.resolve() or not path.parent.is_dir():
        return None
    return path.parent


def raw_variant(path: Path) -> Path:
    """The original (unannotated) snapshot sits beside the annotated one as `<stem>_raw<suffix>`
    (vision.media.snapshot writes snapshot.jpg + snapshot_raw.jpg)."""
    return path.with_name(f"{path.stem}_raw{path.suffix}")


def _media(
    store: StoreDep, settings: SettingsDep, key: Principal, incident_id: str, kind: Literal["snapshot", "clip"]
) -> Path:
    with store.read() as session:
        row = _require(session, incident_id, key)
        stored = row.snapshot_path if kind == "snapshot" else row.clip_path
    path = resolve_media(settings.media_dir, stored)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id!r} has no stored {kind}")
    return path


def _get_and_head(path: str, responses: Responses) -> Callable[[Endpoint], Endpoint]:
    """Register a media endpoint for GET and for HEAD (FileResponse sends the same headers without the body), as
    two operations with their own operation ids."""

    def register(endpoint: Endpoint) -> Endpoint:
        for method, name in (("GET", endpoint.__name__), ("HEAD", f"{endpoint.__name__}_head")):
            router.add_api_route(
                path, endpoint, methods=[method], name=name, response_class=FileResponse, responses=responses
            )
        return endpoint

    return register


@_get_and_head("/{incident_id}/snapshot.jpg", {200: {"content": {"image/jpeg": {}}}, **NOT_FOUND, **LINK_REFUSED})
def snapshot(
    incident_id: str,
    key: MediaKey,
    store: StoreDep,
    settings: SettingsDep,
    raw: Annotated[bool, Query(description="The original frame instead of the annotated one")] = False,
) -> FileResponse:
    path = _media(store, settings, key, incident_id, "snapshot")
    if raw:
        path = raw_variant(path)
        if not path.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id!r} has no raw snapshot")
    return FileResponse(path, media_type="image/jpeg")


@_get_and_head("/{incident_id}/clip.mp4", CLIP_RESPONSES)
def clip(incident_id: str, key: MediaKey, store: StoreDep, settings: SettingsDep) -> FileResponse:
    """The evidence clip (the first of a long incident's clips). Supports `Range: bytes=…` (206 + Content-Range; 416
    when unsatisfiable)."""
    return FileResponse(_media(store, settings, key, incident_id, "clip"), media_type="video/mp4")


@_get_and_head("/{incident_id}/clips/{index}.mp4", CLIP_RESPONSES)
def clip_at(
    incident_id: str,
    index: Annotated[int, PathParam(ge=0, description="The clip's `index` in the incident detail's `clips`")],
    key: MediaKey,
    store: StoreDep,
    settings: SettingsDep,
) -> FileResponse:
    """One clip of the incident: a long incident is split into clips of at most `max_clip_s` (0 is `clip.mp4`).
    Supports `Range` like `clip.mp4`; 404 for a clip that is not (yet) written."""
    with store.read() as session:
        stored = _require(session, incident_id, key).clip_path
    directory = evidence_dir(settings.media_dir, stored)
    path = resolve_media(settings.media_dir, str(directory / clip_filename(index))) if directory is not None else None
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id!r} has no clip {index}")
    return FileResponse(path, media_type="video/mp4")


def _handling_route(action: Action) -> None:
    def endpoint(
        incident_id: str,
        key: OperatorKey,
        store: StoreDep,
        settings: SettingsDep,
        body: Annotated[HandlingRequest | None, Body()] = None,
    ) -> IncidentDetail:
        return _handle(incident_id, action, key, store, settings, body or HandlingRequest())

    endpoint.__name__ = f"incident_{action.name}"
    router.add_api_route(
        f"/{{incident_id}}/{action.value}",
        endpoint,
        methods=["POST"],
        response_model=IncidentDetail,
        summary=f"Handling: {action.value}",
        responses={**NOT_FOUND, 409: {"model": Problem, "description": "Transition not allowed from this state"}},
    )


def _handle(
    incident_id: str, action: Action, key: Principal, store: StoreDep, settings: SettingsDep, body: HandlingRequest
) -> IncidentDetail:
    actor = Actor(name=body.actor or key.name, key_id=key.key_id, key_name=key.name, sites=key.sites)
    try:
        with store.session() as session:
            handle(session, incident_id, action, actor=actor, note=body.note)
            return _detail(session, _require(session, incident_id, key), settings)
    except IncidentNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id!r} not found") from exc
    except InvalidTransition as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


for _action in Action:
    _handling_route(_action)
