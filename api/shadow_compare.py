"""`safewatch eval --shadow CAMERA`: a camera's production incidents against its shadow runs', read from the store.

The store is read here, in the API layer, because the store is the API layer's (api/store/); the matching itself is
domain logic without I/O (pipelines/evaluation/shadow.py). The store is opened read-only, as `safewatch evidence
verify --database` and `safewatch dataset export` open it (api/store/evidence.py: nothing created or migrated).
One comparison per candidate model seen on the camera in the window.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from api.store.evidence import read_only_connection
from api.store.models import Incident
from pipelines.evaluation.shadow import Compared, ShadowComparison, compare

_COLUMNS = (
    Incident.id,
    Incident.rule,
    Incident.zone,
    Incident.started_at,
    Incident.ended_at,
    Incident.handling,
    Incident.confidence,
    Incident.snapshot_path,
    Incident.shadow,
    Incident.candidate,
)


def compare_shadow(
    database_url: str,
    camera: str,
    *,
    since: datetime,
    until: datetime | None = None,
    tolerance_s: float = 2.0,
    candidate: str | None = None,
) -> list[ShadowComparison]:
    """Per candidate (or only `candidate`), production vs shadow incidents of `camera` that started in
    [since, until) (until: now). Empty when the camera had no shadow incident in the window. Raises
    `api.store.evidence.StoreUnavailable`."""
    until = until or datetime.now(UTC)
    query = (
        select(*_COLUMNS)
        .where(Incident.camera_id == camera, Incident.started_at >= since, Incident.started_at < until)
        .order_by(Incident.started_at, Incident.id)
    )
    with read_only_connection(database_url) as conn:
        rows = [(_compared(*r[:8], candidate=r[9]), bool(r[8])) for r in conn.execute(query)]
    production = [c for c, shadow in rows if not shadow]
    shadows: dict[str, list[Compared]] = {}
    for c, shadow in rows:
        if shadow and (candidate is None or c.candidate == candidate):
            shadows.setdefault(c.candidate or "?", []).append(c)
    return [
        compare(camera, name, production, found, since=since, until=until, tolerance_s=tolerance_s)
        for name, found in sorted(shadows.items())
    ]


def _compared(
    incident_id: str,
    rule: str,
    zone: str | None,
    started_at: datetime,
    ended_at: datetime | None,
    handling: str,
    confidence: float,
    snapshot: str | None,
    *,
    candidate: str | None,
) -> Compared:
    return Compared(
        id=incident_id,
        rule=rule,
        zone=zone,
        started_at=_utc(started_at),
        ended_at=_utc(ended_at) if ended_at is not None else None,
        handling=handling,
        confidence=float(confidence),
        snapshot=snapshot,
        candidate=candidate,
    )


def _utc(at: datetime) -> datetime:
    """A stored time (SQLite returns naive UTC through a plain connection) as an aware UTC datetime."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
