from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.events import EventType, IncidentEvent, Severity
from pipelines.incidents.manager import IncidentManager
from pipelines.rules.base import RuleTiming, Violation

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def _v(
    subject: str | None = None, conf: float = 0.8, tracks: tuple[int, ...] = (1,), rule_key: str = "r0"
) -> Violation:
    return Violation(rule_key, "intrusion", "zone-a", subject, tracks, ("person",), conf)


def _run(mgr: IncidentManager, timeline: list[tuple[float, list[Violation]]], fps: float = 5.0) -> list[IncidentEvent]:
    """timeline: (until_t, violations held from the previous point until until_t), sampled at fps."""
    events: list[IncidentEvent] = []
    t = 0.0
    for until, vs in timeline:
        while t < until - 1e-9:
            events += mgr.observe(vs, t, T0 + timedelta(seconds=t))
            t = round(t + 1 / fps, 6)
    return events


def _mgr(**timing: float) -> IncidentManager:
    return IncidentManager("cam-1", "site-1", {"r0": RuleTiming(rule="intrusion", **timing)})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("timing", "timeline", "expected"),
    [
        # condition shorter than min_seconds → nothing
        ({"min_seconds": 2.0}, [(1.0, []), (2.4, [_v()]), (10, [])], []),
        # sustained → opened after min_seconds, closed after clear_seconds
        (
            {"min_seconds": 2.0, "clear_seconds": 3.0},
            [(1.0, []), (6.0, [_v()]), (12, [])],
            [("opened", 3.0), ("closed", 8.8)],
        ),
        # a one-frame dropout while confirming is bridged
        ({"min_seconds": 2.0}, [(1.0, [_v()]), (1.2, []), (4.0, [_v()]), (5, [])], [("opened", 2.0)]),
        # a long dropout restarts confirmation
        ({"min_seconds": 2.0}, [(1.0, [_v()]), (3.0, []), (4.6, [_v()]), (5, [])], []),
        # flicker while open does not close (clear_seconds) or reopen
        (
            {"min_seconds": 0.0, "clear_seconds": 2.0},
            [(1, [_v()]), (2.0, []), (3, [_v()]), (8, [])],
            [("opened", 0.0), ("closed", 4.8)],
        ),
    ],
)
def test_lifecycle_timing(
    timing: dict[str, float], timeline: list[tuple[float, list[Violation]]], expected: list[tuple[str, float]]
) -> None:
    events = _run(_mgr(**timing), timeline)
    assert [(e.type.value, e.offset_s) for e in events] == expected


def test_ids_seq_and_started_at() -> None:
    events = _run(_mgr(min_seconds=1.0, clear_seconds=1.0), [(2.0, []), (5.0, [_v()]), (8.0, [])])
    opened, closed = events
    assert opened.id == closed.id and opened.seq == 0 and closed.seq == 1
    assert opened.started_at == T0 + timedelta(seconds=2.0)  # when the condition began, not when confirmed
    assert closed.ended_at == T0 + timedelta(seconds=4.8)  # last time seen
    assert opened.severity is Severity.warning and opened.camera_id == "cam-1" and opened.site == "site-1"


def test_one_incident_per_subject_and_per_condition() -> None:
    a, b = _v("track:1", tracks=(1,)), _v("track:2", tracks=(2,))
    events = _run(_mgr(), [(2.0, [a]), (4.0, [a, b]), (6.0, [b]), (20.0, [])])
    opened = [e for e in events if e.type is EventType.opened]
    closed = [e for e in events if e.type is EventType.closed]
    assert len(opened) == 2 and len(closed) == 2
    assert {e.track_ids[0] for e in opened} == {1, 2}
    assert len({e.id for e in events}) == 2


def test_parked_van_is_one_incident_without_update_storm() -> None:
    van = Violation("r0", "exit_blocked", "exit", None, (7,), ("truck",), 0.8)
    events = _run(_mgr(), [(600.0, [van]), (620.0, [])], fps=5.0)
    assert [e.type for e in events] == [EventType.opened, EventType.closed]


def test_updates_on_change_are_rate_limited() -> None:
    mgr = IncidentManager("c", "s", {"r0": RuleTiming("intrusion")}, update_interval_seconds=10.0)
    tl = [(float(s + 1), [_v(tracks=(1, s))]) for s in range(30)]  # the track set changes every second
    events = _run(mgr, tl)
    updates = [e for e in events if e.type is EventType.updated]
    assert 2 <= len(updates) <= 3
    assert [e.seq for e in events] == list(range(len(events)))


def test_cooldown_suppresses_reopening() -> None:
    events = _run(
        _mgr(clear_seconds=1.0, cooldown_seconds=10.0),
        [(1.0, [_v()]), (3.0, []), (4.0, [_v()]), (6.0, []), (20.0, [_v()]), (21, [])],
    )
    assert [e.type for e in events] == [EventType.opened, EventType.closed, EventType.opened, EventType.closed]
    assert events[2].offset_s == pytest.approx(11.8)  # not at 4.0: cooldown ran until 0.8 + 1 + 10


def test_close_all() -> None:
    mgr = _mgr()
    ev = _run(mgr, [(1.0, [_v()])])
    assert [e.type for e in ev] == [EventType.opened]
    closed = mgr.close_all(2.0, T0)
    assert [(e.type, e.id, e.seq) for e in closed] == [(EventType.closed, ev[0].id, 1)]
    assert mgr.live() == []


def test_best_evidence_kept() -> None:
    mgr = _mgr()
    _run(mgr, [(0.4, [_v(conf=0.5)]), (0.8, [_v(conf=0.9)]), (1.2, [_v(conf=0.6)])])
    (live,) = mgr.live()
    assert live.violation.confidence == pytest.approx(0.9)
