"""`GET /v1/stats`: incident counts by site, camera, rule, zone, severity, status, handling and day, combinations of
them (`group_by=day,rule`), the open backlog by age, handling times per site and false-positive rates per rule and
camera (JSON or CSV); a site-scoped key counts only its sites' incidents. The console's dashboard draws it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy.orm import Session

from api.deps import StoreDep, ViewerKey
from api.schemas import (
    BacklogBucket,
    DurationStats,
    FalsePositiveRate,
    Grouping,
    GroupRow,
    HandlingTimes,
    IsoDateTime,
    Problem,
    Stats,
)
from api.store.stats import GROUPABLE, StatsFilter, group_counts, incident_stats
from api.store.stats_handling import AGE_BUCKETS, Durations, backlog, false_positive_rates, handling_times

router = APIRouter(prefix="/v1", tags=["stats"])

MAX_GROUPINGS = 4
MAX_GROUP_DIMENSIONS = 3
GROUP_BY_HELP = (
    "Count by a combination of dimensions, comma-separated (site, camera, rule, zone, severity, status, handling, "
    f"day); repeat the parameter for several groupings (at most {MAX_GROUPINGS}, of at most "
    f"{MAX_GROUP_DIMENSIONS} dimensions each). `group_by=day,rule`: incidents per day per rule."
)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else (value.replace(tzinfo=UTC) if value.tzinfo is None else value)


def _groupings(group_by: list[str]) -> list[list[str]]:
    if len(group_by) > MAX_GROUPINGS:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"at most {MAX_GROUPINGS} `group_by` parameters")
    out = []
    for text in group_by:
        dims = [d.strip() for d in text.split(",") if d.strip()]
        bad = [d for d in dims if d not in GROUPABLE]
        if bad or not dims or len(dims) > MAX_GROUP_DIMENSIONS or len(set(dims)) != len(dims):
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"invalid group_by {text!r}: 1 to {MAX_GROUP_DIMENSIONS} distinct of {', '.join(sorted(GROUPABLE))}",
            )
        out.append(dims)
    return out


def _durations(d: Durations) -> DurationStats:
    return DurationStats(count=d.count, median_s=d.median_s, p90_s=d.p90_s)


def _collect(session: Session, f: StatsFilter, tz: str, groupings: list[list[str]]) -> Stats:
    counts = incident_stats(session, since=f.since, until=f.until, f=f, tz=tz)
    groups = [
        Grouping(by=by, rows=[GroupRow(key=list(k), count=n) for k, n in group_counts(session, f, by, tz).items()])
        for by in groupings
    ]
    bounds = dict(AGE_BUCKETS)
    fp = {
        by: [FalsePositiveRate(key=k, **vars(r), rate=r.rate) for k, r in false_positive_rates(session, f, by).items()]
        for by in ("rule", "camera")
    }
    return Stats(
        timezone=tz,
        total=counts["total"]["all"],
        by_site=counts["site"],
        by_camera=counts["camera"],
        by_rule=counts["rule"],
        by_zone=counts["zone"],
        by_severity=counts["severity"],
        by_status=counts["status"],
        by_handling=counts["handling"],
        by_day=counts["day"],
        groups=groups,
        backlog=[BacklogBucket(age=age, max_age_s=bounds[age], **n) for age, n in backlog(session, f).items()],
        handling_times=[
            HandlingTimes(site=site, acknowledge=_durations(ack), resolve=_durations(res))
            for site, (ack, res) in handling_times(session, f).items()
        ],
        false_positives_by_rule=fp["rule"],
        false_positives_by_camera=fp["camera"],
    )


def _csv_rows(s: Stats) -> Iterator[tuple[str, str, float | int]]:
    """`dimension,key,count` rows: the counts as before, then groups (dimension `day,rule`, key `2025-03-01,…`),
    backlog (`backlog.new`), handling times in seconds (`acknowledge.median_s`) and rates (`fp_rate.rule`)."""
    for name in ("site", "camera", "rule", "zone", "severity", "status", "handling", "day"):
        yield from ((name, k, n) for k, n in getattr(s, f"by_{name}").items())
    yield ("total", "all", s.total)
    for g in s.groups:
        yield from ((",".join(g.by), ",".join(r.key), r.count) for r in g.rows)
    for b in s.backlog:
        yield from ((f"backlog.{h}", b.age, getattr(b, h)) for h in ("new", "acknowledged"))
    for t in s.handling_times:
        for phase in ("acknowledge", "resolve"):
            d: DurationStats = getattr(t, phase)
            yield from (
                (f"{phase}.{q}", t.site, v) for q, v in (("median_s", d.median_s), ("p90_s", d.p90_s)) if v is not None
            )
    for by, rates in (("rule", s.false_positives_by_rule), ("camera", s.false_positives_by_camera)):
        yield from ((f"fp_rate.{by}", r.key, round(r.rate, 4)) for r in rates if r.rate is not None)


@router.get(
    "/stats",
    response_model=Stats,
    responses={200: {"content": {"text/csv": {}}}, 400: {"model": Problem}},
)
def stats(
    key: ViewerKey,
    store: StoreDep,
    since: Annotated[IsoDateTime | None, Query(description="ISO 8601 date-time; naive = UTC; not a number")] = None,
    until: Annotated[IsoDateTime | None, Query(description="ISO 8601 date-time")] = None,
    site: Annotated[str | None, Query(description="Only this site's incidents")] = None,
    camera: Annotated[str | None, Query(description="Only this camera's incidents")] = None,
    rule: Annotated[str | None, Query(description="Only this rule's incidents")] = None,
    tz: Annotated[str, Query(description="IANA time zone of the days (`by_day`, `day`), e.g. Asia/Shanghai")] = "UTC",
    group_by: Annotated[list[str] | None, Query(description=GROUP_BY_HELP)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Stats | Response:
    """Counts of incidents started in [since, until), plus the backlog (unfinished incidents by age, whatever their
    start), handling times and false-positive rates. `?format=csv`: rows `dimension,key,count`."""
    since, until = _utc(since), _utc(until)
    if since and until and since > until:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "`since` must not be after `until`")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown IANA time zone {tz!r}") from None
    groupings = _groupings(group_by or [])
    f = StatsFilter(since=since, until=until, sites=key.sites, site=site, camera=camera, rule=rule)
    with store.read() as session:
        result = _collect(session, f, tz, groupings)
    if format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["dimension", "key", "count"])
        writer.writerows(_csv_rows(result))
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8")
    return result
