"""Replaying labelled clips through the real pipeline and scoring them; parameter overrides and sweeps.

Each clip is replayed with `pipelines.worker.replay.replay` (the code of `safewatch replay`, without evidence) over
the camera of its episodes file; the `opened` events are matched to the episodes (`metrics`).

Parameter addressing (`--sweep PARAM=V1,V2,…`, `override`): PARAM is a dotted path into the camera config as written
in YAML. On a list, a segment is an index (`rules.1.min_seconds`) or selects the entries whose `type` or `name`
equals it (`rules.intrusion.min_seconds`: every intrusion rule; `rules.walkway crossing.direction`: the rule named
so; `zones.fire_lane.min_overlap`). Values are YAML scalars (`0.5`, `full`, `true`). `conf=V` is short for the
`min_confidence` of every rule (a rule-level threshold on the tracked detections: it can raise the model card's
threshold, not lower it). The changed config is validated like a camera file.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.config.camera import CameraConfig
from pipelines.evaluation.episodes import EpisodeSet
from pipelines.evaluation.metrics import Counts, IncidentMatch, Opened, aggregate, match, per_rule
from pipelines.events import EventType, IncidentEvent
from pipelines.worker.replay import ReplayEnd, replay
from vision.detect.registry import ModelRegistry

log = logging.getLogger(__name__)

Override = tuple[str, Any]
ReplayCache = dict[str, tuple[Opened, ...]]


class EvaluationError(Exception):
    """A replay failed, or a parameter override does not fit the camera config."""


@dataclass(frozen=True)
class ClipEvaluation:
    episodes: EpisodeSet
    camera: CameraConfig  # as replayed (overrides applied)
    incidents: tuple[Opened, ...]
    matches: tuple[IncidentMatch, ...]
    counts: dict[str, Counts]


@dataclass(frozen=True)
class Evaluation:
    clips: tuple[ClipEvaluation, ...]
    totals: dict[str, Counts]
    tolerance: float
    overrides: tuple[Override, ...] = ()


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """`PARAM=V1,V2,…` → (PARAM, [values]) (module docs). Raises EvaluationError."""
    param, sep, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not param.strip() or not items:
        raise EvaluationError(f"--sweep {text!r}: expected PARAM=V1,V2,... (e.g. rules.intrusion.min_seconds=0.5,1,2)")
    return param.strip(), [yaml.safe_load(v) for v in items]


def _set(node: Any, parts: Sequence[str], value: Any, path: str) -> int:
    """Set `value` at `parts` below `node`; returns how many places were set."""
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        if head.isdigit():
            chosen = [node[int(head)]] if int(head) < len(node) else []
        else:
            chosen = [e for e in node if isinstance(e, dict) and head in (e.get("type"), e.get("name"))]
        if not rest:
            raise EvaluationError(f"{path}: {head!r} selects list entries; name a field below it")
        return sum(_set(e, rest, value, path) for e in chosen)
    if not isinstance(node, dict):
        raise EvaluationError(f"{path}: {head!r} is below a plain value")
    if not rest:
        node[head] = value
        return 1
    if head not in node:
        raise EvaluationError(f"{path}: no {head!r} in the camera config")
    return _set(node[head], rest, value, path)


def apply_overrides(camera: CameraConfig, overrides: Sequence[Override]) -> CameraConfig:
    """A copy of `camera` with the overrides applied (module docs) and validated. Raises EvaluationError."""
    if not overrides:
        return camera
    data = camera.model_dump(mode="json", exclude_none=True)
    data["streams"]["detect"] = camera.detect_source
    for path, value in overrides:
        parts = ["rules", "*", "min_confidence"] if path == "conf" else path.split(".")
        if parts[1:2] == ["*"]:
            hits = sum(_set(rule, parts[2:], value, path) for rule in data["rules"])
        else:
            hits = _set(data, parts, value, path)
        if hits == 0:
            raise EvaluationError(f"{path}: matches nothing in camera {camera.id}")
    try:
        return CameraConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise EvaluationError(f"{', '.join(p for p, _ in overrides)}: {where}: {first['msg']}") from None


def check_overrides(sets: Sequence[EpisodeSet], variants: Sequence[Sequence[Override]]) -> None:
    """Raise EvaluationError unless every variant of overrides fits every camera (before any replay)."""
    for es in sets:
        for overrides in variants:
            apply_overrides(es.camera, overrides)


def replay_incidents(
    episodes: EpisodeSet, camera: CameraConfig, registry: ModelRegistry, workdir: Path, *, threads: int = 0
) -> tuple[Opened, ...]:
    """Replay the clip with `camera` (as `safewatch replay`, no evidence); the incidents it opened."""
    report = replay(camera, registry, str(episodes.clip), workdir, evidence=False, threads=threads)
    if report.end is not ReplayEnd.done:
        raise EvaluationError(f"{episodes.file}: replay of {episodes.clip} ended {report.end}: {report.error or ''}")
    lines = report.jsonl.read_text(encoding="utf-8").splitlines() if report.jsonl.exists() else []
    events = [IncidentEvent.model_validate_json(line) for line in lines if line.strip()]
    opened = [e for e in events if e.type is EventType.opened and not e.shadow]  # a shadow run's are not its answer
    return tuple(Opened(e.rule, e.zone, e.offset_s, e.id) for e in opened)


def evaluate(
    sets: Sequence[EpisodeSet],
    registry: ModelRegistry,
    *,
    tolerance: float = 2.0,
    overrides: Sequence[Override] = (),
    threads: int = 0,
    cache: ReplayCache | None = None,
    on_clip: Callable[[EpisodeSet], None] | None = None,
) -> Evaluation:
    """Replay and score every episodes file; `cache` (keyed by camera config and clip) skips identical replays.
    Overrides are checked on every camera before the first replay."""
    cameras = [apply_overrides(es.camera, overrides) for es in sets]
    clips = []
    for es, camera in zip(sets, cameras, strict=True):
        if on_clip is not None:
            on_clip(es)
        key = json.dumps([str(es.clip), camera.model_dump(mode="json")], sort_keys=True)
        incidents = cache.get(key) if cache is not None else None
        if incidents is None:
            with tempfile.TemporaryDirectory(prefix="safewatch-eval-") as tmp:
                incidents = replay_incidents(es, camera, registry, Path(tmp), threads=threads)
            if cache is not None:
                cache[key] = incidents
        matches = tuple(match(es.episodes, es.ignore, incidents, tolerance))
        counts = per_rule(es.episodes, matches, es.duration_s, es.rules)
        clips.append(ClipEvaluation(es, camera, incidents, matches, counts))
        log.info("evaluated %s: %d incidents opened, %d episodes", es.file, len(incidents), len(es.episodes))
    return Evaluation(tuple(clips), aggregate(c.counts for c in clips), tolerance, tuple(overrides))


def sweep(
    sets: Sequence[EpisodeSet],
    registry: ModelRegistry,
    param: str,
    values: Sequence[Any],
    *,
    overrides: Sequence[Override] = (),
    tolerance: float = 2.0,
    threads: int = 0,
    cache: ReplayCache | None = None,
    on_clip: Callable[[EpisodeSet], None] | None = None,
) -> list[tuple[Any, Evaluation]]:
    """`evaluate` once per value of `param` (module docs, on top of `overrides`), in the order given."""
    check_overrides(sets, [[*overrides, (param, value)] for value in values])
    return [
        (
            value,
            evaluate(
                sets,
                registry,
                tolerance=tolerance,
                overrides=[*overrides, (param, value)],
                threads=threads,
                cache=cache,
                on_clip=on_clip,
            ),
        )
        for value in values
    ]
