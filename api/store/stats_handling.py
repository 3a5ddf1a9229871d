"""How incidents are handled, for the console's dashboard: the open backlog by age, the time to acknowledge and to
resolve per site (median and p90), and the false-positive rate per rule and per camera.

Definitions (the README's API section repeats them):

- backlog: incidents whose handling is not finished (`new` or `acknowledged`), whatever their lifecycle status and
  start time, by age (now - started_at) in the buckets of `AGE_BUCKETS`;
- time to acknowledge: from started_at to the incident's first handling action (an operator who resolves at once has
  responded too); time to resolve: to the action that finished its handling (`resolve` or `false-positive`);
- false-positive rate: false positives / judged incidents (resolved + false positive), None when none was judged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.store.models import Handling, HandlingAction, Incident, utcnow
from api.store.stats import StatsFilter

#: (label, upper bound of the age in seconds; None: no bound)
AGE_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("lt_1h", 3600.0),
    ("1h_4h", 4 * 3600.0),
    ("4h_24h", 24 * 3600.0),
    ("1d_3d", 3 * 86400.0),
    ("3d_7d", 7 * 86400.0),
    ("gt_7d", None),
)
UNFINISHED = (Handling.new.value, Handling.acknowledged.value)
FINISHING = ("resolve", "false-positive")
ALL_SITES = "*"  # the handling-times row over every site the key sees


@dataclass(frozen=True)
class Durations:
    count: int
    median_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Durations:
        values = sorted(seconds)
        return cls(len(values), quantile(values, 0.5), quantile(values, 0.9))


@dataclass(frozen=True)
class FalsePositiveRate:
    incidents: int
    judged: int
    false_positive: int

    @property
    def rate(self) -> float | None:
        return self.false_positive / self.judged if self.judged else None


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default) of sorted `values`; None when empty."""
    if not values:
        return None
    pos = (len(values) - 1) * q
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def backlog(session: Session, f: StatsFilter, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """`{bucket label: {"new": n, "acknowledged": n}}` for every bucket of AGE_BUCKETS, oldest last."""
    now = now or utcnow()
    query = select(Incident.started_at, Incident.handling).where(
        *f.conditions(window=False), Incident.handling.in_(UNFINISHED)
    )
    out = {label: dict.fromkeys(UNFINISHED, 0) for label, _ in AGE_BUCKETS}
    for started_at, handling in session.execute(query):
        age = (now - started_at).total_seconds()
        label = next(label for label, bound in AGE_BUCKETS if bound is None or age < bound)
        out[label][handling] += 1
    return out


def handling_times(session: Session, f: StatsFilter) -> dict[str, tuple[Durations, Durations]]:
    """`{site: (time to acknowledge, time to resolve)}` of the incidents of `f` that were handled, plus ALL_SITES."""
    query = (
        select(Incident.id, Incident.site, Incident.started_at, HandlingAction.action, HandlingAction.at)
        .join(HandlingAction, HandlingAction.incident_id == Incident.id)
        .where(*f.conditions())
        .order_by(HandlingAction.id)
    )
    first: dict[str, tuple[str, float]] = {}
    finished: dict[str, tuple[str, float]] = {}
    for incident_id, site, started_at, action, at in session.execute(query):
        seconds = max(0.0, (at - started_at).total_seconds())
        first.setdefault(incident_id, (site, seconds))
        if action in FINISHING:
            finished.setdefault(incident_id, (site, seconds))
    ack: dict[str, list[float]] = defaultdict(list)
    resolve: dict[str, list[float]] = defaultdict(list)
    for target, source in ((ack, first), (resolve, finished)):
        for site, seconds in source.values():
            target[site].append(seconds)
            target[ALL_SITES].append(seconds)
    sites = sorted(set(ack) | set(resolve))
    return {site: (Durations.of(ack[site]), Durations.of(resolve[site])) for site in sites}


def false_positive_rates(session: Session, f: StatsFilter, by: str) -> dict[str, FalsePositiveRate]:
    """`{rule or camera: FalsePositiveRate}` (`by` = "rule" or "camera") of the incidents of `f`."""
    column = {"rule": Incident.rule, "camera": Incident.camera_id}[by]
    query = select(column, Incident.handling, func.count()).where(*f.conditions()).group_by(column, Incident.handling)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, handling, count in session.execute(query):
        counts[str(key)][str(handling)] += int(count)
    out = {}
    for key, c in sorted(counts.items()):
        fp = c[Handling.false_positive.value]
        out[key] = FalsePositiveRate(sum(c.values()), c[Handling.resolved.value] + fp, fp)
    return out
