"""Which clip windows an incident gets: pre-roll before the start, post-roll after the close, `max_clip_s` at most.

Pure and clock-free: the caller feeds it media (or wall) seconds. Long incidents are split into consecutive
`max_clip_s` windows (`long_incident: split`) or get only their first window (`start_only`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vision.media.config import ClipConfig

_CLIP_NAME = re.compile(r"clip-(\d{3,})\.mp4")


def clip_filename(index: int) -> str:
    """The file name of an incident's clip number `index`: clip-000.mp4, clip-001.mp4, ..."""
    return f"clip-{index:03d}.mp4"


def clip_index(name: str) -> int | None:
    """The index of a clip file name (`clip_filename`'s inverse); None for any other name."""
    match = _CLIP_NAME.fullmatch(name)
    if match is None:
        return None
    index = int(match.group(1))
    return index if clip_filename(index) == name else None


@dataclass(frozen=True, slots=True)
class ClipWindow:
    """Seconds [start_s, end_s] of one clip of an incident; `index` numbers the clips (clip-000.mp4, ...)."""

    index: int
    start_s: float
    end_s: float

    @property
    def filename(self) -> str:
        return clip_filename(self.index)


class ClipPlanner:
    """The clip windows of one incident, handed out as soon as each window's end is known.

    - `poll(now_s)` while the incident is open: the full `max_clip_s` windows that `now_s` has passed.
    - `close(end_s)` when it closes: the remaining window(s) up to `end_s + post_roll_s`.
    Each window is returned once; submit each to a `ClipWriter` (it waits for the packets up to the window end).
    """

    def __init__(self, start_s: float, config: ClipConfig) -> None:
        self._cfg = config
        self._next_start = start_s - config.pre_roll_s
        self._next_index = 0
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def _take(self, end_s: float) -> ClipWindow:
        window = ClipWindow(self._next_index, self._next_start, end_s)
        self._next_index += 1
        self._next_start = end_s
        if self._cfg.long_incident == "start_only":
            self._done = True
        return window

    def poll(self, now_s: float) -> list[ClipWindow]:
        out: list[ClipWindow] = []
        while not self._done and now_s >= self._next_start + self._cfg.max_clip_s:
            out.append(self._take(self._next_start + self._cfg.max_clip_s))
        return out

    def close(self, end_s: float) -> list[ClipWindow]:
        """The windows left once the incident closed at `end_s`; the planner is done afterwards."""
        final_end = end_s + self._cfg.post_roll_s
        out: list[ClipWindow] = []
        while not self._done and self._next_start < final_end:
            out.append(self._take(min(final_end, self._next_start + self._cfg.max_clip_s)))
        self._done = True
        return out
