"""Matching incidents to labelled episodes, and the scores (pure functions, no I/O).

Per (rule, zone): each episode's true positive (TP) is the first incident that opens inside it ([start, end]);
an episode still without one takes the nearest unclaimed incident that opens within the tolerance of it
([start − tolerance, end + tolerance]: early alarms, and instants such as line crossings). Episodes of different
subjects (one per person) may overlap; an incident opening inside several of them is the TP of the one that ends
first among those still without a TP (incidents taken in opening order: the assignment that gives the most episodes
a TP, as for points and intervals), so k people in a zone at once take up to k incidents as TPs. Time alone decides,
as in ActEV-style activity scoring: the evaluation does not know which person an incident is about.

Every other incident is a duplicate when it opens inside an episode, ignored when it opens within an ignore span
(± tolerance), a duplicate when it opens within the tolerance of an episode, and a false positive (FP) otherwise.
An episode without a TP is missed.

Scores: precision = TP / (TP + FP + duplicates) — every alarm that was not the first for its episode is noise to
the operator —, recall = TP / episodes, F1, detection delay (TP open − episode start; negative when it opened within
the tolerance before the start) as median and p90, and false alarms (FP) per hour of footage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from pipelines.evaluation.episodes import Span

OVERALL = "overall"


@dataclass(frozen=True, slots=True)
class Opened:
    """An incident as the evaluation sees it: when it opened (media seconds)."""

    rule: str
    zone: str | None
    offset_s: float
    id: str = ""


class Outcome(StrEnum):
    tp = "tp"
    duplicate = "duplicate"
    fp = "fp"
    ignored = "ignored"


@dataclass(frozen=True, slots=True)
class IncidentMatch:
    incident: Opened
    outcome: Outcome
    episode: int | None = None  # index into the episodes (tp, duplicate)


def _distance(t: float, span: Span) -> float:
    return max(span.start - t, 0.0, t - span.end)


def match(
    episodes: Sequence[Span], ignore: Sequence[Span], incidents: Iterable[Opened], tolerance: float
) -> list[IncidentMatch]:
    """Classify every incident (module docs); the result is in opening order."""
    order = sorted(incidents, key=lambda i: (i.offset_s, i.id))
    tp: dict[int, int] = {}  # incident index -> episode index
    for i, inc in enumerate(order):  # first pass: inside, earliest-ending episode still without a TP
        open_eps = [e for e, ep in enumerate(episodes) if ep.key == _key(inc) and e not in tp.values()
                    and _distance(inc.offset_s, ep) == 0]  # fmt: skip
        if open_eps:
            tp[i] = min(open_eps, key=lambda e: (episodes[e].end, episodes[e].start, e))
    for e, ep in enumerate(episodes):  # second pass: the nearest unclaimed incident within the tolerance
        if e in tp.values():
            continue
        near = [i for i, inc in enumerate(order)
                if _key(inc) == ep.key and i not in tp and _distance(inc.offset_s, ep) <= tolerance]  # fmt: skip
        if near:
            tp[min(near, key=lambda i: (_distance(order[i].offset_s, ep), i))] = e
    return [IncidentMatch(inc, Outcome.tp, tp[i]) if i in tp else _other(inc, episodes, ignore, tolerance)
            for i, inc in enumerate(order)]  # fmt: skip


def _key(inc: Opened) -> tuple[str, str | None]:
    return (inc.rule, inc.zone)


def _other(inc: Opened, episodes: Sequence[Span], ignore: Sequence[Span], tolerance: float) -> IncidentMatch:
    """An incident that is no episode's TP: duplicate, ignored or FP (module docs)."""
    mine = [(e, _distance(inc.offset_s, ep)) for e, ep in enumerate(episodes) if ep.key == _key(inc)]
    inside = [e for e, d in mine if d == 0]
    if inside:
        return IncidentMatch(inc, Outcome.duplicate, inside[0])
    if any(s.key == _key(inc) and _distance(inc.offset_s, s) <= tolerance for s in ignore):
        return IncidentMatch(inc, Outcome.ignored)
    near = [(d, e) for e, d in mine if d <= tolerance]
    if near:
        return IncidentMatch(inc, Outcome.duplicate, min(near)[1])
    return IncidentMatch(inc, Outcome.fp)


@dataclass(frozen=True)
class Counts:
    """The scores of one rule (or all) over some footage."""

    episodes: int = 0
    tp: int = 0
    fp: int = 0
    duplicates: int = 0
    missed: int = 0
    ignored: int = 0
    duration_s: float = 0.0
    delays: tuple[float, ...] = field(default=(), repr=False)

    @property
    def precision(self) -> float | None:
        alarms = self.tp + self.fp + self.duplicates
        return self.tp / alarms if alarms else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.episodes if self.episodes else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def median_delay_s(self) -> float | None:
        return float(np.median(self.delays)) if self.delays else None

    @property
    def p90_delay_s(self) -> float | None:
        return float(np.percentile(self.delays, 90)) if self.delays else None

    @property
    def false_alarms_per_hour(self) -> float | None:
        return self.fp * 3600.0 / self.duration_s if self.duration_s > 0 else None

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.episodes + other.episodes,
            self.tp + other.tp,
            self.fp + other.fp,
            self.duplicates + other.duplicates,
            self.missed + other.missed,
            self.ignored + other.ignored,
            self.duration_s + other.duration_s,
            self.delays + other.delays,
        )

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "episodes": self.episodes, "tp": self.tp, "fp": self.fp, "duplicates": self.duplicates,
            "missed": self.missed, "ignored": self.ignored, "precision": self.precision, "recall": self.recall,
            "f1": self.f1, "median_delay_s": self.median_delay_s, "p90_delay_s": self.p90_delay_s,
            "false_alarms_per_hour": self.false_alarms_per_hour, "footage_s": self.duration_s,
        }  # fmt: skip


def count(
    episodes: Sequence[Span], matches: Sequence[IncidentMatch], duration_s: float, rule: str | None = None
) -> Counts:
    """Scores of one clip, for one rule type (or all rules with None)."""
    chosen = [m for m in matches if rule is None or m.incident.rule == rule]
    eps = [i for i, ep in enumerate(episodes) if rule is None or ep.rule == rule]
    first = {m.episode: m for m in chosen if m.outcome is Outcome.tp}
    delays = tuple(round(first[i].incident.offset_s - episodes[i].start, 3) for i in eps if i in first)
    return Counts(
        episodes=len(eps),
        tp=len(first),
        fp=sum(m.outcome is Outcome.fp for m in chosen),
        duplicates=sum(m.outcome is Outcome.duplicate for m in chosen),
        missed=len(eps) - len(first),
        ignored=sum(m.outcome is Outcome.ignored for m in chosen),
        duration_s=duration_s,
        delays=delays,
    )


def per_rule(
    episodes: Sequence[Span], matches: Sequence[IncidentMatch], duration_s: float, rules: Iterable[str]
) -> dict[str, Counts]:
    """Scores of one clip per rule type (`rules`: those the camera runs) and overall (key `OVERALL`)."""
    out = {r: count(episodes, matches, duration_s, r) for r in rules}
    out[OVERALL] = count(episodes, matches, duration_s)
    return out


def aggregate(clips: Iterable[dict[str, Counts]]) -> dict[str, Counts]:
    """Scores of several clips: counts, delays and footage added per rule (a rule counts only the clips that run
    it), `OVERALL` last."""
    total: dict[str, Counts] = {}
    for clip in clips:
        for rule, c in clip.items():
            total[rule] = total.get(rule, Counts()) + c
    overall = total.pop(OVERALL, Counts())
    return {**dict(sorted(total.items())), OVERALL: overall}
