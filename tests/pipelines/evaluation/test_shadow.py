"""Production vs shadow matching (pipelines/evaluation/shadow.py): per (rule, zone), overlapping spans with a
tolerance, one-to-one; production's handling turned into the candidate's wins and losses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.evaluation.shadow import Compared, compare, render_text

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
UNTIL = T0 + timedelta(hours=1)


def inc(
    iid: str,
    start: float,
    end: float | None,
    *,
    rule: str = "intrusion",
    zone: str | None = "path",
    handling: str = "new",
) -> Compared:
    return Compared(
        id=iid,
        rule=rule,
        zone=zone,
        started_at=T0 + timedelta(seconds=start),
        ended_at=T0 + timedelta(seconds=end) if end is not None else None,
        handling=handling,
        confidence=0.8,
        snapshot=f"2026-12-01/cam/{iid}/snapshot.jpg",
    )


def run(production: list[Compared], shadow: list[Compared], tolerance_s: float = 2.0):  # type: ignore[no-untyped-def]
    return compare("cam", "cand", production, shadow, since=T0, until=UNTIL, tolerance_s=tolerance_s)


def test_overlap_matches_one_to_one_closest_start_first() -> None:
    c = run([inc("p1", 10, 20), inc("p2", 30, 40)], [inc("s1", 12, 18), inc("s2", 31, 35), inc("s3", 33, 39)])
    assert [(p.production.id, p.shadow.id) for p in c.both] == [("p1", "s1"), ("p2", "s2")]
    assert [s.id for s in c.shadow_only] == ["s3"] and c.production_only == []
    t = c.totals()
    assert (t.production, t.shadow, t.both, t.production_only, t.shadow_only) == (2, 3, 2, 0, 1)


@pytest.mark.parametrize(
    ("start", "end", "matched"), [(21.9, 25.0, True), (22.1, 25.0, False), (5.0, 8.1, True), (5.0, 7.9, False)]
)
def test_spans_at_most_the_tolerance_apart_match(start: float, end: float, matched: bool) -> None:
    c = run([inc("p", 10, 20)], [inc("s", start, end)])
    assert bool(c.both) is matched


def test_rule_and_zone_must_agree_and_open_incidents_last_until_the_end() -> None:
    production = [inc("p1", 10, 20), inc("p2", 100, None, rule="exit_blocked", zone="lane")]
    shadow = [inc("s1", 10, 20, zone="lawn"), inc("s2", 3000, 3010, rule="exit_blocked", zone="lane")]
    c = run(production, shadow)
    assert [(p.production.id, p.shadow.id) for p in c.both] == [("p2", "s2")]  # p2 is still open
    assert [p.id for p in c.production_only] == ["p1"] and [s.id for s in c.shadow_only] == ["s1"]


def test_handling_of_production_turns_into_wins_and_losses() -> None:
    production = [
        inc("fp-missed", 10, 20, handling="false_positive"),  # the candidate spared people this alarm: a win
        inc("fp-shared", 100, 110, handling="false_positive"),  # both raised a false alarm
        inc("real-missed", 200, 210, handling="resolved"),  # a real alarm the candidate would miss: a loss
        inc("ack-missed", 300, 310, handling="acknowledged"),
        inc("unreviewed", 400, 410),  # nobody judged it: neither
        inc("real-kept", 500, 510, handling="acknowledged"),
    ]
    shadow = [inc("s-fp", 101, 108), inc("s-real", 499, 505)]
    c = run(production, shadow)
    assert [w.id for w in c.wins] == ["fp-missed"]
    assert [loss.id for loss in c.losses] == ["real-missed", "ack-missed"]
    assert [p.production.id for p in c.shared_false_positives] == ["fp-shared"]
    t = c.by_rule["intrusion"]
    assert (t.wins, t.losses, t.shared_false_positives, t.production_only) == (1, 2, 1, 4)
    data = c.as_json()
    assert data["totals"]["wins"] == 1 and data["wins"][0]["snapshot"] == "2026-12-01/cam/fp-missed/snapshot.jpg"
    text = render_text(c)
    assert "candidate wins (production false positives it did not raise): 1" in text
    assert "fp-missed [false_positive] snapshot 2026-12-01/cam/fp-missed/snapshot.jpg" in text
    assert "candidate losses (confirmed production incidents it missed): 2" in text
