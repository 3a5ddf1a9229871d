"""`smoke_fire`: smoke or flames seen on at least k of the last n analysed frames.

Per zone (or the whole frame when the rule names no zones) a frame is a hit when some box with one of the labels,
at least `min_confidence` and an area of at least `min_area` of the frame lies in the zone (the zone's anchor, label
filter and minimum size apply). The vote holds while ≥ k of the last n analysed frames were hits; the Violation is
zone-level (subject None): one incident however many boxes. Its evidence and labels are those of the latest hit,
its confidence the mean of the best confidence on each hit frame of the window. A gap of more than `STALE_S` seconds
between analysed frames (a paused schedule, a stalled stream) empties the window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from pipelines.config.rules import SmokeFireRule
from pipelines.rules.base import FrameContext, SingleFrame, Violation
from pipelines.rules.common import WatchedZone, select
from vision.types import Detections

STALE_S = 30.0


class _Window:
    __slots__ = ("evidence", "votes")

    def __init__(self, n: int) -> None:
        self.votes: deque[float] = deque(maxlen=n)  # best confidence of each frame, 0.0 = no hit
        self.evidence = Detections.empty()


class SmokeFire:
    type = "smoke_fire"
    needs_every_frame = True  # faint smoke may not pass the motion gate's change threshold
    reads_whole_frame = True  # smoke and fire have no clean box: its model sees whole frames
    uses_static_scene = False
    dwell_s = 0.0
    single_frame = SingleFrame(still={"k": 1, "n": 1}, note="k-of-n vote reduced to this frame")

    def __init__(self, key: str, params: SmokeFireRule, zones: Sequence[WatchedZone]) -> None:
        self.key = key
        self.params = params
        self.zones = list(zones) or [WatchedZone.whole_frame()]
        self.required_labels = frozenset(params.labels)
        self._windows = [_Window(params.n) for _ in self.zones]
        self._last_t: float | None = None

    def reset(self) -> None:
        self._windows = [_Window(self.params.n) for _ in self.zones]
        self._last_t = None

    def evaluate(self, ctx: FrameContext) -> list[Violation]:
        det, t, p = ctx.detections, ctx.frame.pts, self.params
        if self._last_t is not None and not 0.0 <= t - self._last_t <= STALE_S:
            self.reset()
        self._last_t = t
        w, h = ctx.frame.width, ctx.frame.height
        cand = select(det, p.labels, p.min_confidence)
        if p.min_area > 0:
            cand &= det.area >= np.float32(p.min_area * w * h)
        out: list[Violation] = []
        for zone, window in zip(self.zones, self._windows, strict=True):
            rows = np.flatnonzero(cand & zone.contains(det, w, h)) if cand.any() else np.empty(0, dtype=np.int64)
            window.votes.append(float(det.confidence[rows].max()) if rows.size else 0.0)
            if rows.size:
                window.evidence = det[rows]
            hits = [c for c in window.votes if c > 0.0]
            if len(hits) >= p.k:
                out.append(
                    Violation(
                        rule_key=self.key,
                        rule=self.type,
                        zone=zone.name,
                        subject=None,
                        track_ids=tuple(sorted({int(i) for i in window.evidence.tracker_id if i >= 0})),
                        labels=tuple(sorted(set(window.evidence.label.tolist()))),
                        confidence=float(np.mean(hits)),
                        evidence=window.evidence,
                    )
                )
        return out
