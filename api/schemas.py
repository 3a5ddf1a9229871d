"""Response and request models shared by the routers (requests: `extra="forbid"`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from sqlalchemy import Row

from api.jsontypes import EventJSON
from api.links import clip_link, clips_link, public_event, snapshot_link
from api.store.models import HandlingAction, Incident, IncidentEventRow
from vision.media.manifest import ClipEntry
from vision.redact import redact_url

_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _not_a_number(value: object) -> object:
    """Pydantic reads a bare number as Unix epoch seconds; the API declares ISO 8601 date-times only."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("expected an ISO 8601 date-time (2025-03-01T08:00:00Z), not a number")
    return value


#: A query parameter date-time: ISO 8601 only (naive = UTC, applied by the router); bare numbers are refused (422).
IsoDateTime = Annotated[datetime, BeforeValidator(_not_a_number)]


class IncidentOut(BaseModel):
    id: str
    camera_id: str
    site: str
    rule: str
    zone: str | None
    severity: str
    status: str = Field(description="Lifecycle: open | closed")
    handling: str = Field(description="Handling workflow: new | acknowledged | resolved | false_positive")
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    last_seq: int
    offset_s: float
    labels: list[str]
    track_ids: list[int]
    confidence: float
    snapshot_url: str | None = Field(
        description="Signed, expiring link of the annotated snapshot (opens without a key; `&raw=1`: the original)"
    )
    clip_url: str | None = Field(description="API link of the clip (HTTP Range supported)")
    evidence_sha256: str | None
    keep: bool
    shadow: bool = Field(
        default=False, description="A shadow run's incident (a candidate model beside production): never pushed"
    )
    candidate: str | None = Field(default=None, description="The candidate model of a shadow incident")

    @classmethod
    def of(cls, row: Incident | Row[Any], base_url: str) -> IncidentOut:
        """From an ORM object or a Core row of the incidents table (what `list_incidents` returns; Row[Any]: a Core
        select of the table's columns is not typed per column)."""
        return cls(
            id=row.id,
            camera_id=redact_url(row.camera_id),
            site=row.site,
            rule=row.rule,
            zone=row.zone,
            severity=row.severity,
            status=row.status,
            handling=row.handling,
            started_at=row.started_at,
            updated_at=row.updated_at,
            ended_at=row.ended_at,
            last_seq=row.last_seq,
            offset_s=row.offset_s,
            labels=[str(x) for x in row.labels],
            track_ids=[int(x) for x in row.track_ids],
            confidence=row.confidence,
            snapshot_url=snapshot_link(base_url, row.id) if row.snapshot_path else None,
            clip_url=clip_link(base_url, row.id) if row.clip_path else None,
            evidence_sha256=row.evidence_sha256,
            keep=row.keep,
            shadow=bool(row.shadow),
            candidate=row.candidate,
        )


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class EventOut(BaseModel):
    number: int = Field(description="Store event number (the SSE id)")
    seq: int
    type: str
    received_at: datetime
    # The schema is pinned to the one `dict[str, Any]` gave: typing the field changes nothing in the OpenAPI document.
    event: Annotated[EventJSON, WithJsonSchema({"type": "object", "additionalProperties": True})] = Field(
        description="The IncidentEvent JSON"
    )

    @classmethod
    def of(cls, row: IncidentEventRow, base_url: str) -> EventOut:
        return cls(
            number=row.number,
            seq=row.seq,
            type=row.type,
            received_at=row.received_at,
            event=public_event(row.payload, base_url),
        )


class ActionOut(BaseModel):
    action: str
    from_status: str
    to_status: str
    actor: str = Field(description="As the client gave it (default: the key's name)")
    key_id: str | None = Field(
        description="Id of the API key that acted; null for actions recorded before migration 0002"
    )
    key_name: str | None = Field(description="Name of that key when it acted")
    note: str | None
    at: datetime

    @classmethod
    def of(cls, row: HandlingAction) -> ActionOut:
        return cls(
            action=row.action,
            from_status=row.from_status,
            to_status=row.to_status,
            actor=row.actor,
            key_id=row.key_id,
            key_name=row.key_name,
            note=row.note,
            at=row.at,
        )


class ClipOut(BaseModel):
    """One clip of the incident's evidence (a long incident is split into clips of at most `max_clip_s`)."""

    index: int = Field(description="0, 1, ...; clip 0 is also served as `clip.mp4`")
    url: str = Field(description="API link of the clip (HTTP Range supported)")
    start_offset_s: float | None = Field(
        description="Seconds from the incident's start (`started_at`) to the clip's first frame, negative in the "
        "pre-roll; null until the incident closes (and for evidence recorded before clip times were kept)"
    )
    duration_s: float | None = Field(
        description="Seconds from the clip's first to its last frame; null like the offset"
    )
    sha256: str | None = Field(description="As the evidence manifest records it; null until the incident closes")

    @classmethod
    def of(cls, clip: ClipEntry, base_url: str, incident_id: str) -> ClipOut:
        return cls(
            index=clip.index,
            url=clips_link(base_url, incident_id, clip.index),
            start_offset_s=clip.start_offset_s,
            duration_s=clip.duration_s,
            sha256=clip.sha256,
        )


class IncidentDetail(IncidentOut):
    events: list[EventOut]
    actions: list[ActionOut] = Field(description="Audit trail of the handling workflow")
    clips: list[ClipOut] = Field(
        description="Every clip written so far, in order (an open incident lists those of its windows that are done)"
    )


class HandlingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: str | None = Field(default=None, min_length=1, max_length=128, description="Default: the API key's name")
    note: str | None = Field(default=None, max_length=4000)


class Problem(BaseModel):
    """Every 4xx but 422: why the request was refused."""

    detail: str


class FieldProblem(BaseModel):
    path: str = Field(
        description="Dotted path of the offending field: `query.since`, `body.url`, or within a camera config "
        "`zones.0.polygon`; empty for the whole input"
    )
    message: str


class ValidationProblems(BaseModel):
    """Every 422: one entry per problem."""

    detail: list[FieldProblem]


# ------------------------------------------------------------------------------------ GET /v1/stats (the dashboard)
class GroupRow(BaseModel):
    key: list[str] = Field(description="One value per dimension of `by`, in its order (zone: empty = no zone)")
    count: int


class Grouping(BaseModel):
    """Incidents counted by a combination of dimensions (`group_by=day,rule`: incidents per day per rule)."""

    by: list[str] = Field(
        description="The dimensions, as asked: site, camera, rule, zone, severity, status, handling, "
        "day (the local date in `tz`)"
    )
    rows: list[GroupRow]


class BacklogBucket(BaseModel):
    """Incidents whose handling is not finished, by age (now - started_at)."""

    age: str = Field(description="lt_1h | 1h_4h | 4h_24h | 1d_3d | 3d_7d | gt_7d")
    max_age_s: float | None = Field(description="Upper bound of the bucket's ages in seconds; null: none")
    new: int
    acknowledged: int


class DurationStats(BaseModel):
    count: int = Field(description="Incidents measured")
    median_s: float | None
    p90_s: float | None


class HandlingTimes(BaseModel):
    site: str = Field(description="A site, or `*` for every site the key sees")
    acknowledge: DurationStats = Field(description="started_at → the first handling action")
    resolve: DurationStats = Field(description="started_at → the action that finished it (resolve / false-positive)")


class FalsePositiveRate(BaseModel):
    key: str = Field(description="The rule or camera")
    incidents: int
    judged: int = Field(description="Resolved + false positive")
    false_positive: int
    rate: float | None = Field(description="false_positive / judged; null when none was judged")


class Stats(BaseModel):
    timezone: str = Field(description="The time zone of `by_day` and of `day` in groups (`tz`)")
    total: int
    by_site: dict[str, int]
    by_camera: dict[str, int]
    by_rule: dict[str, int]
    by_zone: dict[str, int] = Field(description="Zone name → count; empty key = incidents without a zone")
    by_severity: dict[str, int]
    by_status: dict[str, int]
    by_handling: dict[str, int]
    by_day: dict[str, int]
    groups: list[Grouping] = Field(description="One per `group_by` asked for")
    backlog: list[BacklogBucket] = Field(description="Unfinished incidents by age (ignores since/until)")
    handling_times: list[HandlingTimes]
    false_positives_by_rule: list[FalsePositiveRate]
    false_positives_by_camera: list[FalsePositiveRate]
