"""The matcher and the scores on crafted cases: a missed episode, a duplicate, an incident inside an ignore span, an
incident 1 s before its episode, other rules and zones kept apart, and aggregation over clips."""

from __future__ import annotations

import pytest

from pipelines.evaluation.episodes import Span
from pipelines.evaluation.metrics import OVERALL, Counts, Opened, Outcome, aggregate, count, match, per_rule

EPISODES = (
    Span("intrusion", "path", 10.0, 14.0),
    Span("intrusion", "path", 30.0, 33.0),
    Span("intrusion", "path", 50.0, 52.0),
    Span("exit_blocked", "lane", 0.0, 80.0),
)
IGNORE = (Span("intrusion", "path", 40.0, 42.0),)


def outcomes(incidents: list[Opened], tolerance: float = 2.0) -> list[tuple[float, Outcome, int | None]]:
    return [(m.incident.offset_s, m.outcome, m.episode) for m in match(EPISODES, IGNORE, incidents, tolerance)]


def test_missed_duplicate_ignored_and_early() -> None:
    incidents = [
        Opened("intrusion", "path", 29.0),  # 1 s before episode 1: its TP
        Opened("intrusion", "path", 11.0),  # inside episode 0
        Opened("intrusion", "path", 12.5),  # second one inside episode 0: duplicate
        Opened("intrusion", "path", 41.0),  # inside the ignore span
        Opened("intrusion", "path", 60.0),  # nothing there: FP
        Opened("exit_blocked", "lane", 20.0),
    ]  # episode 2 (50-52) gets nothing: missed
    assert outcomes(incidents) == [
        (11.0, Outcome.tp, 0),
        (12.5, Outcome.duplicate, 0),
        (20.0, Outcome.tp, 3),
        (29.0, Outcome.tp, 1),
        (41.0, Outcome.ignored, None),
        (60.0, Outcome.fp, None),
    ]
    matches = match(EPISODES, IGNORE, incidents, 2.0)
    c = count(EPISODES, matches, 3600.0, "intrusion")
    assert (c.episodes, c.tp, c.fp, c.duplicates, c.missed, c.ignored) == (3, 2, 1, 1, 1, 1)
    assert c.precision == pytest.approx(2 / 4) and c.recall == pytest.approx(2 / 3)
    assert c.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert c.delays == (1.0, -1.0) and c.median_delay_s == 0.0 and c.p90_delay_s == pytest.approx(0.8)
    assert c.false_alarms_per_hour == 1.0


def test_tolerance_bounds() -> None:
    """An incident 1 s early is a TP with tolerance 2 and an FP with tolerance 0.5; the end gets the same reach."""
    early = [Opened("intrusion", "path", 29.0)]
    assert outcomes(early) == [(29.0, Outcome.tp, 1)]
    assert outcomes(early, tolerance=0.5) == [(29.0, Outcome.fp, None)]
    late = [Opened("intrusion", "path", 53.5)]  # 1.5 s after the end of episode 2
    assert outcomes(late) == [(53.5, Outcome.tp, 2)] and outcomes(late, 1.0) == [(53.5, Outcome.fp, None)]


def test_inside_beats_early_and_ignore_beats_near_duplicate() -> None:
    """An incident inside an episode takes it even when an earlier one was within the tolerance before it; that
    earlier one, also inside an ignore span, is ignored rather than a duplicate."""
    episodes = (Span("intrusion", "path", 47.4, 49.4),)
    ignore = (Span("intrusion", "path", 45.6, 47.0),)
    got = match(episodes, ignore, [Opened("intrusion", "path", 46.6), Opened("intrusion", "path", 47.6)], 2.0)
    assert [(m.outcome, m.episode) for m in got] == [(Outcome.ignored, None), (Outcome.tp, 0)]
    got = match(episodes, (), [Opened("intrusion", "path", 46.6), Opened("intrusion", "path", 47.6)], 2.0)
    assert [(m.outcome, m.episode) for m in got] == [(Outcome.duplicate, 0), (Outcome.tp, 0)]


def test_rule_and_zone_must_both_match() -> None:
    incidents = [Opened("intrusion", "lane", 11.0), Opened("loitering", "path", 11.0)]
    assert [o for _, o, _ in outcomes(incidents)] == [Outcome.fp, Outcome.fp]


def test_instant_episodes_for_line_crossings() -> None:
    episodes = (Span("line_crossing", None, 5.0, 5.0), Span("line_crossing", None, 6.0, 6.0))
    incidents = [Opened("line_crossing", None, 5.8), Opened("line_crossing", None, 6.2)]
    got = match(episodes, (), incidents, 1.0)
    assert [(m.outcome, m.episode) for m in got] == [(Outcome.tp, 0), (Outcome.tp, 1)]


def test_per_rule_and_aggregate() -> None:
    matches = match(EPISODES, IGNORE, [Opened("intrusion", "path", 11.0)], 2.0)
    clip = per_rule(EPISODES, matches, 1800.0, ["exit_blocked", "intrusion", "loitering"])
    assert clip["loitering"] == Counts(duration_s=1800.0)
    assert clip["loitering"].precision is None and clip["loitering"].recall is None
    assert clip[OVERALL].episodes == 4 and clip[OVERALL].tp == 1 and clip["exit_blocked"].missed == 1
    total = aggregate([clip, {"intrusion": clip["intrusion"], OVERALL: clip["intrusion"]}])
    assert list(total) == ["exit_blocked", "intrusion", "loitering", OVERALL]
    assert total["intrusion"].episodes == 6 and total["intrusion"].duration_s == 3600.0
    assert total[OVERALL].episodes == 7 and total[OVERALL].tp == 2 and total["exit_blocked"].duration_s == 1800.0
    assert total[OVERALL].as_dict()["recall"] == pytest.approx(2 / 7)


def test_overlapping_subject_episodes_take_one_incident_each() -> None:
    """Per-person episodes: k people in the zone at once take up to k incidents; an incident inside several goes to
    the one ending first, so a long episode does not take the only incident of a short one."""
    episodes = (
        Span("no_helmet", "walkway", 0.0, 80.0, subject="standing man"),
        Span("no_helmet", "walkway", 17.0, 20.0, subject="red coat"),
        Span("no_helmet", "walkway", 17.0, 21.0, subject="blue cap"),
        Span("no_helmet", "walkway", 60.0, 65.0, subject="grey hoodie"),
    )
    incidents = [Opened("no_helmet", "walkway", t) for t in (18.0, 19.0, 50.0, 55.0, 79.0)]
    got = [(m.incident.offset_s, m.outcome, m.episode) for m in match(episodes, (), incidents, 2.0)]
    assert got == [
        (18.0, Outcome.tp, 1),
        (19.0, Outcome.tp, 2),
        (50.0, Outcome.tp, 0),
        (55.0, Outcome.duplicate, 0),
        (79.0, Outcome.duplicate, 0),
    ]
    c = count(episodes, match(episodes, (), incidents, 2.0), 80.0)
    assert (c.tp, c.duplicates, c.missed) == (3, 2, 1)
