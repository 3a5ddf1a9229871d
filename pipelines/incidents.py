"""Incident lifecycle: confirming → opened → updated → closed, with cooldown and de-duplication.

One `IncidentManager` per camera. Each analysed frame, the camera pipeline passes the violations that hold now
(`observe`); the manager turns a continuing condition into exactly one incident and emits `IncidentEvent`s:

- a condition (keyed by rule, zone, subject) seen for `min_seconds` (gaps shorter than `confirm_gap_seconds` are
  bridged) opens an incident (`opened`, seq 0) whose `started_at` is when the condition was first seen;
- while open, `updated` is emitted when the set of tracks/labels changes or the confidence improves markedly, at most
  once per `update_interval_seconds` (no alarm storm from one parked van);
- without the condition for `clear_seconds` it closes (`closed`, `ended_at` = last time seen);
- after closing, the same key cannot open again for `cooldown_seconds`.

Time comes from the frames (`offset_s` = media time, `now` = wall time of the frame), so a replay is reproducible.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pipelines.events import EventType, IncidentEvent, Severity
from pipelines.rules.base import Violation

log = logging.getLogger(__name__)

IncidentKey = tuple[str, str | None, str | None]


@dataclass(frozen=True, slots=True)
class RuleTiming:
    """Per-rule timing and severity, taken from the rule's config."""

    rule: str
    min_seconds: float = 0.0
    clear_seconds: float = 5.0
    cooldown_seconds: float = 0.0
    severity: Severity = Severity.warning


class Phase(StrEnum):
    confirming = "confirming"
    open = "open"


@dataclass(slots=True)
class _Incident:
    key: IncidentKey
    phase: Phase
    first_seen: float
    first_seen_at: datetime
    last_seen: float
    last_seen_at: datetime
    violation: Violation
    id: str = ""
    seq: int = -1
    last_emit: float = 0.0
    emitted_tracks: frozenset[int] = frozenset()
    emitted_labels: frozenset[str] = frozenset()
    emitted_conf: float = 0.0
    extra: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Incident:
    """Read-only view of a live incident (for evidence sinks and status pages)."""

    id: str
    key: IncidentKey
    rule: str
    zone: str | None
    started_offset_s: float
    last_seen_offset_s: float
    violation: Violation


class IncidentManager:
    def __init__(
        self,
        camera_id: str,
        site: str,
        timings: dict[str, RuleTiming],
        *,
        confirm_gap_seconds: float = 1.0,
        update_interval_seconds: float = 10.0,
        confidence_step: float = 0.1,
    ) -> None:
        self.camera_id = camera_id
        self.site = site
        self._timings = timings
        self._confirm_gap = confirm_gap_seconds
        self._update_interval = update_interval_seconds
        self._confidence_step = confidence_step
        self._live: dict[IncidentKey, _Incident] = {}
        self._cooldown_until: dict[IncidentKey, float] = {}

    # -- public API ---------------------------------------------------------------------------------------------
    def observe(self, violations: Iterable[Violation], offset_s: float, now: datetime) -> list[IncidentEvent]:
        """Feed the violations that hold on the frame at `offset_s`; returns the events this frame produced."""
        events: list[IncidentEvent] = []
        seen: set[IncidentKey] = set()
        for v in _strongest_per_key(violations):
            seen.add(v.key)
            event = self._see(v, offset_s, now)
            if event is not None:
                events.append(event)
        for key in [k for k in self._live if k not in seen]:
            event = self._miss(key, offset_s, now)
            if event is not None:
                events.append(event)
        return events

    def close_all(self, offset_s: float, now: datetime) -> list[IncidentEvent]:
        """Close every open incident (end of a file, shutdown); confirming conditions are dropped."""
        events = []
        for key, inc in list(self._live.items()):
            if inc.phase is Phase.open:
                events.append(self._emit(inc, EventType.closed, offset_s, now, ended=True))
            del self._live[key]
        return events

    def attach(self, incident_id: str, offset_s: float, now: datetime, **fields: str | None) -> IncidentEvent | None:
        """Attach evidence (snapshot_url, clip_url, evidence_sha256) to a live incident as an `updated` event."""
        for inc in self._live.values():
            if inc.id == incident_id and inc.phase is Phase.open:
                inc.extra.update(fields)
                return self._emit(inc, EventType.updated, offset_s, now)
        return None

    def live(self) -> list[Incident]:
        return [
            Incident(i.id, i.key, i.violation.rule, i.violation.zone, i.first_seen, i.last_seen, i.violation)
            for i in self._live.values()
            if i.phase is Phase.open
        ]

    # -- transitions --------------------------------------------------------------------------------------------
    def _see(self, v: Violation, t: float, now: datetime) -> IncidentEvent | None:
        timing = self._timing(v.rule_key, v.rule)
        inc = self._live.get(v.key)
        if inc is None:
            if t < self._cooldown_until.get(v.key, float("-inf")):
                return None
            inc = _Incident(v.key, Phase.confirming, t, now, t, now, v)
            self._live[v.key] = inc
        elif inc.phase is Phase.confirming and t - inc.last_seen > self._confirm_gap:
            inc.first_seen, inc.first_seen_at = t, now  # the gap was too long: confirmation starts over
        if inc.phase is Phase.confirming or v.confidence >= inc.violation.confidence:
            inc.violation = v
        else:
            inc.violation = _refresh(inc.violation, v)
        inc.last_seen, inc.last_seen_at = t, now
        if inc.phase is Phase.confirming:
            if t - inc.first_seen >= timing.min_seconds:
                inc.phase = Phase.open
                inc.id = str(uuid.uuid4())
                log.info(
                    "incident opened",
                    extra={"camera_id": self.camera_id, "rule": v.rule, "zone": v.zone, "incident_id": inc.id},
                )
                return self._emit(inc, EventType.opened, t, now)
            return None
        if self._changed(inc) and t - inc.last_emit >= self._update_interval:
            return self._emit(inc, EventType.updated, t, now)
        return None

    def _miss(self, key: IncidentKey, t: float, now: datetime) -> IncidentEvent | None:
        inc = self._live[key]
        timing = self._timing(key[0], inc.violation.rule)
        if inc.phase is Phase.confirming:
            if t - inc.last_seen > self._confirm_gap:
                del self._live[key]
            return None
        if t - inc.last_seen < timing.clear_seconds:
            return None
        del self._live[key]
        self._cooldown_until[key] = inc.last_seen + timing.clear_seconds + timing.cooldown_seconds
        log.info("incident closed", extra={"camera_id": self.camera_id, "incident_id": inc.id})
        return self._emit(inc, EventType.closed, t, now, ended=True)

    def _changed(self, inc: _Incident) -> bool:
        v = inc.violation
        return (
            frozenset(v.track_ids) != inc.emitted_tracks
            or frozenset(v.labels) != inc.emitted_labels
            or v.confidence >= inc.emitted_conf + self._confidence_step
        )

    def _emit(self, inc: _Incident, type_: EventType, t: float, now: datetime, *, ended: bool = False) -> IncidentEvent:
        v = inc.violation
        timing = self._timing(v.rule_key, v.rule)
        inc.seq += 1
        inc.last_emit = t
        inc.emitted_tracks, inc.emitted_labels = frozenset(v.track_ids), frozenset(v.labels)
        inc.emitted_conf = max(inc.emitted_conf, v.confidence)
        return IncidentEvent(
            id=inc.id,
            type=type_,
            camera_id=self.camera_id,
            site=self.site,
            rule=v.rule,
            zone=v.zone,
            severity=timing.severity,
            started_at=inc.first_seen_at,
            updated_at=now,
            ended_at=inc.last_seen_at if ended else None,
            offset_s=round(t, 3),
            track_ids=sorted(t_ for t_ in v.track_ids if t_ >= 0),
            labels=sorted(set(v.labels)),
            confidence=round(float(v.confidence), 4),
            snapshot_url=inc.extra.get("snapshot_url"),
            clip_url=inc.extra.get("clip_url"),
            evidence_sha256=inc.extra.get("evidence_sha256"),
            seq=inc.seq,
        )

    def _timing(self, rule_key: str, rule: str) -> RuleTiming:
        return self._timings.get(rule_key) or RuleTiming(rule=rule)


def _strongest_per_key(violations: Iterable[Violation]) -> list[Violation]:
    best: dict[IncidentKey, Violation] = {}
    for v in violations:
        cur = best.get(v.key)
        if cur is None or v.confidence > cur.confidence:
            best[v.key] = v
    return list(best.values())


def _refresh(old: Violation, new: Violation) -> Violation:
    """Keep the best evidence but follow the current tracks and labels."""
    return Violation(
        old.rule_key, old.rule, old.zone, old.subject, new.track_ids, new.labels, old.confidence, old.evidence
    )
