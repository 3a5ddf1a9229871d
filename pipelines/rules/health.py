"""The camera health rules of a camera's `health:` block (pipelines/config/health.py): camera_offline, camera_tamper.

They report `Violation`s like any rule and their incidents go through the same manager, but they are not in the
camera's `rules:` list and are driven differently, so `HealthChecks` is handed to the pipeline next to its rules:

- `CameraOffline` is driven by the frame loop's clock (monotonic seconds), not by frames: `idle(at)` on every poll of
  the source that returned no frame, `frame(at)` on every frame. No frame for `offline_after_s` makes the camera
  *down*; it is up again once frames have flowed (no gap over `FLOW_GAP_S`) for `offline_clear_s`. While down every
  call reports the condition, so the incident (opened at once, closed at the first call without it) spans exactly
  the outage. Only `idle` can bring a camera down: a file replayed faster or slower than real time never polls empty.
- `CameraTamper` is a rule on analysed frames: `vision.health.tamper.TamperDetector` reads the view about once a
  second; a tampered reading that persists for `tamper_after_s` (one healthy reading in a run is bridged) is reported
  until the view is back. Its snapshot is the reference view and the current frame side by side (`evidence_image`).

Rule keys are `health:<type>`: a `:` never occurs in the key of a `rules:` entry that has a name, and index keys
start with a digit, so they cannot collide. Health rules ignore the camera's schedule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import ClassVar

from pipelines.config.health import CAMERA_OFFLINE, CAMERA_TAMPER, HealthConfig
from pipelines.rules.base import FrameContext, RuleTiming, SingleFrame, Violation
from vision.health.tamper import TamperDetector, TamperReason
from vision.health.views import side_by_side
from vision.types import Frame, ImageArray

#: A gap between two frames longer than this restarts the "frames flow again" timer of an offline camera.
FLOW_GAP_S = 2.0
#: The reason labels of camera_offline incidents: no frames from the stream / no worker holds the camera (API side).
NO_FRAMES = "no_frames"
NO_WORKER = "no_worker"


def health_key(rule_type: str) -> str:
    return f"health:{rule_type}"


class CameraOffline:
    """No frame for `offline_after_s` (module docs). Times are monotonic seconds of the frame loop."""

    type = CAMERA_OFFLINE

    def __init__(self, config: HealthConfig) -> None:
        self.key = health_key(self.type)
        self.after_s = config.offline_after_s
        self.clear_s = config.offline_clear_s
        self.last_frame_at: float | None = None
        self.down = False
        self._started_at: float | None = None
        self._flowing_since: float | None = None

    def start(self, at: float) -> None:
        """The frame loop starts: time without a frame counts from here until the first one."""
        self._started_at = at
        self._flowing_since = None

    def idle(self, at: float) -> list[Violation]:
        since = self.last_frame_at if self.last_frame_at is not None else self._started_at
        if since is None:
            self._started_at = since = at
        if at - since >= self.after_s:
            self.down = True
            self._flowing_since = None
        return self._report()

    def frame(self, at: float) -> list[Violation]:
        if self.down:
            gap = at - self.last_frame_at if self.last_frame_at is not None else float("inf")
            if self._flowing_since is None or gap > FLOW_GAP_S:
                self._flowing_since = at
            if at - self._flowing_since >= self.clear_s:
                self.down = False
        self.last_frame_at = at
        return self._report()

    def _report(self) -> list[Violation]:
        return [Violation(self.key, self.type, None, None, (), (NO_FRAMES,), 1.0)] if self.down else []


class CameraTamper:
    """Covered, defocused or moved for `tamper_after_s` (module docs); time is the frames' media time."""

    type = CAMERA_TAMPER
    required_labels: frozenset[str] = frozenset()
    needs_every_frame = False
    uses_static_scene = False
    single_frame: ClassVar[SingleFrame] = SingleFrame(evaluated=False, note="needs a video stream")

    def __init__(self, config: HealthConfig) -> None:
        self.key = health_key(self.type)
        self.after_s = config.tamper_after_s
        self.detector = TamperDetector(config.tamper_thresholds)
        self._run_start: float | None = None
        self._healthy_in_row = 0
        self._reasons: Counter[TamperReason] = Counter()
        self._score = 0.0
        self._reference: ImageArray | None = None  # a recent frame of the healthy view (for the snapshot)
        self._previous: ImageArray | None = None
        self._reference_at = float("-inf")

    @property
    def dwell_s(self) -> float:
        return self.after_s

    def evaluate(self, ctx: FrameContext) -> list[Violation]:
        frame = ctx.frame
        reading = self.detector.check(frame.image, frame.pts)
        if reading is not None:
            if reading.reason is None:
                self._healthy(frame)
            else:
                self._healthy_in_row = 0
                if self._run_start is None:
                    self._run_start = frame.pts
                self._reasons[reading.reason] += 1
                self._score = max(self._score, reading.score)
        if self._run_start is None or frame.pts - self._run_start < self.after_s:
            return []
        reason = self._reasons.most_common(1)[0][0].value
        return [Violation(self.key, self.type, None, None, (), (reason,), round(self._score, 3))]

    def _healthy(self, frame: Frame) -> None:
        self._healthy_in_row += 1
        if self._healthy_in_row >= 2:  # one healthy reading inside a run is bridged
            self._run_start, self._score = None, 0.0
            self._reasons.clear()
        if self._healthy_in_row >= 2 and frame.pts - self._reference_at >= 5.0:
            # the snapshot's reference: a healthy frame at least one period before the latest one
            self._reference, self._previous, self._reference_at = self._previous, frame.image, frame.pts

    def evidence_image(self, frame: Frame) -> ImageArray:
        """The reference view (left) and `frame` (right), for the incident's snapshot."""
        reference = self._reference if self._reference is not None else self._previous
        return side_by_side(reference, frame.image)

    def reset(self) -> None:
        self.detector.reset()
        self._run_start, self._healthy_in_row, self._score = None, 0, 0.0
        self._reasons.clear()
        self._reference = self._previous = None
        self._reference_at = float("-inf")


class HealthChecks:
    """A camera's enabled health rules, their incident timings and evidence needs (see module docs)."""

    #: rule types whose evidence is a snapshot only (an offline camera has no new video to cut a clip from)
    CLIPLESS: ClassVar[frozenset[str]] = frozenset({CAMERA_OFFLINE})

    def __init__(self, config: HealthConfig) -> None:
        self.config = config
        self.offline = CameraOffline(config) if config.offline_on else None
        self.tamper = CameraTamper(config) if config.tamper_on else None
        self.timings: dict[str, RuleTiming] = {}
        if self.offline is not None:  # the rule itself waits and clears: the manager opens and closes at once
            self.timings[self.offline.key] = RuleTiming(CAMERA_OFFLINE, 0.0, 0.0, 0.0, config.offline_severity)
        if self.tamper is not None:
            self.timings[self.tamper.key] = RuleTiming(
                CAMERA_TAMPER, 0.0, config.tamper_clear_s, 0.0, config.tamper_severity
            )

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self.timings)

    @property
    def idle_keys(self) -> frozenset[str]:
        """The rule keys a poll without a frame judges (camera_offline; a tamper incident waits for frames)."""
        return frozenset({self.offline.key}) if self.offline is not None else frozenset()

    def start(self, at: float) -> None:
        if self.offline is not None:
            self.offline.start(at)

    def on_frame(self, ctx: FrameContext, at: float) -> list[Violation]:
        """Violations on an analysed frame received at monotonic time `at`."""
        out = self.offline.frame(at) if self.offline is not None else []
        return out + (self.tamper.evaluate(ctx) if self.tamper is not None else [])

    def on_idle(self, at: float) -> list[Violation]:
        """Violations when the source had no frame (polled at monotonic time `at`)."""
        return self.offline.idle(at) if self.offline is not None else []

    def evidence_images(
        self, frame: Frame, violations: Sequence[Violation]
    ) -> Mapping[tuple[str, str | None, str | None], ImageArray]:
        """Per incident key, the image its snapshot shows instead of the frame (tamper: reference | current)."""
        if self.tamper is None or not any(v.rule_key == self.tamper.key for v in violations):
            return {}
        return {(self.tamper.key, None, None): self.tamper.evidence_image(frame)}

    def warmup_s(self) -> dict[str, float]:
        """How long a restarted camera needs before each health rule can see a condition that already held."""
        out = {}
        if self.offline is not None:
            out[self.offline.key] = self.config.offline_after_s + self.config.offline_clear_s
        if self.tamper is not None:
            out[self.tamper.key] = self.config.tamper_thresholds.learn_s + self.config.tamper_after_s
        return out
