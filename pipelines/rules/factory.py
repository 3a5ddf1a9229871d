"""Rule instances, incident timings and model/label requirements from a `CameraConfig`.

Rule keys (the incident manager's `rule_key`, part of every incident key) are stable across restarts and config
edits: the rule's `name` when it is set and unique on the camera, else `"<index>:<type>"` (index in `rules:`,
disabled rules included, so enabling or disabling one rule does not rename the others). Disabled rules
(`enabled: false`) are not built and have no timing.

Labels: each rule declares `LabelNeed`s — groups of labels of which at least one must be produced by some model
(`required`), or which it uses when available (`required=False`, e.g. person boxes that exit_blocked cuts out of
the static-scene evidence). `check_label_coverage` turns unmet required needs into config errors (a no_helmet rule
without a helmet model would otherwise be a silent no-op); `select_models` picks the fewest models covering every
need some model can meet, unless the camera names its `models:`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pipelines.config.camera import CameraConfig
from pipelines.config.rules import (
    EbikeIndoorRule,
    ExitBlockedRule,
    IntrusionRule,
    LineCrossingRule,
    LoiteringRule,
    NoHelmetRule,
    RuleConfig,
    SmokeFireRule,
)
from pipelines.rules.base import FrameContext, Rule, RuleTiming, SingleFrame, Violation
from pipelines.rules.common import watched_zones
from pipelines.rules.ebike_indoor import EbikeIndoor
from pipelines.rules.exit_blocked import ExitBlocked
from pipelines.rules.head_crops import CropModel, HeadCropConfig, HeadCrops
from pipelines.rules.intrusion import Intrusion
from pipelines.rules.line_crossing import LineCrossing
from pipelines.rules.loitering import Loitering
from pipelines.rules.no_helmet import NoHelmet
from pipelines.rules.smoke_fire import SmokeFire
from vision.detect.crop_batch import CropBatchDetector, CropSizing
from vision.detect.detector import DetectorOptions
from vision.detect.registry import ModelRegistry

log = logging.getLogger(__name__)

_EXHAUSTIVE_MAX_MODELS = 12


@dataclass(frozen=True, slots=True)
class LabelNeed:
    """At least one of `one_of` must come from some model (`required`), or is used when some model provides it."""

    rule_index: int
    rule_type: str
    one_of: frozenset[str]
    required: bool
    purpose: str


def rule_keys(camera: CameraConfig) -> list[tuple[int, RuleConfig, str]]:
    """(index, params, rule_key) of the camera's enabled rules, in config order."""
    names = [r.name for r in camera.rules if r.name]
    out = []
    for i, rule in enumerate(camera.rules):
        if not rule.enabled:
            continue
        unique = rule.name is not None and names.count(rule.name) == 1 and ":" not in rule.name
        out.append((i, rule, rule.name if unique and rule.name else f"{i}:{rule.type}"))
    return out


@dataclass(frozen=True, slots=True)
class HeadModel:
    """The helmet model of a camera's no_helmet rules, run on upper-body crops of people instead of whole frames
    (`head_model`): `labels` it provides, at most one crop run per `interval_s` (its `model_fps`)."""

    name: str
    detector: CropModel
    labels: frozenset[str]
    interval_s: float
    recheck_s: float = 5.0

    def crops_for(self, params: NoHelmetRule) -> HeadCrops | None:
        if not self.labels & set(params.no_helmet_labels):
            return None
        config = HeadCropConfig(interval_s=self.interval_s, recheck_s=self.recheck_s)
        return HeadCrops(self.detector, config, head_fraction=params.head_fraction, slack=params.head_slack,
                         min_confidence=params.min_confidence)  # fmt: skip


def build_rule(
    key: str, params: RuleConfig, camera: CameraConfig, *, tracked: bool = True, heads: HeadModel | None = None
) -> Rule:
    """One rule instance. `tracked=False` when no tracker runs (single images): see pipelines.rules.common.
    `heads`: no_helmet rules take their head evidence from this model on crops (else from the frame's detections)."""
    zones = watched_zones(camera.zones, params.zones)
    match params:
        case NoHelmetRule():
            crops = heads.crops_for(params) if heads is not None else None
            return NoHelmet(key, params, zones, tracked=tracked, crops=crops)
        case ExitBlockedRule():
            return ExitBlocked(key, params, zones)
        case EbikeIndoorRule():
            return EbikeIndoor(key, params, zones, tracked=tracked)
        case SmokeFireRule():
            return SmokeFire(key, params, zones)
        case IntrusionRule():
            return Intrusion(key, params, zones, tracked=tracked)
        case LoiteringRule():
            return Loitering(key, params, zones, tracked=tracked)
        case LineCrossingRule():
            return LineCrossing(key, params, tracked=tracked)
    raise TypeError(f"unknown rule parameters {type(params).__name__}")  # pragma: no cover


_SINGLE_FRAME: dict[str, SingleFrame] = {
    cls.type: cls.single_frame
    for cls in (NoHelmet, ExitBlocked, EbikeIndoor, SmokeFire, Intrusion, Loitering, LineCrossing)
}


def single_frame_facts(params: RuleConfig) -> SingleFrame:
    """What the rule type of `params` does on one still image (declared on the rule class)."""
    return _SINGLE_FRAME[params.type]


def build_rules(camera: CameraConfig, *, tracked: bool = True, heads: HeadModel | None = None) -> list[Rule]:
    """The camera's enabled rules, in config order, each with its stable `key`."""
    return [build_rule(key, params, camera, tracked=tracked, heads=heads) for _, params, key in rule_keys(camera)]


def rule_timings(camera: CameraConfig) -> dict[str, RuleTiming]:
    """The IncidentManager's timings, by rule key."""
    return {
        key: RuleTiming(
            rule=params.type,
            min_seconds=params.min_seconds,
            clear_seconds=params.clear_seconds,
            cooldown_seconds=params.cooldown_seconds,
            severity=params.severity,
        )
        for _, params, key in rule_keys(camera)
    }


class CameraRules:
    """The rules of one camera with its schedule applied: the pipeline calls `evaluate` on every analysed frame.

    Outside the schedule (`CameraConfig.is_active(frame.wall_time)` false) no rule runs and nothing is reported, so
    open incidents close after their clear_seconds; on the way out every rule's state (dwell timers, k-of-n windows,
    last positions) is reset, so time spent in a zone while inactive never counts.
    """

    def __init__(self, camera: CameraConfig, *, tracked: bool = True, heads: HeadModel | None = None) -> None:
        self.camera = camera
        self.rules = build_rules(camera, tracked=tracked, heads=heads)
        self.timings = rule_timings(camera)
        self._active = True

    def is_active(self, when: datetime | float) -> bool:
        return self.camera.is_active(when)

    def evaluate(self, ctx: FrameContext) -> list[Violation]:
        active = self.camera.is_active(ctx.frame.wall_time)
        if not active:
            if self._active:
                self.reset()
            self._active = False
            return []
        self._active = True
        out: list[Violation] = []
        for rule in self.rules:
            out += rule.evaluate(ctx)
        return out

    def reset(self) -> None:
        for rule in self.rules:
            rule.reset()


# ---------------------------------------------------------------- labels and models


def _needs_of(index: int, rule: RuleConfig) -> list[LabelNeed]:
    def need(labels: Iterable[str], required: bool, purpose: str) -> LabelNeed:
        return LabelNeed(index, rule.type, frozenset(labels), required, purpose)

    match rule:
        case NoHelmetRule():
            if rule.missing_evidence == "violation":
                return [
                    need(rule.labels, True, "people"),
                    need(rule.helmet_labels + rule.no_helmet_labels, True, "head evidence"),
                ]
            return [
                need(rule.no_helmet_labels, True, "bare heads"),
                need(rule.labels, not rule.orphan_heads, "people"),
                need(rule.helmet_labels, False, "helmets"),
            ]
        case ExitBlockedRule():
            needs = [need(rule.labels, not rule.static_scene, "obstacles")]
            if rule.static_scene and rule.person_labels:
                needs.append(need(rule.person_labels, False, "people to cut out of the static-scene evidence"))
            return needs
        case _:
            return [need(rule.labels, True, "objects")]


def label_needs(camera: CameraConfig) -> list[LabelNeed]:
    """Label needs of the camera's enabled rules."""
    return [n for i, params, _ in rule_keys(camera) for n in _needs_of(i, params)]


def required_labels(camera: CameraConfig) -> set[str]:
    """Every label the camera's enabled rules look at (required or used when available)."""
    return {label for n in label_needs(camera) for label in n.one_of}


def _covers(provided: Mapping[str, set[str]], need: LabelNeed) -> list[str]:
    return [name for name, labels in provided.items() if need.one_of & labels]


def _hint(
    need: LabelNeed, camera: CameraConfig, buildable: Mapping[str, set[str]], all_provided: Mapping[str, set[str]]
) -> str:
    excluded = _covers(all_provided, need)
    if camera.models is not None and excluded:
        return f"add {excluded[0]!r} to the camera's models: list"
    makers = _covers(buildable, need)
    if makers:
        return f"build the {makers[0]} model with `safewatch models build {makers[0]}`"
    return "no model card provides it: import a model with `safewatch models import`, or change the rule's labels"


def check_label_coverage(
    camera: CameraConfig, provided: Mapping[str, set[str]], *, buildable: Mapping[str, set[str]] | None = None
) -> list[str]:
    """Problems (empty = fine) where a rule needs a label no available model provides.

    `provided` maps each available (built) model name to its labels (`model_labels(registry)`); `buildable`
    optionally maps models that have a card but are not built yet, to name the build command in the message.
    With the camera's `models:` set, only those models count, and each must be in `provided`.
    """
    problems: list[str] = []
    available: Mapping[str, set[str]] = provided
    if camera.models is not None:
        unknown = [m for m in camera.models if m not in provided]
        for name in unknown:
            known = ", ".join(sorted(provided)) or "none"
            hint = f"; build it with `safewatch models build {name}`" if buildable and name in buildable else ""
            problems.append(f"models: model {name!r} is not available (available: {known}){hint}")
        available = {m: provided[m] for m in camera.models if m in provided}
    for need in label_needs(camera):
        if need.required and not _covers(available, need):
            hint = _hint(need, camera, buildable or {}, provided)
            labels = "{" + ", ".join(sorted(need.one_of)) + "}"
            problems.append(
                f"rules.{need.rule_index} ({need.rule_type}): needs one of {labels} ({need.purpose}) "
                f"but no model provides it; {hint}"
            )
    return problems


def select_models(camera: CameraConfig, provided: Mapping[str, set[str]]) -> list[str]:
    """The models to run: the camera's `models:` when set, else the fewest models (in `provided` order on ties)
    that together meet every label need some model can meet. Unmet needs are `check_label_coverage`'s business."""
    if camera.models is not None:
        return list(camera.models)
    groups = {n.one_of for n in label_needs(camera) if _covers(provided, n)}
    if not groups:
        return []
    names = [n for n in provided if any(g & provided[n] for g in groups)]

    def covers(chosen: Iterable[str]) -> bool:
        labels = set().union(*(provided[n] for n in chosen))
        return all(g & labels for g in groups)

    if len(names) <= _EXHAUSTIVE_MAX_MODELS:
        for size in range(1, len(names) + 1):
            for combo in itertools.combinations(names, size):
                if covers(combo):
                    return list(combo)
    chosen: list[str] = []  # greedy set cover for very large registries
    left = set(groups)
    while left:
        best = max(names, key=lambda n: sum(1 for g in left if g & provided[n]))
        chosen.append(best)
        left = {g for g in left if not g & provided[best]}
    return chosen


def model_labels(registry: ModelRegistry, *, built: bool | None = True) -> dict[str, set[str]]:
    """Model name → labels, default models first: built ones (`built=True`), unbuilt ones (False), or all (None).
    Precision variants are not models of their own (the registry runs them in their base model's place)."""
    names = [n for n, c in registry.cards.items() if c.variant_of is None]
    names.sort(key=lambda n: (not registry.cards[n].default, n))
    return {n: set(registry.cards[n].provides) for n in names if built is None or registry.is_built(n) == built}


def crop_model_name(camera: CameraConfig, provided: Mapping[str, set[str]]) -> str | None:
    """Of the camera's models (`provided`: name → labels), the one its no_helmet rules can run on upper-body crops
    of people rather than on whole frames, or None: it provides their bare-head labels and serves nothing else (no
    other rule's labels, not their people), and another of the models provides their people."""
    rules = [p for _, p, _ in rule_keys(camera) if isinstance(p, NoHelmetRule)]
    if not rules:
        return None
    people = {label for r in rules for label in r.labels}
    others = {label for n in label_needs(camera) if n.rule_type != NoHelmet.type for label in n.one_of}
    bare = {label for r in rules for label in r.no_helmet_labels}
    for name, labels in provided.items():
        if not labels & bare or labels & (people | others):
            continue
        if all(any(set(r.labels) & provided[m] for m in provided if m != name) for r in rules):
            return name
    return None


def head_model(
    camera: CameraConfig,
    names: Sequence[str],
    registry: ModelRegistry,
    options: DetectorOptions | None = None,
    *,
    sizing: CropSizing | None = None,
) -> HeadModel | None:
    """The `HeadModel` for the camera's no_helmet rules among its models `names` (`crop_model_name`), or None —
    also when the model's session runs on an accelerator, where a whole frame costs little (the whole-frame path).
    The composition root leaves it out of the frame's detectors and passes it to `CameraRules(..., heads=...)`."""
    name = crop_model_name(camera, {n: set(registry.card(n).provides) for n in names})
    if name is None:
        return None
    frame_detector = registry.detector(name, options)
    if any(p != "CPUExecutionProvider" for p in frame_detector.providers):
        return None
    detector = CropBatchDetector(frame_detector, sizing or CropSizing(min_crop=camera.detect.head_crop_px))
    interval = 1.0 / camera.model_fps.get(name, camera.analysis_fps)
    return HeadModel(name, detector, frozenset(registry.card(name).provides), interval)
