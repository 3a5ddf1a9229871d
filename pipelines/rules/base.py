"""What every rule consumes and produces.

A rule looks at one analysed frame (`FrameContext`: the frame, its tracked `Detections`, the camera's zones and the
static-scene state) and returns the `Violation`s that hold *now*, after its own rule-specific time logic (dwell,
k-of-n persistence, line crossing). Confirmation over `min_seconds`, clearing, cooldown and de-duplication are the
incident manager's job (pipelines/incidents/manager.py), the same for every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pipelines.events import Severity
from vision.types import Detections, Frame


@dataclass(frozen=True, slots=True)
class Violation:
    """One unsafe condition observed on one frame.

    `subject` distinguishes concurrent conditions of one rule in one zone: None for zone-level conditions (a blocked
    exit, smoke in the frame — one incident however many objects), `"track:<id>"` for per-object conditions (one
    intrusion incident per person crossing).
    """

    rule_key: str
    rule: str
    zone: str | None
    subject: str | None
    track_ids: tuple[int, ...]
    labels: tuple[str, ...]
    confidence: float
    evidence: Detections = field(default_factory=Detections.empty)

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """The incident key within one camera: (rule_key, zone, subject)."""
        return (self.rule_key, self.zone, self.subject)


@dataclass(frozen=True, slots=True)
class RuleTiming:
    """Per-rule timing and severity, taken from the rule's config."""

    rule: str
    min_seconds: float = 0.0
    clear_seconds: float = 5.0
    cooldown_seconds: float = 0.0
    severity: Severity = Severity.warning


@dataclass(frozen=True, slots=True)
class FrameContext:
    """Everything a rule may look at for one analysed frame."""

    frame: Frame
    detections: Detections
    static_mask: npt.NDArray[np.bool_] | None = None


class Rule(Protocol):
    """A configured rule instance on one camera (stateful across frames)."""

    key: str
    type: str
    required_labels: frozenset[str]

    def evaluate(self, ctx: FrameContext) -> list[Violation]: ...
