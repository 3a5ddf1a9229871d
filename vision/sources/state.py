"""Explicit source states, transitions and counters, shared between a capture thread and its readers."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, fields
from enum import StrEnum

log = logging.getLogger(__name__)


class SourceState(StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    FAILED = "failed"


TERMINAL_STATES = frozenset({SourceState.STOPPED, SourceState.FAILED})


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition: the new state, the Unix time it happened and why."""

    state: SourceState
    at: float
    reason: str = ""

    def as_dict(self) -> dict[str, str | float]:
        out: dict[str, str | float] = {"state": self.state.value, "at": round(self.at, 3)}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class SourceStats:
    """Counters since the source was opened.

    `frames_kept` counts frames selected at the analysis rate; `frames_dropped` counts kept frames that were
    discarded because the consumer was too slow (the oldest queued frame goes first). `reconnects` counts
    successful re-opens after a disconnect; `connect_attempts` counts every open attempt, the first included.
    """

    frames_decoded: int = 0
    frames_kept: int = 0
    frames_dropped: int = 0
    packets: int = 0
    decode_errors: int = 0
    reconnects: int = 0
    connect_attempts: int = 0


class StatusTracker:
    """Thread-safe state machine + counters. `wait()` lets readers block until something changes."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._counts: dict[str, int] = {f.name: 0 for f in fields(SourceStats)}
        self._changes: list[StateChange] = []
        self._state = SourceState.CONNECTING
        self._error: BaseException | None = None
        self.set_state(SourceState.CONNECTING)

    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def error(self) -> BaseException | None:
        """The error that made the source fail (state FAILED), else None."""
        return self._error

    @property
    def changes(self) -> list[StateChange]:
        with self._cond:
            return list(self._changes)

    def stats(self) -> SourceStats:
        with self._cond:
            return SourceStats(**self._counts)

    def count(self, counter: str, n: int = 1) -> None:
        with self._cond:
            self._counts[counter] += n

    def set_state(self, state: SourceState, reason: str = "", error: BaseException | None = None) -> None:
        with self._cond:
            if self._changes and state == self._state:
                return
            if self._state in TERMINAL_STATES and self._changes:
                return
            self._state = state
            if error is not None:
                self._error = error
            self._changes.append(StateChange(state, time.time(), reason))
            self._cond.notify_all()
        log.info(
            "source %s: %s%s",
            self._name,
            state.value,
            f" ({reason})" if reason else "",
            extra={"source": self._name, "state": state.value, "reason": reason},
        )

    def wait_for(self, states: set[SourceState], timeout: float | None) -> bool:
        """Block until the state is one of `states` (or terminal); True if it is in `states`."""
        with self._cond:
            self._cond.wait_for(lambda: self._state in states or self._state in TERMINAL_STATES, timeout)
            return self._state in states
