"""`line_crossing`: a track's anchor crossing the rule's directed line, in the configured direction.

Per track the rule keeps the last anchor position that was off the line (side ±1); a crossing is a movement from
that position to the current one that passes through the line segment (`vision.geometry.DirectedLine`), so a track
pausing exactly on the line still counts once. Direction (params.py): `in` = from the left-hand to the right-hand
side of A→B on screen (DirectedLine crossing +1), `out` = the reverse (−1), `any` = both.

A Violation (subject `track:<id>`, zone None) is returned on the frame of the crossing only; the incident manager
opens it at once (min_seconds 0) and closes it after clear_seconds. A track crossing again while its incident is
open (or in cooldown) does not open another one. Untracked rows are ignored; positions of tracks not seen for
`STALE_S` seconds are forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.config.rules import LineCrossingRule
from pipelines.rules.base import FrameContext, SingleFrame, Violation
from pipelines.rules.common import select, subject_violations
from vision.geometry import DirectedLine, normalise_points

STALE_S = 30.0
_WANTED = {"any": (1, -1), "in": (1,), "out": (-1,)}


@dataclass(slots=True)
class _Last:
    point: npt.NDArray[np.float64]  # normalised, last position off the line
    seen: float


class LineCrossing:
    type = "line_crossing"
    needs_every_frame = True  # a crossing needs the positions on both sides of the line
    reads_whole_frame = False
    uses_static_scene = False
    dwell_s = 0.0
    single_frame = SingleFrame(
        evaluated=False, note="not evaluated: line_crossing needs a track's movement between frames"
    )

    def __init__(self, key: str, params: LineCrossingRule, *, tracked: bool = True) -> None:
        self.key = key
        self.params = params
        self.tracked = tracked
        self.required_labels = frozenset(params.labels)
        self.line = DirectedLine(params.line[0], params.line[1], name=params.name or key)
        self._wanted = np.asarray(_WANTED[params.direction], dtype=np.int8)
        self._last: dict[int, _Last] = {}

    def reset(self) -> None:
        self._last.clear()

    def evaluate(self, ctx: FrameContext) -> list[Violation]:
        det, t = ctx.detections, ctx.frame.pts
        self._last = {tid: s for tid, s in self._last.items() if 0.0 <= t - s.seen <= STALE_S}
        rows = np.flatnonzero(select(det, self.params.labels, self.params.min_confidence) & (det.tracker_id >= 0))
        if rows.size == 0:
            return []
        points = normalise_points(det[rows].anchors(self.params.anchor), ctx.frame.width, ctx.frame.height)
        ids = det.tracker_id[rows].tolist()
        known = np.asarray([tid in self._last for tid in ids], dtype=np.bool_)
        crossed = np.zeros(len(rows), dtype=np.int8)
        if known.any():
            prev = np.stack([self._last[tid].point for tid, k in zip(ids, known, strict=True) if k])
            crossed[known] = self.line.crossings(prev, points[known])
        sides = self.line.side(points)
        for i, tid in enumerate(ids):
            last = self._last.get(tid)
            if sides[i] != 0:
                self._last[tid] = _Last(points[i], t)
            elif last is not None:
                last.seen = t
        hits = rows[np.isin(crossed, self._wanted)]
        return subject_violations(self.key, self.type, None, det, hits, tracked=True)
