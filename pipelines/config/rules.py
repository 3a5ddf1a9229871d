"""Parameter schemas of the rules, as written under `rules:` in camera_configs/*.yaml.

One pydantic class per rule type, each with a `type: Literal[...]` discriminator; `RuleConfig` is the discriminated
union the camera config uses, `RULE_TYPES` the tuple of all type names. The rule implementations (one module per
rule in this package) read their parameters from these classes.

Timing fields shared by every rule:
- `min_seconds`: the condition must hold this long before an incident opens (confirmation time);
- `clear_seconds`: the condition must be absent this long before an open incident closes;
- `cooldown_seconds`: after an incident closes, the same rule + zone does not open a new one for this long.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.events import Severity
from vision.geometry import Anchor

Coordinate = Annotated[float, Field(ge=0.0, le=1.0, description="Normalised coordinate in [0, 1]")]
NormalisedPoint = tuple[Coordinate, Coordinate]

_VEHICLES = ["car", "truck", "bus", "motorcycle", "bicycle", "e_bike"]
_CONFIRM = "Seconds the condition must hold before an incident opens."
_AFTER_DWELL = "Extra confirmation time after `dwell_seconds` has elapsed."


def _seconds(default: float, description: str, title: str, *, le: float = 3600) -> Any:
    return Field(default=default, ge=0, le=le, title=title, description=description)


def _confirm(default: float, description: str = _CONFIRM) -> Any:
    return _seconds(default, description, "Confirm time (s)")


def _labels(default: list[str]) -> Any:
    return Field(
        default_factory=lambda: list(default),
        min_length=1,
        title="Labels",
        description=f"Semantic labels (from the model cards) this rule reacts to. Default: {default}.",
    )


class _RuleBase(BaseModel):
    """Fields common to every rule."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    #: Zone rules must name at least one zone; the others treat an empty list as "the whole frame".
    zones_required: ClassVar[bool] = False

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        title="Name",
        description="Optional display name, to tell apart two rules of the same type on one camera.",
    )
    zones: list[str] = Field(
        default_factory=list,
        validate_default=True,
        title="Zones",
        description="Names of the camera's zones this rule watches. Required for zone rules (exit_blocked, "
        "ebike_indoor, intrusion, loitering); optional for no_helmet and smoke_fire, where an empty list means the "
        "whole frame; not used by line_crossing.",
    )
    min_seconds: float = _confirm(2.0)
    clear_seconds: float = _seconds(10.0, "Seconds without the condition before an open incident closes.", "Clear (s)")
    cooldown_seconds: float = _seconds(
        60.0,
        "After an incident closes, seconds before the same rule and zone may open a new one.",
        "Cooldown (s)",
        le=86400,
    )
    severity: Severity = Field(default=Severity.warning, title="Severity", description="Severity of the incidents.")
    enabled: bool = Field(default=True, title="Enabled", description="Set false to keep the rule but not run it.")
    min_confidence: float | None = Field(
        default=None,
        gt=0,
        le=1,
        title="Minimum confidence",
        description="Overrides the detector's per-label confidence threshold for this rule; unset = model default.",
    )

    @field_validator("zones")
    @classmethod
    def _check_zones(cls, zones: list[str]) -> list[str]:
        if cls.zones_required and not zones:
            raise ValueError("this rule needs at least one zone name")
        if len(set(zones)) != len(zones):
            raise ValueError(f"a zone is listed twice: {zones}")
        return zones


class NoHelmetRule(_RuleBase):
    """A person in the zone (or the whole frame) without a hard hat."""

    type: Literal["no_helmet"] = Field(description="Rule type.")
    labels: list[str] = _labels(["person"])
    min_seconds: float = _confirm(3.0)
    head_fraction: float = Field(
        default=0.3,
        ge=0.1,
        le=0.6,
        title="Head fraction",
        description="Top fraction of the person box treated as the head region where a helmet must be found.",
    )
    head_slack: float = Field(
        default=0.2,
        ge=0,
        le=1,
        title="Head slack",
        description="Horizontal slack of the head region, as a fraction of the person box width on each side.",
    )
    helmet_labels: list[str] = Field(
        default_factory=lambda: ["helmet"],
        min_length=1,
        title="Helmet labels",
        description="Labels of head boxes that show a hard hat (evidence of compliance).",
    )
    no_helmet_labels: list[str] = Field(
        default_factory=lambda: ["no_helmet"],
        min_length=1,
        title="No-helmet labels",
        description="Labels of head boxes that show a bare head (evidence of a violation); add `head` for models "
        "whose `head` class means a head without a hard hat.",
    )
    missing_evidence: Literal["ignore", "violation"] = Field(
        default="ignore",
        title="Missing evidence",
        description="A person with neither a helmet nor a no-helmet box on the head: ignore (absence of evidence is "
        "not a violation) | violation (for models that only detect helmets).",
    )
    orphan_heads: bool = Field(
        default=True,
        title="Heads without a person",
        description="Also report a no-helmet head box that no person box claims (the person detector missed the "
        "body); its zone membership is tested with the head box centre.",
    )


class ExitBlockedRule(_RuleBase):
    """A fire exit / fire lane occupied by vehicles or static objects."""

    zones_required: ClassVar[bool] = True

    type: Literal["exit_blocked"] = Field(description="Rule type.")
    labels: list[str] = _labels(_VEHICLES)
    min_seconds: float = _confirm(0.0, _AFTER_DWELL)
    clear_seconds: float = _seconds(30.0, "Seconds the zone must be clear before the incident closes.", "Clear (s)")
    severity: Severity = Field(default=Severity.critical, title="Severity", description="Severity of the incidents.")
    dwell_seconds: float = _seconds(
        30.0,
        "Seconds an object (or static region) must stay in the zone before it counts as blocking.",
        "Dwell time (s)",
        le=86400,
    )
    occupancy: float = Field(
        default=0.3,
        gt=0,
        le=1,
        title="Occupancy",
        description="Fraction of the zone's area that must be covered by blocking objects.",
    )
    static_scene: bool = Field(
        default=True,
        title="Static-scene detection",
        description="Also count class-agnostic static objects (long/short background model), not only detections.",
    )
    grace_seconds: float = _seconds(
        10.0,
        "An obstacle missing for less than this (detector dropout, occlusion, new track id on the same box) keeps "
        "its dwell time; the static-scene occupancy may dip for as long.",
        "Grace (s)",
    )
    person_labels: list[str] = Field(
        default_factory=lambda: ["person"],
        title="Person labels",
        description="Labels never counted as obstacles; their boxes are also cut out of the static-scene evidence.",
    )


class EbikeIndoorRule(_RuleBase):
    """An e-bike (or motorcycle) inside an indoor zone: lobby, corridor, lift."""

    zones_required: ClassVar[bool] = True

    type: Literal["ebike_indoor"] = Field(description="Rule type.")
    labels: list[str] = _labels(["e_bike", "motorcycle"])
    min_seconds: float = _confirm(3.0)


class SmokeFireRule(_RuleBase):
    """Smoke or flames, confirmed on k of the last n analysed frames."""

    type: Literal["smoke_fire"] = Field(description="Rule type.")
    labels: list[str] = _labels(["smoke", "fire"])
    min_seconds: float = _confirm(0.0, "Extra confirmation time after the k-of-n vote passed.")
    severity: Severity = Field(default=Severity.critical, title="Severity", description="Severity of the incidents.")
    k: int = Field(default=3, ge=1, le=100, title="k", description="Frames (of the last n) that must show smoke/fire.")
    n: int = Field(default=5, ge=1, le=100, title="n", description="Window of analysed frames for the k-of-n vote.")
    min_area: float = Field(
        default=0.001,
        ge=0,
        le=1,
        title="Minimum area",
        description="Minimum box area as a fraction of the frame area; smaller detections are ignored.",
    )

    @model_validator(mode="after")
    def _k_le_n(self) -> SmokeFireRule:
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) must not exceed n ({self.n})")
        return self


class IntrusionRule(_RuleBase):
    """A person (or other label) inside a forbidden zone."""

    zones_required: ClassVar[bool] = True

    type: Literal["intrusion"] = Field(description="Rule type.")
    labels: list[str] = _labels(["person"])
    min_seconds: float = _confirm(1.0)


class LoiteringRule(_RuleBase):
    """One tracked object staying in a zone longer than `dwell_seconds`."""

    zones_required: ClassVar[bool] = True

    type: Literal["loitering"] = Field(description="Rule type.")
    labels: list[str] = _labels(["person"])
    min_seconds: float = _confirm(0.0, _AFTER_DWELL)
    dwell_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        title="Dwell time (s)",
        description="Seconds one track must stay in the zone before it counts as loitering.",
    )
    grace_seconds: float = _seconds(
        3.0,
        "A track out of the zone (or not detected) for less than this keeps its dwell time (boundary flicker, "
        "brief occlusion).",
        "Grace (s)",
    )


class LineCrossingRule(_RuleBase):
    """A tracked object's anchor crossing a line segment.

    Direction convention: the line is directed from `line[0]` (A) to `line[1]` (B). `in` is a crossing from the
    left-hand side to the right-hand side of A→B as seen on screen (image y grows downwards), i.e. from
    cross(B−A, P−A) < 0 to > 0; `out` is the reverse. For a horizontal line drawn left to right, `in` means moving
    down the image; for a vertical line drawn top to bottom, `in` means moving right to left.
    """

    type: Literal["line_crossing"] = Field(description="Rule type.")
    labels: list[str] = _labels(["person"])
    min_seconds: float = _confirm(0.0, "Crossings are instantaneous; keep 0.")
    line: tuple[NormalisedPoint, NormalisedPoint] = Field(
        title="Line",
        description="Two distinct normalised points [[x1, y1], [x2, y2]], directed from the first (A) to the second "
        "(B).",
    )
    direction: Literal["any", "in", "out"] = Field(
        default="any",
        title="Direction",
        description="any | in (from the left-hand to the right-hand side of A→B on screen; downwards for a "
        "left-to-right horizontal line) | out (the reverse).",
    )
    anchor: Literal[Anchor.BOTTOM_CENTER, Anchor.CENTER] = Field(
        default=Anchor.BOTTOM_CENTER,
        title="Anchor",
        description="Point of the box that must cross the line: bottom_center (feet, wheels) | center.",
    )

    @field_validator("zones")
    @classmethod
    def _no_zones(cls, zones: list[str]) -> list[str]:
        if zones:
            raise ValueError("line_crossing uses 'line', not 'zones'")
        return zones

    @field_validator("line")
    @classmethod
    def _distinct(cls, line: tuple[NormalisedPoint, NormalisedPoint]) -> tuple[NormalisedPoint, NormalisedPoint]:
        (x1, y1), (x2, y2) = line
        if abs(x1 - x2) < 1e-6 and abs(y1 - y2) < 1e-6:
            raise ValueError("the two points of 'line' are identical")
        return line


RuleConfig = Annotated[
    NoHelmetRule | ExitBlockedRule | EbikeIndoorRule | SmokeFireRule | IntrusionRule | LoiteringRule | LineCrossingRule,
    Field(discriminator="type"),
]

RULE_TYPES: tuple[str, ...] = (
    "no_helmet",
    "exit_blocked",
    "ebike_indoor",
    "smoke_fire",
    "intrusion",
    "loitering",
    "line_crossing",
)
