"""Camera schedules: when a camera's rules are active (IANA time zone + weekly windows, over midnight allowed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(value: str) -> int:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if not match or int(match.group(2)) > 59 or int(match.group(1)) * 60 + int(match.group(2)) > 24 * 60:
        raise ValueError(f"expected a time HH:MM between 00:00 and 24:00, got {value!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


class ScheduleWindow(BaseModel):
    """An active period on the listed days; `end` before `start` runs over midnight into the next day."""

    model_config = ConfigDict(extra="forbid")

    days: list[Day] = Field(
        default_factory=lambda: list(DAYS),
        min_length=1,
        title="Days",
        description="Days the window starts on (mon … sun); default every day.",
    )
    start: str = Field(title="Start", description='Local start time "HH:MM" (quote it in YAML).')
    end: str = Field(title="End", description='Local end time "HH:MM", exclusive; "24:00" = midnight.')

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: object) -> object:
        if isinstance(value, str):
            _minutes(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> ScheduleWindow:
        if self.start == "24:00":
            raise ValueError("start must be before 24:00")
        if _minutes(self.start) == _minutes(self.end):
            raise ValueError('start equals end; for the whole day write start: "00:00", end: "24:00"')
        return self

    def contains(self, weekday: int, seconds: float) -> bool:
        """Active on local `weekday` (0 = Monday) at `seconds` after local midnight."""
        start, end = _minutes(self.start) * 60, _minutes(self.end) * 60
        if start < end:
            return DAYS[weekday] in self.days and start <= seconds < end
        return (DAYS[weekday] in self.days and seconds >= start) or (DAYS[weekday - 1] in self.days and seconds < end)


class Schedule(BaseModel):
    """When the camera's rules are active. No schedule at all = always active."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(title="Time zone", description="IANA time zone name, e.g. Asia/Shanghai.")
    windows: list[ScheduleWindow] = Field(min_length=1, title="Windows", description="Active windows (any matches).")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Asia/Shanghai, UTC)") from None
        return value

    def is_active(self, when: datetime | float) -> bool:
        """Whether `when` (aware datetime; naive = UTC; or unix seconds) falls in any window."""
        if isinstance(when, int | float):
            when = datetime.fromtimestamp(when, UTC)
        elif when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        local = when.astimezone(ZoneInfo(self.timezone))
        seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return any(w.contains(local.weekday(), seconds) for w in self.windows)
