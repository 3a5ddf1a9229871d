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
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipelines.events import EventType, IncidentEvent
from pipelines.incidents.snapshot import CooldownSnapshot, IncidentSnapshot, Phase
from pipelines.incidents.snapshot import ManagerState as ManagerState  # re-exported: the public state type
from pipelines.rules.base import RuleTiming, Violation

log = logging.getLogger(__name__)

IncidentKey = tuple[str, str | None, str | None]


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
    hold_until: float = float("-inf")  # restored after a failover: not closed before this offset (module docs)


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
        self._clock_ref: tuple[float, float] | None = None  # (offset_s, wall seconds) of the last observed frame
        self._pending: tuple[ManagerState, Mapping[str, float]] | None = None  # restored, rebased on next frame

    # -- public API ---------------------------------------------------------------------------------------------
    def observe(
        self,
        violations: Iterable[Violation],
        offset_s: float,
        now: datetime,
        *,
        scope: Container[str] | None = None,
    ) -> list[IncidentEvent]:
        """Feed the violations that hold on the frame at `offset_s`; returns the events this frame produced.

        `scope`: only incidents of these rule keys count as absent when not in `violations` (a poll of a silent
        source, where only the camera health rules have something to say: the others' incidents stay as they are).
        """
        if self._pending is not None:
            self._rebase(offset_s, now)
        self._clock_ref = (offset_s, now.timestamp())
        events: list[IncidentEvent] = []
        seen: set[IncidentKey] = set()
        for v in _strongest_per_key(violations):
            seen.add(v.key)
            event = self._see(v, offset_s, now)
            if event is not None:
                events.append(event)
        for key in [k for k in self._live if k not in seen and (scope is None or k[0] in scope)]:
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

    def live(self) -> list[Incident]:
        return [
            Incident(i.id, i.key, i.violation.rule, i.violation.zone, i.first_seen, i.last_seen, i.violation)
            for i in self._live.values()
            if i.phase is Phase.open
        ]

    # -- failover (state export / restore) --------------------------------------------------------------------------
    def export_state(self) -> ManagerState:
        """The live incidents, confirming conditions and cooldowns in wall-clock terms (see ManagerState)."""
        if self._clock_ref is None:  # nothing observed yet: what was restored is still the state
            pending = self._pending[0] if self._pending is not None else None
            return pending or ManagerState(camera_id=self.camera_id, saved_at=datetime.now(UTC))
        ref_off, ref_wall = self._clock_ref

        def wall(t: float) -> datetime:
            return datetime.fromtimestamp(ref_wall + (t - ref_off), tz=UTC)

        incidents = [
            IncidentSnapshot(
                rule_key=inc.key[0],
                zone=inc.key[1],
                subject=inc.key[2],
                rule=inc.violation.rule,
                phase=inc.phase,
                id=inc.id,
                seq=inc.seq,
                first_seen_at=inc.first_seen_at,
                last_seen_at=inc.last_seen_at,
                last_emit_at=wall(inc.last_emit) if inc.seq >= 0 else None,
                hold_until=wall(inc.hold_until) if inc.hold_until != float("-inf") else None,
                track_ids=list(inc.violation.track_ids),
                labels=list(inc.violation.labels),
                confidence=inc.violation.confidence,
                emitted_tracks=sorted(inc.emitted_tracks),
                emitted_labels=sorted(inc.emitted_labels),
                emitted_conf=inc.emitted_conf,
                extra=dict(inc.extra),
            )
            for inc in self._live.values()
        ]
        cooldowns = [
            CooldownSnapshot(rule_key=k[0], zone=k[1], subject=k[2], until=wall(until))
            for k, until in self._cooldown_until.items()
            if until > ref_off
        ]
        return ManagerState(camera_id=self.camera_id, saved_at=wall(ref_off), incidents=incidents, cooldowns=cooldowns)

    def restore_state(self, state: ManagerState, *, grace_seconds: Mapping[str, float] | None = None) -> None:
        """Continue the incidents of `state` (exported by another worker's manager for this camera).

        Applied on the next `observe` (times are rebased onto that frame's offset). An open incident keeps its id
        and continues with the next seq; it is not closed before `grace_seconds[rule_key]` + its clear_seconds of
        observation here, so a rule that must warm up again (dwell timers) can see the condition first.
        """
        if state.camera_id != self.camera_id:
            raise ValueError(f"state of camera {state.camera_id!r} cannot be restored on camera {self.camera_id!r}")
        self._pending = (state, dict(grace_seconds or {}))

    def _rebase(self, offset_s: float, now: datetime) -> None:
        assert self._pending is not None
        state, grace = self._pending
        self._pending = None
        shift = offset_s - now.timestamp()

        def off(when: datetime) -> float:
            return when.timestamp() + shift

        for snap in state.incidents:
            key: IncidentKey = (snap.rule_key, snap.zone, snap.subject)
            if key in self._live:
                continue
            v = Violation(
                snap.rule_key,
                snap.rule,
                snap.zone,
                snap.subject,
                tuple(snap.track_ids),
                tuple(snap.labels),
                snap.confidence,
            )
            inc = _Incident(
                key,
                snap.phase,
                off(snap.first_seen_at),
                snap.first_seen_at,
                off(snap.last_seen_at),
                snap.last_seen_at,
                v,
                snap.id,
                snap.seq,
                off(snap.last_emit_at) if snap.last_emit_at is not None else 0.0,
                frozenset(snap.emitted_tracks),
                frozenset(snap.emitted_labels),
                snap.emitted_conf,
                dict(snap.extra),
            )
            if snap.phase is Phase.open:
                held = off(snap.hold_until) if snap.hold_until is not None else float("-inf")
                clear = self._timing(snap.rule_key, snap.rule).clear_seconds
                inc.hold_until = max(held, offset_s + grace.get(snap.rule_key, 0.0) + clear)
            self._live[key] = inc
        for cd in state.cooldowns:
            if off(cd.until) > offset_s:
                self._cooldown_until[(cd.rule_key, cd.zone, cd.subject)] = off(cd.until)
        log.info(
            "incident state restored",
            extra={"camera_id": self.camera_id, "incidents": len(state.incidents), "cooldowns": len(state.cooldowns)},
        )

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
                    "incident opened: %s %s zone=%s %s",
                    self.camera_id,
                    v.rule,
                    v.zone,
                    inc.id,
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
            if t - inc.last_seen > self._confirm_gap + 1e-6:
                del self._live[key]
            return None
        if t - inc.last_seen < timing.clear_seconds or t < inc.hold_until:
            return None
        del self._live[key]
        self._cooldown_until[key] = inc.last_seen + timing.clear_seconds + timing.cooldown_seconds
        log.info(
            "incident closed: %s %s %s",
            self.camera_id,
            inc.violation.rule,
            inc.id,
            extra={"camera_id": self.camera_id, "incident_id": inc.id},
        )
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
