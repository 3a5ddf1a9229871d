"""`GET /v1/stats`: incident counts by site, camera, rule, status, handling and day (JSON or CSV); a site-scoped key
counts only its sites' incidents."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel

from api.deps import StoreDep, ViewerKey
from api.schemas import IsoDateTime, Problem
from api.store.stats import incident_stats

router = APIRouter(prefix="/v1", tags=["stats"])


class Stats(BaseModel):
    total: int
    by_site: dict[str, int]
    by_camera: dict[str, int]
    by_rule: dict[str, int]
    by_status: dict[str, int]
    by_handling: dict[str, int]
    by_day: dict[str, int]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else (value.replace(tzinfo=UTC) if value.tzinfo is None else value)


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
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Stats | Response:
    """Counts of incidents started in [since, until). `?format=csv`: rows `dimension,key,count`."""
    since, until = _utc(since), _utc(until)
    if since and until and since > until:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "`since` must not be after `until`")
    with store.read() as session:
        counts = incident_stats(session, since=since, until=until, sites=key.sites)
    if format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["dimension", "key", "count"])
        for dimension, values in counts.items():
            for name, count in values.items():
                writer.writerow([dimension, name, count])
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8")
    return Stats(
        total=counts["total"]["all"],
        by_site=counts["site"],
        by_camera=counts["camera"],
        by_rule=counts["rule"],
        by_status=counts["status"],
        by_handling=counts["handling"],
        by_day=counts["day"],
    )
