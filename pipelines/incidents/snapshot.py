"""Serialisable state of an `IncidentManager` (live incidents and cooldowns in wall-clock time), so the worker that
takes a camera over after a failover continues its open incidents under the same ids
(pipelines/distributed/incident_state.py
stores it in Redis)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Phase(StrEnum):
    confirming = "confirming"
    open = "open"


class IncidentSnapshot(BaseModel):
    """One live incident (or confirming condition) in wall-clock terms, for failover between workers."""

    model_config = ConfigDict(extra="forbid")

    rule_key: str
    zone: str | None
    subject: str | None
    rule: str
    phase: Phase
    id: str = ""
    seq: int = -1
    first_seen_at: datetime
    last_seen_at: datetime
    last_emit_at: datetime | None = None
    hold_until: datetime | None = None
    track_ids: list[int] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    confidence: float = 0.0
    emitted_tracks: list[int] = Field(default_factory=list)
    emitted_labels: list[str] = Field(default_factory=list)
    emitted_conf: float = 0.0
    extra: dict[str, str | None] = Field(default_factory=dict)


class CooldownSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_key: str
    zone: str | None
    subject: str | None
    until: datetime


class ManagerState(BaseModel):
    """Everything an `IncidentManager` needs to continue on another worker (`export_state` / `restore_state`).

    Times are wall clock (UTC): media offsets differ between workers, so they are rebased on the first frame the
    restoring manager observes.
    """

    model_config = ConfigDict(extra="forbid")

    camera_id: str
    saved_at: datetime
    incidents: list[IncidentSnapshot] = Field(default_factory=list)
    cooldowns: list[CooldownSnapshot] = Field(default_factory=list)
