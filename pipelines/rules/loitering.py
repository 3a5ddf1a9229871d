"""`loitering`: one tracked object staying in a zone for at least `dwell_seconds`.

Per zone, a `DwellTimer` remembers since when each track has been inside; a track out of the zone (or undetected)
for less than `grace_seconds` keeps its time (anchor flicker at the boundary, brief occlusion), longer resets it.
The Violation (subject `track:<id>`) holds from the moment the dwell is reached until the track leaves; the manager's
`min_seconds` (default 0) is extra confirmation on top. Untracked rows are ignored: dwell needs identity over time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipelines.config.rules import LoiteringRule
from pipelines.rules.base import FrameContext, SingleFrame, Violation
from pipelines.rules.common import DwellTimer, WatchedZone, select, subject_violations


class Loitering:
    type = "loitering"
    needs_every_frame = False
    reads_whole_frame = False
    uses_static_scene = False
    single_frame = SingleFrame(
        evaluated=False, note="not evaluated: loitering needs one track's dwell time over many frames"
    )

    def __init__(self, key: str, params: LoiteringRule, zones: Sequence[WatchedZone], *, tracked: bool = True) -> None:
        self.key = key
        self.params = params
        self.dwell_s = params.dwell_seconds
        self.zones = list(zones)
        self.tracked = tracked
        self.required_labels = frozenset(params.labels)
        self._timers = [DwellTimer(params.grace_seconds) for _ in self.zones]

    def reset(self) -> None:
        for timer in self._timers:
            timer.reset()

    def evaluate(self, ctx: FrameContext) -> list[Violation]:
        det, t = ctx.detections, ctx.frame.pts
        cand = select(det, self.params.labels, self.params.min_confidence) & (det.tracker_id >= 0)
        out: list[Violation] = []
        for zone, timer in zip(self.zones, self._timers, strict=True):
            rows = np.flatnonzero(cand & zone.contains(det, ctx.frame.width, ctx.frame.height))
            first = timer.update(t, det.tracker_id[rows], det.xyxy[rows])
            due = rows[t - first >= self.params.dwell_seconds - 1e-9]
            out += subject_violations(self.key, self.type, zone.name, det, due, tracked=True)
        return out
