"""What every rule consumes and produces.

A rule looks at one analysed frame (`FrameContext`: the frame, its tracked `Detections`, the camera's zones and the
static-scene state) and returns the `Violation`s that hold *now*, after its own rule-specific time logic (dwell,
k-of-n persistence, line crossing). Confirmation over `min_seconds`, clearing, cooldown and de-duplication are the
incident manager's job (pipelines/incidents/manager.py), the same for every rule.

What the rest of the system must know about a rule is declared on the rule (`Rule`'s facts, `SingleFrame`), so the
pipeline, the worker and the single-image check read it there instead of testing rule types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
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


@dataclass(frozen=True, slots=True)
class SingleFrame:
    """What a rule type does on one still image (no tracker, no time): whether it can be evaluated at all, the
    config fields that lose their time logic (`still`: field → value), and what the per-rule report says."""

    evaluated: bool = True
    still: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    note: str | None = None


class Rule(Protocol):
    """A configured rule instance on one camera (stateful across frames), with the facts others need about it."""

    key: str
    type: str
    required_labels: frozenset[str]

    @property
    def needs_every_frame(self) -> bool:
        """True when the rule must see every analysed frame (the camera then runs without the motion gate)."""
        ...

    @property
    def reads_whole_frame(self) -> bool:
        """True when the rule judges whole frames rather than objects (smoke has no clean box): the models serving
        it never run on motion-region crops."""
        ...

    @property
    def uses_static_scene(self) -> bool:
        """True when the rule reads `FrameContext.static_mask` (the pipeline then runs the static-scene model)."""
        ...

    @property
    def dwell_s(self) -> float:
        """How long a condition must hold before the rule reports it (0: at once); a restarted rule needs that long
        to report a condition that already held (the static-scene model's own warm-up comes on top)."""
        ...

    def evaluate(self, ctx: FrameContext) -> list[Violation]: ...

    def reset(self) -> None:
        """Forget every time-dependent state (dwell timers, windows, last positions)."""
        ...
