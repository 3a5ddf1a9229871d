"""`ebike_indoor`: an e-bike inside an indoor zone (lobby, corridor, lift).

With a COCO model there is no `e_bike` class; the default labels also accept `motorcycle` (add `bicycle` in the
rule's `labels` if pedal bikes must not come in either). One condition per object and zone (subject `track:<id>`);
untracked rows: see `pipelines.rules.common`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.config.rules import EbikeIndoorRule
from pipelines.rules.base import SingleFrame
from pipelines.rules.common import WatchedZone, ZonePresence


class EbikeIndoor(ZonePresence):
    type = "ebike_indoor"
    needs_every_frame = False
    reads_whole_frame = False
    uses_static_scene = False
    dwell_s = 0.0
    single_frame = SingleFrame()

    def __init__(
        self, key: str, params: EbikeIndoorRule, zones: Sequence[WatchedZone], *, tracked: bool = True
    ) -> None:
        super().__init__(key, params.labels, zones, min_confidence=params.min_confidence, tracked=tracked)
        self.params = params
