"""Incident counts for evaluation reports and the console's dashboard: by site, camera, rule, zone, severity,
lifecycle status, handling status and day, and combinations of them (`group_counts`: incidents per day per rule).

Days are calendar days in a time zone (`tz`, default UTC): the store groups by UTC hour and the hours are folded into
local days here, so a day boundary is exact for every zone whose offset is a whole number of hours (Asia/Shanghai,
Europe/*, America/*), and within the offset's minutes for the few that are not (Asia/Kolkata).
The backlog, handling times and false-positive rates are in `api.store.stats_handling`. Shadow runs' incidents
(a candidate model's, compared and never pushed) are never counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from api.store.incidents import in_sites
from api.store.models import Incident

#: The dimensions a count can be grouped by (`day` is computed, see the module docs).
DIMENSIONS: dict[str, Any] = {
    "site": Incident.site,
    "camera": Incident.camera_id,
    "rule": Incident.rule,
    "zone": Incident.zone,
    "severity": Incident.severity,
    "status": Incident.status,
    "handling": Incident.handling,
}
#: The dimensions `incident_stats` always reports (`day` and `total` too), as before zones and severities existed.
REPORTED = ("site", "camera", "rule", "zone", "severity", "status", "handling")
GROUPABLE = frozenset({*DIMENSIONS, "day"})
NO_ZONE = ""  # the key of incidents without a zone


@dataclass(frozen=True)
class StatsFilter:
    """Which incidents are counted: started in [since, until), of `sites` (the key's scope, None: every site) and,
    when set, of one site, camera and rule."""

    since: datetime | None = None
    until: datetime | None = None
    sites: Set[str] | None = None
    site: str | None = None
    camera: str | None = None
    rule: str | None = None

    def conditions(self, *, window: bool = True) -> list[ColumnElement[bool]]:
        """WHERE conditions; `window=False` leaves the time window out (the backlog is about now)."""
        cond = [*in_sites(self.sites), Incident.shadow.is_(False)]  # shadow runs' incidents: compared, not counted
        for column, value in (
            (Incident.site, self.site),
            (Incident.camera_id, self.camera),
            (Incident.rule, self.rule),
        ):
            if value:
                cond.append(column == value)
        if window and self.since:
            cond.append(Incident.started_at >= self.since)
        if window and self.until:
            cond.append(Incident.started_at < self.until)
        return cond


def _hour(session: Session) -> Any:
    """SQL expression: the UTC hour of started_at as text 'YYYY-MM-DD HH' (SQLite stores naive UTC text; PostgreSQL
    sessions run in UTC)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.date_trunc("hour", Incident.started_at), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", Incident.started_at)


def _local_day(hour: str, zone: ZoneInfo) -> str:
    start = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return start.astimezone(zone).date().isoformat()


def _key(value: object) -> str:
    return NO_ZONE if value is None else str(value)


def group_counts(session: Session, f: StatsFilter, by: Sequence[str], tz: str = "UTC") -> dict[tuple[str, ...], int]:
    """`{(key of each dimension in by): count}` over the incidents of `f`, in the order of the keys; `day` is the
    local date in `tz` of started_at."""
    unknown = [name for name in by if name not in GROUPABLE]
    if unknown or not by:
        raise ValueError(f"cannot group by {unknown or by}; choose from {sorted(GROUPABLE)}")
    hour = _hour(session)
    columns = [hour if name == "day" else DIMENSIONS[name] for name in by]
    query = select(*columns, func.count()).where(*f.conditions()).group_by(*columns)
    zone = ZoneInfo(tz)
    out: dict[tuple[str, ...], int] = defaultdict(int)
    for *keys, count in session.execute(query):
        named = [_local_day(k, zone) if name == "day" else _key(k) for name, k in zip(by, keys, strict=True)]
        out[tuple(named)] += int(count)
    return dict(sorted(out.items()))


def incident_stats(
    session: Session,
    *,
    since: datetime | None,
    until: datetime | None,
    sites: Set[str] | None = None,
    f: StatsFilter | None = None,
    tz: str = "UTC",
) -> dict[str, dict[str, int]]:
    """`{dimension: {key: count}}` for every reported dimension plus `day` (the local date in `tz` of started_at)
    and `total`, over the incidents of `sites` (None: every site) started in [since, until); `f`, when given,
    replaces those three."""
    f = f or StatsFilter(since=since, until=until, sites=sites)
    out = {name: {k[0]: n for k, n in group_counts(session, f, [name], tz).items()} for name in (*REPORTED, "day")}
    out["total"] = {"all": int(session.scalar(select(func.count()).select_from(Incident).where(*f.conditions())) or 0)}
    return out
