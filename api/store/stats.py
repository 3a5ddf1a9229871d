"""Incident counts for evaluation reports: by site, camera, rule, lifecycle status, handling status and UTC day."""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from api.store.incidents import in_sites
from api.store.models import Incident

DIMENSIONS: dict[str, InstrumentedAttribute[str]] = {
    "site": Incident.site,
    "camera": Incident.camera_id,
    "rule": Incident.rule,
    "status": Incident.status,
    "handling": Incident.handling,
}


def incident_stats(
    session: Session, *, since: datetime | None, until: datetime | None, sites: Set[str] | None = None
) -> dict[str, dict[str, int]]:
    """`{dimension: {key: count}}` for every dimension plus `day` (UTC date of started_at) and `total`, over the
    incidents of `sites` (None: every site)."""
    cond = in_sites(sites)
    if since:
        cond.append(Incident.started_at >= since)
    if until:
        cond.append(Incident.started_at < until)
    out: dict[str, dict[str, int]] = {}
    for name, column in DIMENSIONS.items():
        rows = session.execute(select(column, func.count()).where(*cond).group_by(column).order_by(column))
        out[name] = {str(key): int(count) for key, count in rows}
    day = func.date(Incident.started_at)  # SQLite: text 'YYYY-MM-DD' of the stored UTC value; PG: session TZ is UTC
    rows = session.execute(select(day, func.count()).where(*cond).group_by(day).order_by(day))
    out["day"] = {str(key): int(count) for key, count in rows}
    out["total"] = {"all": int(session.scalar(select(func.count()).select_from(Incident).where(*cond)) or 0)}
    return out
