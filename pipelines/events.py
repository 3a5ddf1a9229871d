"""`IncidentEvent`: the only type that crosses process boundaries (bus, store, SSE, webhooks, incidents.jsonl).

Field names are a user-facing contract (docs/ARCHITECTURE.md): extend, never rename.
`id` is the incident's stable, globally unique id; `(id, seq)` identifies one event, so every consumer can
de-duplicate at-least-once deliveries.

Fencing (distributed mode): `fence` is the camera's lease token of the worker that published the event (a number
that grows with every lease grant of that camera, pipelines/distributed/fencing.py); the store refuses an event whose
token is older than the newest it has seen for its camera. A `FenceGrant` is what a grant writes to the event stream,
so the store sees a new owner's token before anything a paused former owner sends afterwards. Events without a token
(embedded mode, workers older than fencing) are never fenced.

Shadow runs (a camera's `shadow_models`, pipelines/camera/shadow.py): a candidate model runs beside production on the
same frames through the same rules; its events carry `shadow: true` and `candidate` (the model's name). They are
stored for comparison (`safewatch eval --shadow`) and never pushed (webhooks, SSE, MQTT). Both fields are left out
of the JSON of a production event, so production payloads are exactly what they were before shadow runs existed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class EventType(StrEnum):
    opened = "opened"
    updated = "updated"
    closed = "closed"


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class IncidentEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable, globally unique incident id (same for every event of one incident)")
    type: EventType
    camera_id: str
    site: str
    rule: str = Field(description="Rule type, e.g. exit_blocked")
    zone: str | None = None
    severity: Severity = Severity.warning
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None
    offset_s: float = Field(description="Seconds since the source was opened (media time when replaying a file)")
    track_ids: list[int] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    confidence: float = 0.0
    snapshot_url: str | None = None
    clip_url: str | None = None
    evidence_sha256: str | None = None
    seq: int = Field(ge=0, description="Per-incident event sequence number, 0 for `opened`")
    fence: int | None = Field(
        default=None,
        ge=0,
        description="Lease token of the publishing worker for this camera (distributed mode; null when embedded)",
    )
    shadow: bool = Field(
        default=False,
        description="An incident of a shadow run (a candidate model beside production): stored for comparison, "
        "never pushed. Omitted from the JSON when false",
    )
    candidate: str | None = Field(
        default=None, max_length=128, description="The candidate model of a shadow incident (omitted when not shadow)"
    )

    @model_serializer(mode="wrap")
    def _omit_production_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A production event serialises exactly as before shadow runs existed (no `shadow`/`candidate` keys)."""
        data = handler(self)
        if isinstance(data, dict) and not self.shadow:
            data.pop("shadow", None)
            data.pop("candidate", None)
        return data

    @property
    def event_key(self) -> str:
        """Unique key of this event (incident id + seq), the de-duplication key of every consumer."""
        return f"{self.id}:{self.seq}"


class FenceGrant(BaseModel):
    """A lease grant as the event stream records it: from here on, events of `camera_id` need `token` or newer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: str
    token: int = Field(ge=0)
