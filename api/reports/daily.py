"""The numbers of one site's day: what the daily report shows and the digest summarises.

The day is a local calendar day of the site: [00:00, next 00:00) in the site's time zone, so a 23- or 25-hour day
at a DST change is that long. The site's zone is the `schedule.timezone` of its camera configs (the most common one
when they differ, ties broken alphabetically); a site whose cameras set none is reported in UTC, and the report
says which it used. An incident belongs to the day it started on.

Handling times are measured from the incident's start to the first action that acknowledged it (time to acknowledge)
and to the first that resolved it or marked it a false positive (time to resolve), from the audit trail.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.store.handling import Action
from api.store.models import Handling, HandlingAction, Incident
from pipelines.config.camera import CameraConfig

MAX_ROWS = 300  # incidents listed (with thumbnails) in one report; the counts cover every incident
UNHANDLED = (Handling.new.value, Handling.acknowledged.value)
_RESOLVING = (Action.resolve.value, Action.false_positive.value)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(value: str) -> date:
    """A `YYYY-MM-DD` calendar date; ValueError with a reason otherwise."""
    if not _DATE.fullmatch(value):
        raise ValueError(f"date must be YYYY-MM-DD, got {value[:40]!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"date {value!r} is not a calendar date") from None


@dataclass(frozen=True)
class SiteZone:
    name: str  # IANA name
    from_cameras: bool  # False: no camera of the site sets one, UTC


def site_zone(cameras: Iterable[CameraConfig], site: str) -> SiteZone:
    zones = Counter(c.schedule.timezone for c in cameras if c.site == site and c.schedule is not None)
    if not zones:
        return SiteZone("UTC", from_cameras=False)
    best = max(zones.values())
    return SiteZone(min(z for z, n in zones.items() if n == best), from_cameras=True)


@dataclass(frozen=True)
class ReportIncident:
    id: str
    camera_id: str
    camera: str  # display name (the id when the camera is not configured)
    zone: str | None
    rule: str
    severity: str
    status: str
    handling: str
    started_at: datetime  # local
    ended_at: datetime | None  # local
    snapshot_path: str | None
    ack_s: float | None
    resolve_s: float | None


@dataclass(frozen=True)
class DailyReport:
    site: str
    day: date
    zone: SiteZone
    incidents: list[ReportIncident]  # every incident that started on the day, by start time
    backlog: int  # of those, not yet handled (new or acknowledged)

    @property
    def total(self) -> int:
        return len(self.incidents)

    @property
    def listed(self) -> list[ReportIncident]:
        return self.incidents[:MAX_ROWS]

    def per_rule(self) -> dict[str, int]:
        return dict(Counter(i.rule for i in self.incidents).most_common())

    def per_handling(self) -> dict[str, int]:
        """Counts in workflow order (new, acknowledged, resolved, false positive)."""
        counts = Counter(i.handling for i in self.incidents)
        order = [h.value for h in Handling]
        return {k: counts[k] for k in sorted(counts, key=lambda k: (order.index(k) if k in order else 9, k))}

    def per_hour(self) -> list[dict[str, int]]:
        """24 local hours, each {rule: count}."""
        hours: list[Counter[str]] = [Counter() for _ in range(24)]
        for i in self.incidents:
            hours[i.started_at.hour][i.rule] += 1
        return [dict(h) for h in hours]

    def top_cameras(self, n: int = 5) -> list[tuple[str, int]]:
        return Counter(i.camera for i in self.incidents).most_common(n)

    def top_zones(self, n: int = 5) -> list[tuple[str, int]]:
        return Counter(i.zone for i in self.incidents if i.zone).most_common(n)

    def median_ack_s(self) -> tuple[float | None, int]:
        return _median([i.ack_s for i in self.incidents])

    def median_resolve_s(self) -> tuple[float | None, int]:
        return _median([i.resolve_s for i in self.incidents])

    def false_positive_rate(self) -> float | None:
        judged = [i for i in self.incidents if i.handling in (Handling.resolved, Handling.false_positive)]
        if not judged:
            return None
        return sum(i.handling == Handling.false_positive for i in judged) / len(judged)


def _median(values: list[float | None]) -> tuple[float | None, int]:
    known = [v for v in values if v is not None]
    return (statistics.median(known) if known else None), len(known)


def day_window(day: date, zone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    return datetime.combine(day, time(0), tz), datetime.combine(day + timedelta(days=1), time(0), tz)


def build_daily(
    session: Session, site: str, day: date, zone: SiteZone, camera_names: dict[str, str] | None = None
) -> DailyReport:
    """The report of `site` on local `day` in `zone` (`camera_names`: camera id → display name)."""
    start, end = day_window(day, zone.name)
    rows = session.scalars(
        select(Incident)
        .where(Incident.site == site, Incident.started_at >= start, Incident.started_at < end, ~Incident.shadow)
        .order_by(Incident.started_at, Incident.id)
    ).all()
    firsts = _first_actions(session, [r.id for r in rows])
    tz = ZoneInfo(zone.name)
    names = camera_names or {}
    incidents = [
        ReportIncident(
            id=r.id,
            camera_id=r.camera_id,
            camera=names.get(r.camera_id, r.camera_id),
            zone=r.zone,
            rule=r.rule,
            severity=r.severity,
            status=r.status,
            handling=r.handling,
            started_at=r.started_at.astimezone(tz),
            ended_at=r.ended_at.astimezone(tz) if r.ended_at else None,
            snapshot_path=r.snapshot_path,
            ack_s=_since(r.started_at, firsts.get((r.id, Action.ack.value))),
            resolve_s=_since(r.started_at, firsts.get((r.id, "resolving"))),
        )
        for r in rows
    ]
    backlog = sum(i.handling in UNHANDLED for i in incidents)
    return DailyReport(site, day, zone, incidents, backlog)


def _since(start: datetime, at: datetime | None) -> float | None:
    return None if at is None else max(0.0, (at - start).total_seconds())


def _first_actions(session: Session, ids: list[str]) -> dict[tuple[str, str], datetime]:
    """(incident id, "ack" | "resolving") → when it first happened."""
    out: dict[tuple[str, str], datetime] = {}
    for chunk in range(0, len(ids), 500):
        actions = session.execute(
            select(HandlingAction.incident_id, HandlingAction.action, HandlingAction.at)
            .where(HandlingAction.incident_id.in_(ids[chunk : chunk + 500]))
            .order_by(HandlingAction.at, HandlingAction.id)
        )
        for incident_id, action, at in actions:
            kind = "resolving" if action in _RESOLVING else action
            out.setdefault((incident_id, kind), at)
    return out


def site_backlog(session: Session, site: str) -> int:
    """Incidents of the site, any day, not yet handled."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Incident)
            .where(Incident.site == site, Incident.handling.in_(UNHANDLED), ~Incident.shadow)
        )
        or 0
    )


def site_known(session: Session, site: str) -> bool:
    """Whether the store holds any incident of the site."""
    return session.scalar(select(Incident.id).where(Incident.site == site).limit(1)) is not None
