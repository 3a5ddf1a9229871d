"""Production vs a shadow run's candidate on live footage (`safewatch eval --shadow`): which incidents both raised,
which only one raised, and what people decided about production's.

Pure matching over incidents as the store recorded them (`Compared`); reading them is the API layer's job
(api/shadow_compare.py). Per (rule, zone), a production and a shadow incident match when their spans overlap or
are at most `tolerance_s` apart (an open incident lasts until `until`); one-to-one, closest starts first. Each
production incident's handling then says who was right where they disagree:

- marked false positive and the candidate did not raise it: a *win* for the candidate (an alarm it spared people);
- confirmed (acknowledged or resolved) and the candidate did not raise it: a *loss* (a real alarm it would miss);
- false positive raised by both: a shared false alarm; unreviewed ones (`new`) count for neither.

Shadow-only incidents were never shown to anyone (shadow incidents are not pushed), so nobody judged them: they are
listed with their snapshots for review, and counted, never scored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

FALSE_POSITIVE = "false_positive"
CONFIRMED = frozenset({"acknowledged", "resolved"})


@dataclass(frozen=True, slots=True)
class Compared:
    """One stored incident as the comparison sees it."""

    id: str
    rule: str
    zone: str | None
    started_at: datetime
    ended_at: datetime | None  # None: still open
    handling: str  # new | acknowledged | resolved | false_positive
    confidence: float
    snapshot: str | None  # the stored snapshot path or link (None: no snapshot)
    candidate: str | None = None  # set on shadow incidents

    def span(self, until: datetime) -> tuple[datetime, datetime]:
        return self.started_at, self.ended_at or until

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "zone": self.zone,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "handling": self.handling,
            "confidence": round(self.confidence, 4),
            "snapshot": self.snapshot,
        }


@dataclass(frozen=True, slots=True)
class Pair:
    production: Compared
    shadow: Compared


@dataclass
class RuleCounts:
    production: int = 0
    shadow: int = 0
    both: int = 0
    production_only: int = 0
    shadow_only: int = 0
    wins: int = 0
    losses: int = 0
    shared_false_positives: int = 0


@dataclass
class ShadowComparison:
    camera: str
    candidate: str
    since: datetime
    until: datetime
    tolerance_s: float
    both: list[Pair] = field(default_factory=list)
    production_only: list[Compared] = field(default_factory=list)
    shadow_only: list[Compared] = field(default_factory=list)
    wins: list[Compared] = field(default_factory=list)  # production false positives the candidate did not raise
    losses: list[Compared] = field(default_factory=list)  # confirmed production incidents the candidate missed
    shared_false_positives: list[Pair] = field(default_factory=list)
    by_rule: dict[str, RuleCounts] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "candidate": self.candidate,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "tolerance_s": self.tolerance_s,
            "totals": vars(self.totals()),
            "by_rule": {rule: vars(counts) for rule, counts in sorted(self.by_rule.items())},
            "both": [{"production": p.production.as_json(), "shadow": p.shadow.as_json()} for p in self.both],
            "production_only": [c.as_json() for c in self.production_only],
            "shadow_only": [c.as_json() for c in self.shadow_only],
            "wins": [c.as_json() for c in self.wins],
            "losses": [c.as_json() for c in self.losses],
            "shared_false_positives": [p.production.id for p in self.shared_false_positives],
        }

    def totals(self) -> RuleCounts:
        out = RuleCounts()
        for counts in self.by_rule.values():
            for name, value in vars(counts).items():
                setattr(out, name, getattr(out, name) + value)
        return out


def compare(
    camera: str,
    candidate: str,
    production: Iterable[Compared],
    shadow: Iterable[Compared],
    *,
    since: datetime,
    until: datetime,
    tolerance_s: float = 2.0,
) -> ShadowComparison:
    """Match `production` and `shadow` incidents of one camera and candidate (module docs)."""
    out = ShadowComparison(camera, candidate, since, until, tolerance_s)
    groups: dict[tuple[str, str | None], tuple[list[Compared], list[Compared]]] = defaultdict(lambda: ([], []))
    for inc in production:
        groups[inc.rule, inc.zone][0].append(inc)
    for inc in shadow:
        groups[inc.rule, inc.zone][1].append(inc)
    tolerance = timedelta(seconds=tolerance_s)
    for (rule, _zone), (prod, shad) in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        pairs = _match(prod, shad, until, tolerance)
        matched_p = {p.production.id for p in pairs}
        matched_s = {p.shadow.id for p in pairs}
        counts = out.by_rule.setdefault(rule, RuleCounts())
        _tally(out, counts, prod, shad, pairs, matched_p, matched_s)
    for items in (out.production_only, out.shadow_only, out.wins, out.losses):
        items.sort(key=lambda c: c.started_at)
    out.both.sort(key=lambda p: p.production.started_at)
    return out


def _match(prod: Sequence[Compared], shad: Sequence[Compared], until: datetime, tol: timedelta) -> list[Pair]:
    """One-to-one pairs of spans that overlap or are at most `tol` apart, the closest starts first."""
    candidates = []
    for p in prod:
        p0, p1 = p.span(until)
        for s in shad:
            s0, s1 = s.span(until)
            if p0 <= s1 + tol and s0 <= p1 + tol:
                candidates.append((abs((p.started_at - s.started_at).total_seconds()), p.id, s.id, p, s))
    pairs, used_p, used_s = [], set(), set()
    for _, pid, sid, p, s in sorted(candidates, key=lambda c: c[:3]):
        if pid not in used_p and sid not in used_s:
            used_p.add(pid)
            used_s.add(sid)
            pairs.append(Pair(p, s))
    return pairs


def _tally(
    out: ShadowComparison,
    counts: RuleCounts,
    prod: Sequence[Compared],
    shad: Sequence[Compared],
    pairs: Sequence[Pair],
    matched_p: set[str],
    matched_s: set[str],
) -> None:
    counts.production += len(prod)
    counts.shadow += len(shad)
    counts.both += len(pairs)
    out.both.extend(pairs)
    for pair in pairs:
        if pair.production.handling == FALSE_POSITIVE:
            counts.shared_false_positives += 1
            out.shared_false_positives.append(pair)
    for p in prod:
        if p.id in matched_p:
            continue
        counts.production_only += 1
        out.production_only.append(p)
        if p.handling == FALSE_POSITIVE:
            counts.wins += 1
            out.wins.append(p)
        elif p.handling in CONFIRMED:
            counts.losses += 1
            out.losses.append(p)
    only = [s for s in shad if s.id not in matched_s]
    counts.shadow_only += len(only)
    out.shadow_only.extend(only)


def render_text(c: ShadowComparison) -> str:
    """The comparison as a table per rule and the lists an engineer reviews (snapshots of each)."""
    t = c.totals()
    lines = [
        f"camera {c.camera}: production vs shadow {c.candidate}, {c.since.isoformat()} .. {c.until.isoformat()} "
        f"(tolerance {c.tolerance_s:g} s)",
        f"{'rule':<16} {'prod':>5} {'shadow':>6} {'both':>5} {'prod-only':>9} {'shadow-only':>11} {'wins':>5} "
        f"{'losses':>6} {'shared-FP':>9}",
    ]
    for rule, r in [*sorted(c.by_rule.items()), ("all", t)]:
        lines.append(
            f"{rule:<16} {r.production:>5} {r.shadow:>6} {r.both:>5} {r.production_only:>9} {r.shadow_only:>11} "
            f"{r.wins:>5} {r.losses:>6} {r.shared_false_positives:>9}"
        )
    sections = (
        ("candidate wins (production false positives it did not raise)", c.wins),
        ("candidate losses (confirmed production incidents it missed)", c.losses),
        ("production only", c.production_only),
        ("shadow only (unreviewed: shadow incidents are never pushed)", c.shadow_only),
    )
    for title, items in sections:
        lines.append(f"{title}: {len(items)}")
        lines.extend(f"  {_line(i)}" for i in items)
    lines.append(f"both raised: {len(c.both)}")
    lines.extend(f"  {_line(p.production)}  <->  shadow {p.shadow.id} {p.shadow.snapshot or '-'}" for p in c.both)
    return "\n".join(lines)


def _line(i: Compared) -> str:
    zone = f"@{i.zone}" if i.zone else ""
    return f"{i.started_at.isoformat()} {i.rule}{zone} {i.id} [{i.handling}] snapshot {i.snapshot or '-'}"
