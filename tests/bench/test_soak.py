"""bench/soak.py's analysis: the robust slope, the flat/bounded verdicts and the report, on synthetic samples."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.soak import Check, Sample, analyse, met, render, sparkline, theil_sen

CAP = 32.0


def samples(
    minutes: float, *, rss_per_min: float = 0.0, fds_per_min: float = 0.0, rows_per_min: float = 0.0
) -> list[Sample]:
    """One sample every 30 s; media fills to just under the cap in 2 minutes and stays there; the DB stays flat."""
    out = []
    for k in range(int(minutes * 2) + 1):
        t = k * 30.0
        out.append(
            Sample(
                t_s=t,
                utc="00:00:00",
                rss_mib=500.0 + rss_per_min * t / 60 + (7.0 if k == 5 else 0.0),  # one spike
                fds=int(20 + fds_per_min * t / 60),
                threads=26,
                procs=1,
                cpu_pct=35.0,
                media_mib=min(CAP * 0.95, 8.0 * t / 60),
                media_files=100,
                db_mib=2.0,
                db_free_mib=0.5,
                wal_mib=4.0,
                incidents=int(60 + rows_per_min * t / 60),
                events=120,
                actions=0,
                deliveries=0,
                opened_total=k * 10,
                open_now=3,
                evidence_deleted=k,
                retention_lines=k,
                api_errors=0,
                load1=1.0,
            )
        )
    return out


def by_name(checks: list[Check], prefix: str) -> Check:
    return next(c for c in checks if c.name.startswith(prefix))


def test_theil_sen_ignores_an_outlier() -> None:
    xs = [float(x) for x in range(10)]
    ys = [2.0 * x + 1 for x in xs]
    ys[4] = 500.0
    assert theil_sen(xs, ys) == pytest.approx(2.0)
    assert theil_sen([1.0, 1.0], [3.0, 4.0]) == 0.0


def test_flat_run_is_met_after_20_minutes_only() -> None:
    long, short = samples(20), samples(3)
    checks = analyse(long, CAP)
    assert all(c.ok for c in checks), checks
    assert met(checks, 20.0)
    assert not met(analyse(short, CAP), 3.0)


@pytest.mark.parametrize(
    ("kwargs", "failing"),
    [
        ({"rss_per_min": 2.0}, "RSS"),  # 20 MiB over the second half > max(8, 2% of ~520)
        ({"fds_per_min": 1.0}, "open file"),
        ({"rows_per_min": 30.0}, "incident rows"),
    ],
)
def test_growth_is_caught(kwargs: dict[str, float], failing: str) -> None:
    checks = analyse(samples(20, **kwargs), CAP)
    assert not by_name(checks, failing).ok
    assert not met(checks, 20.0)


def test_media_over_the_cap_or_never_reaching_it_is_not_bounded() -> None:
    over = [replace(s, media_mib=s.media_mib * 2) for s in samples(20)]
    assert not by_name(analyse(over, CAP), "media").ok
    never = [replace(s, media_mib=5.0, evidence_deleted=0) for s in samples(20)]
    check = by_name(analyse(never, CAP), "media")
    assert not check.ok
    assert "inconclusive" in check.note


def test_report_carries_a_summary_line_and_the_verdicts() -> None:
    run = samples(20)
    text = render(run, analyse(run, CAP, db_retention=False), {"duration": "20 min"}, ["a note"], CAP)
    assert "<!-- summary: goal=" in text and "met=yes" in text
    assert "no database retention in this run" in text
    assert "| 20.0 |" in text  # the last sample is always in the table
    assert sparkline([1.0, 1.0]) == "▄▄"
    assert sparkline([0.0, 1.0]) == "▁█"
