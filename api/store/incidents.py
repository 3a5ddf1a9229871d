"""Incidents: `apply_event` (idempotent, order-tolerant, fenced) and the read side (list with cursor, detail, events).

Fencing (distributed mode, pipelines/distributed/fencing.py): `camera_fences` keeps the newest lease token seen per
camera, from lease grants recorded in the event stream (`apply_grant`) and from the events themselves. An event whose
token is older than that comes from a former owner of the camera (paused, partitioned) and is refused: not stored,
`ApplyResult.fenced`. Events without a token (embedded mode, workers older than fencing) are never fenced.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Row, and_, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.store.db import Store
from api.store.models import (
    CameraFence,
    Handling,
    HandlingAction,
    Incident,
    IncidentEventRow,
    IncidentStatus,
    utcnow,
)
from api.store.outbox import enqueue_deliveries
from pipelines.events import EventType, FenceGrant, IncidentEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyResult:
    applied: bool  # False: this (id, seq) was already stored; nothing changed
    number: int | None  # the store event number of the new event row
    state_changed: bool  # False: an older seq arrived after a newer one (logged, state kept)
    deliveries: int  # outbox rows written
    fenced: bool = False  # True: refused, the camera's newest token (`newest_token`) is newer than the event's
    newest_token: int | None = None


def apply_event(store: Store, event: IncidentEvent) -> ApplyResult:
    """Store `event`: event row + incident state + webhook outbox rows in one transaction (none for a shadow run's
    event, `event.shadow`: shadow incidents are stored for comparison and never pushed).

    Idempotent by `(id, seq)`: a replayed event changes nothing. An event older than the stored state (lower seq)
    is recorded in the event log but never overwrites newer state. An event with a fencing token older than the
    newest seen for its camera is refused (module docs).
    """
    try:
        with store.session() as session:
            result = _apply(session, event)
    except IntegrityError:  # a concurrent writer stored the same (id, seq) first
        log.info("duplicate event ignored", extra={"event_key": event.event_key})
        return ApplyResult(applied=False, number=None, state_changed=False, deliveries=0)
    if result.applied:
        store.notify()
    return result


def _apply(session: Session, event: IncidentEvent) -> ApplyResult:
    dup = session.scalar(
        select(IncidentEventRow.number).where(
            IncidentEventRow.incident_id == event.id, IncidentEventRow.seq == event.seq
        )
    )
    if dup is not None:
        return ApplyResult(applied=False, number=dup, state_changed=False, deliveries=0)
    if event.fence is not None:
        newest = camera_fence(session, event.camera_id)  # a read: most events carry the newest token already
        if newest is None or event.fence > newest:
            newest = _raise_fence(session, event.camera_id, event.fence)
        if event.fence < newest:
            return ApplyResult(
                applied=False, number=None, state_changed=False, deliveries=0, fenced=True, newest_token=newest
            )
    incident = session.scalar(select(Incident).where(Incident.id == event.id).with_for_update())
    state_changed = True
    if incident is None:
        incident = Incident(
            id=event.id, handling=Handling.new, keep=False, last_seq=-1, shadow=event.shadow, candidate=event.candidate
        )
        session.add(incident)
    if event.seq > incident.last_seq:
        _set_state(incident, event)
    else:
        state_changed = False
        log.info("older event kept in log only", extra={"event_key": event.event_key, "last_seq": incident.last_seq})
    session.flush()
    row = IncidentEventRow(
        incident_id=event.id,
        seq=event.seq,
        type=event.type.value,
        payload=event.model_dump(mode="json"),
        shadow=incident.shadow,
    )
    session.add(row)
    session.flush()
    deliveries = 0 if incident.shadow else enqueue_deliveries(session, event, row.number)
    return ApplyResult(applied=True, number=row.number, state_changed=state_changed, deliveries=deliveries)


def apply_grant(store: Store, grant: FenceGrant) -> int:
    """Record a lease grant: from now on, events of the camera need its token or a newer one. The newest token."""
    with store.session() as session:
        return _raise_fence(session, grant.camera_id, grant.token)


def camera_fence(session: Session, camera_id: str) -> int | None:
    """The newest fencing token seen for the camera (None: never seen one)."""
    return session.scalar(select(CameraFence.token).where(CameraFence.camera_id == camera_id))


def _raise_fence(session: Session, camera_id: str, token: int) -> int:
    """Keep `token` as the camera's newest if it is newer (one upsert: concurrent writers serialise on the row)."""
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"fencing needs PostgreSQL or SQLite, not {dialect}")
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(CameraFence).values(camera_id=camera_id, token=token, updated_at=utcnow())
    newer = stmt.excluded.token > CameraFence.token
    stmt = stmt.on_conflict_do_update(
        index_elements=[CameraFence.camera_id],
        set_={
            "token": case((newer, stmt.excluded.token), else_=CameraFence.token),
            "updated_at": case((newer, stmt.excluded.updated_at), else_=CameraFence.updated_at),
        },
    )
    session.execute(stmt)
    newest = camera_fence(session, camera_id)
    assert newest is not None
    return newest


def _set_state(incident: Incident, event: IncidentEvent) -> None:
    incident.camera_id = event.camera_id
    incident.site = event.site
    incident.rule = event.rule
    incident.zone = event.zone
    incident.severity = event.severity.value
    incident.status = IncidentStatus.closed if event.type == EventType.closed else IncidentStatus.open
    incident.started_at = event.started_at
    incident.updated_at = event.updated_at
    incident.ended_at = event.ended_at
    incident.last_seq = event.seq
    incident.offset_s = event.offset_s
    incident.labels = list(event.labels)
    incident.track_ids = list(event.track_ids)
    incident.confidence = event.confidence
    incident.snapshot_path = event.snapshot_url or incident.snapshot_path
    incident.clip_path = event.clip_url or incident.clip_path
    incident.evidence_sha256 = event.evidence_sha256 or incident.evidence_sha256


class BadCursor(ValueError):
    pass


def encode_cursor(started_at: datetime, incident_id: str) -> str:
    raw = json.dumps([started_at.isoformat(), incident_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started, incident_id = json.loads(raw)
        at = datetime.fromisoformat(started)
        if not isinstance(incident_id, str) or at.tzinfo is None:
            raise ValueError("malformed")
        return at, incident_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadCursor("invalid cursor; pass back the `next_cursor` of a previous page unchanged") from exc


ShadowFilter = Literal["exclude", "only", "include"]


@dataclass(frozen=True)
class IncidentFilter:
    """What a client asked for; `scope` is what its key may see (None: every site), ANDed with the rest."""

    camera: str | None = None
    site: str | None = None
    rule: str | None = None
    status: str | None = None  # open|closed (lifecycle) or new|acknowledged|resolved|false_positive (handling)
    since: datetime | None = None
    until: datetime | None = None
    scope: Set[str] | None = None
    shadow: ShadowFilter = "exclude"  # a shadow run's incidents: left out (default), `only` them, or `include`d


def in_sites(sites: Set[str] | None) -> list[ColumnElement[bool]]:
    """The WHERE condition of a key's scope on incidents (none for an unscoped key; an empty scope matches nothing)."""
    return [] if sites is None else [Incident.site.in_(sorted(sites))]


def _conditions(f: IncidentFilter) -> list[object]:
    cond: list[object] = [*in_sites(f.scope)]
    if f.camera:
        cond.append(Incident.camera_id == f.camera)
    if f.site:
        cond.append(Incident.site == f.site)
    if f.rule:
        cond.append(Incident.rule == f.rule)
    if f.status in {s.value for s in IncidentStatus}:
        cond.append(Incident.status == f.status)
    elif f.status:
        cond.append(Incident.handling == f.status)
    if f.since:
        cond.append(Incident.started_at >= f.since)
    if f.until:
        cond.append(Incident.started_at < f.until)
    if f.shadow != "include":
        cond.append(Incident.shadow.is_(f.shadow == "only"))
    return cond


def list_incidents(
    session: Session, f: IncidentFilter, *, cursor: str | None, limit: int
) -> tuple[list[Row[Any]], str | None]:
    """One page, newest first (started_at desc, id desc), and the cursor of the next page (None at the end).

    Rows are plain column tuples (attribute access like an `Incident`), not ORM objects: building ORM objects was
    about two thirds of this function's time under load (bench/results/api.md). `Row[Any]`: SQLAlchemy does not type
    a select of a table's columns one by one.
    """
    query = select(*Incident.__table__.c).where(*_conditions(f))  # type: ignore[arg-type]
    if cursor:
        at, incident_id = decode_cursor(cursor)
        query = query.where(or_(Incident.started_at < at, and_(Incident.started_at == at, Incident.id < incident_id)))
    rows = list(session.execute(query.order_by(Incident.started_at.desc(), Incident.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.started_at, last.id)


def get_incident(session: Session, incident_id: str, *, sites: Set[str] | None = None) -> Incident | None:
    """The incident, or None when it does not exist or is outside `sites` (None: every site)."""
    if sites is None:
        return session.get(Incident, incident_id)
    return session.scalar(select(Incident).where(Incident.id == incident_id, *in_sites(sites)))


def incident_events(session: Session, incident_id: str) -> Sequence[IncidentEventRow]:
    return session.scalars(
        select(IncidentEventRow).where(IncidentEventRow.incident_id == incident_id).order_by(IncidentEventRow.seq)
    ).all()


def incident_actions(session: Session, incident_id: str) -> Sequence[HandlingAction]:
    return session.scalars(
        select(HandlingAction).where(HandlingAction.incident_id == incident_id).order_by(HandlingAction.id)
    ).all()


def events_after(
    session: Session, number: int, limit: int = 500, *, sites: Set[str] | None = None
) -> Sequence[IncidentEventRow]:
    """Stored events with a store event number above `number`, oldest first (SSE resume); with `sites`, only the
    events of incidents of those sites (joined on the incident, whose site is the one the list and detail show).
    Never a shadow run's events: they are not pushed."""
    query = select(IncidentEventRow).where(IncidentEventRow.number > number, IncidentEventRow.shadow.is_(False))
    if sites is not None:
        query = query.join(Incident, Incident.id == IncidentEventRow.incident_id).where(*in_sites(sites))
    return session.scalars(query.order_by(IncidentEventRow.number).limit(limit)).all()


def last_event_number(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(IncidentEventRow.number), 0))) or 0)
