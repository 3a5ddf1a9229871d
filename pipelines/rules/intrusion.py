"""`intrusion`: a person (or another configured label) inside a forbidden zone.

Each object in a zone is its own condition (subject `track:<id>`), so two people entering give two incidents; the
incident manager confirms each after `min_seconds`. Untracked rows: see `pipelines.rules.common`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.config.rules import IntrusionRule
from pipelines.rules.base import SingleFrame
from pipelines.rules.common import WatchedZone, ZonePresence


class Intrusion(ZonePresence):
    type = "intrusion"
    needs_every_frame = False
    reads_whole_frame = False
    uses_static_scene = False
    dwell_s = 0.0
    single_frame = SingleFrame()

    def __init__(self, key: str, params: IntrusionRule, zones: Sequence[WatchedZone], *, tracked: bool = True) -> None:
        super().__init__(key, params.labels, zones, min_confidence=params.min_confidence, tracked=tracked)
        self.params = params
