"""Episodes files: what a person would report on one clip, for `safewatch eval --episodes`.

```yaml
clip: vtest.mp4                          # relative to this file
camera: ../camera_configs/demo-gate.yaml # relative to this file
episodes:                                # media time in seconds
  - {rule: exit_blocked, zone: fire_lane, start: 0.0, end: 79.4}
  - {rule: intrusion, zone: footpath, start: 22.8, end: 24.6, note: dark jacket}
  - {rule: line_crossing, start: 12.4, end: 12.4}   # line_crossing has no zone: leave it out
  - {rule: no_helmet, zone: walkway, subject: grey hoodie, start: 3.0, end: 9.5}    # per-person rules:
  - {rule: no_helmet, zone: walkway, subject: red jacket, start: 5.2, end: 12.0}    # one episode per person
ignore:                                  # optional: spans where either answer is acceptable
  - {rule: intrusion, zone: footpath, start: 1.2, end: 2.6}
```

`rule` is a rule type the camera runs (incidents carry the type); `zone` one of the zones that camera's rules of that
type watch, left out for rules without zones (line_crossing, or a whole-frame no_helmet). Episodes of one rule and
zone must not overlap (two people in one zone at once are one episode) unless each names a different `subject`:
rules that raise one incident per person (no_helmet, loitering, intrusion) are labelled one episode per person,
and one person's episodes of one rule and zone must not overlap either. Every span must lie within the clip. Any
problem raises `ConfigError` naming the file, the field and the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.config.camera import CameraConfig, load_camera_config
from pipelines.config.yaml_io import ConfigError, ConfigProblem, line_of, problems_from_validation, read_yaml

#: Spans may end this much after the clip's last frame (labels are read off frames, the container may round).
END_SLACK_S = 0.5


class SpanModel(BaseModel):
    """One labelled span of media time."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rule: str = Field(min_length=1, description="Rule type, as in the incidents (e.g. intrusion).")
    zone: str | None = Field(default=None, min_length=1, description="Zone name; left out for rules without zones.")
    start: float = Field(ge=0, description="Media seconds where the violation begins.")
    end: float = Field(ge=0, description="Media seconds where it ends (= start for an instant, e.g. a crossing).")
    note: str | None = Field(default=None, description="Free text: who or what, for the person reading the report.")
    subject: str | None = Field(
        default=None,
        min_length=1,
        description="Who (one person): episodes of one rule and zone may overlap when they name different subjects.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> SpanModel:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class EpisodesModel(BaseModel):
    """The YAML document of an episodes file."""

    model_config = ConfigDict(extra="forbid")

    clip: str = Field(min_length=1, description="The footage, relative to this file.")
    camera: str = Field(min_length=1, description="The camera config replayed over it, relative to this file.")
    episodes: list[SpanModel] = Field(default_factory=list, description="Violations a person would report.")
    ignore: list[SpanModel] = Field(default_factory=list, description="Spans where either answer is acceptable.")


@dataclass(frozen=True, slots=True)
class Span:
    """A labelled span (episode or ignore span); `line` is its line in the episodes file."""

    rule: str
    zone: str | None
    start: float
    end: float
    note: str | None = None
    line: int | None = None
    subject: str | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.rule, self.zone)


@dataclass(frozen=True)
class EpisodeSet:
    """One checked episodes file with its camera and clip."""

    file: Path
    clip: Path
    camera_file: Path
    camera: CameraConfig
    duration_s: float
    episodes: tuple[Span, ...]
    ignore: tuple[Span, ...]

    @property
    def rules(self) -> list[str]:
        """Rule types the camera runs (enabled), in config order, each once."""
        return list(dict.fromkeys(r.type for r in self.camera.rules if r.enabled))


def clip_duration(path: Path) -> float:
    """Media seconds of a video file (container duration, else its video stream's). Raises ValueError."""
    try:
        with av.open(str(path)) as container:
            if container.duration:
                return float(container.duration) / 1_000_000
            stream = container.streams.video[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise ValueError(f"cannot read the clip: {exc}") from None
    raise ValueError("the clip has no duration")


def load_episodes(path: str | Path) -> EpisodeSet:
    """Read and check one episodes file (module docs). Raises ConfigError (file, field, line)."""
    path = Path(path)
    data, node = read_yaml(path)
    try:
        doc = EpisodesModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(str(path), exc, node, EpisodesModel)) from None
    base = path.resolve().parent
    clip, camera_file = base / doc.clip, base / doc.camera
    if not clip.is_file():
        raise ConfigError([ConfigProblem(str(path), "clip", f"no such file: {clip}", line_of(node, ("clip",)))])
    if not camera_file.is_file():
        raise ConfigError(
            [ConfigProblem(str(path), "camera", f"no such file: {camera_file}", line_of(node, ("camera",)))]
        )
    camera = load_camera_config(camera_file, check_files=False)
    try:
        duration = clip_duration(clip)
    except ValueError as exc:
        raise ConfigError([ConfigProblem(str(path), "clip", str(exc), line_of(node, ("clip",)))]) from None
    episodes = _spans(doc.episodes, "episodes", node)
    ignore = _spans(doc.ignore, "ignore", node)
    problems = _span_problems(str(path), camera, duration, episodes, "episodes")
    problems += _span_problems(str(path), camera, duration, ignore, "ignore")
    problems += _overlaps(str(path), episodes)
    if problems:
        raise ConfigError(problems)
    return EpisodeSet(path, clip, camera_file, camera, duration, tuple(episodes), tuple(ignore))


def _spans(models: list[SpanModel], field: str, node: yaml.Node) -> list[Span]:
    return [Span(m.rule, m.zone, m.start, m.end, m.note, line_of(node, (field, i)), m.subject)
            for i, m in enumerate(models)]  # fmt: skip


def allowed_zones(camera: CameraConfig) -> dict[str, set[str | None]]:
    """Per enabled rule type: the zones its rules watch; None where a rule of that type has no zone."""
    out: dict[str, set[str | None]] = {}
    for rule in camera.rules:
        if rule.enabled:
            zones = out.setdefault(rule.type, set())
            if rule.type == "line_crossing" or not rule.zones:
                zones.add(None)
            else:
                zones.update(rule.zones)
    return out


def _span_problems(
    file: str, camera: CameraConfig, duration: float, spans: list[Span], field: str
) -> list[ConfigProblem]:
    allowed = allowed_zones(camera)
    problems = []
    for i, span in enumerate(spans):
        where = f"{field}.{i}"
        zones = allowed.get(span.rule)
        if zones is None:
            known = ", ".join(allowed) or "none"
            problems.append(ConfigProblem(file, f"{where}.rule", f"camera {camera.id} runs no rule {span.rule!r} "
                                          f"(its rules: {known})", span.line))  # fmt: skip
        elif span.zone not in zones:
            names = ", ".join(sorted(z for z in zones if z is not None))
            what = "needs a zone" if span.zone is None else f"unknown zone {span.zone!r}"
            hint = f"{span.rule} watches: {names}" + ("; or leave zone out" if None in zones else "")
            if not names:
                hint = f"{span.rule} has no zone here: leave zone out"
            problems.append(ConfigProblem(file, f"{where}.zone", f"{what} ({hint})", span.line))
        if span.end > duration + END_SLACK_S:
            message = f"span {span.start}-{span.end} s lies outside the clip (0-{duration:.1f} s)"
            problems.append(ConfigProblem(file, where, message, span.line))
    return problems


def _overlaps(file: str, episodes: list[Span]) -> list[ConfigProblem]:
    """Episodes of one rule and zone that overlap in time, unless they name different subjects (module docs)."""
    problems = []
    by_key: dict[tuple[str, str | None], list[tuple[int, Span]]] = {}
    for i, span in enumerate(episodes):
        by_key.setdefault(span.key, []).append((i, span))
    for items in by_key.values():
        items.sort(key=lambda item: (item[1].start, item[1].end))
        for n, (j, b) in enumerate(items):
            clash = next(((i, a) for i, a in items[:n] if b.start < a.end and _same_subject(a, b)), None)
            if clash is None:
                continue
            i, a = clash
            if a.subject is not None and a.subject == b.subject:
                hint = f"subject {a.subject!r} cannot be in two episodes at once; merge them"
            else:
                hint = "merge them into one episode, or name each one's subject (one person each)"
            message = f"overlaps episodes.{i} (line {a.line}) of the same rule and zone ({a.start}-{a.end} s); {hint}"
            problems.append(ConfigProblem(file, f"episodes.{j}", message, b.line))
    return problems


def _same_subject(a: Span, b: Span) -> bool:
    """Whether two overlapping episodes clash: unless both name a subject and the subjects differ."""
    return a.subject is None or b.subject is None or a.subject == b.subject
