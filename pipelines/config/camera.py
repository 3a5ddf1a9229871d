"""Camera configuration: the pydantic schema of camera_configs/*.yaml and its loader.

Field names are a user-facing contract: add fields, never rename. Every model forbids unknown fields and documents
each field, so `safewatch config schema` prints a self-describing JSON Schema.

Stream file paths: URLs (`scheme://…`) and absolute paths are used as written. A relative path is resolved, when the
config was loaded from a file, against the config file's directory, then its parent directory (so
`camera_configs/demo.yaml` may say `sample_media/vtest.mp4`, relative to the project root), then the current
directory; the first that exists wins. Configs that did not come from a file resolve against the current directory.

Every number in the schema is finite (`.inf`/`.nan` are refused) and has an upper bound, stated in its description
or visible as `maximum` in the JSON Schema; polygons, zones and rules are capped in count (`MAX_*` below).

Which streams a config may name depends on who wrote it (`pipelines.config.streams.StreamPolicy`): the loader takes
the policy, so a YAML file on disk (the administrator's) and a config set through the HTTP API are checked by the same
code, each with its own rights.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from pipelines.config.detect import DetectConfig
from pipelines.config.health import HealthConfig
from pipelines.config.references import raw_reference_problems, reference_problems
from pipelines.config.rules import RULE_TYPES, NormalisedPoint, RuleConfig
from pipelines.config.schedule import Schedule, ScheduleWindow
from pipelines.config.streams import StreamPolicy, check_stream_text, is_url
from pipelines.config.yaml_io import ConfigError, ConfigProblem, line_of, problems_from_validation, read_yaml
from vision import geometry
from vision.geometry import MIN_AREA, Anchor, validate_polygon
from vision.media.config import ClipConfig, SnapshotConfig
from vision.motion import MotionGateConfig
from vision.redact import redact_url
from vision.track.config import TrackerConfig

__all__ = [
    "RULE_TYPES",
    "CameraConfig",
    "ConfigError",
    "ConfigProblem",
    "Schedule",
    "ScheduleWindow",
    "StreamPolicy",
    "Streams",
    "Zone",
    "is_url",
    "load_camera_config",
    "load_camera_configs",
]

ZoneKind = Literal["generic", "fire_exit", "indoor", "helmet_required", "forbidden"]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64)]

ModelNames = Annotated[list[str], Field(min_length=1)]
ShaPrefix = Annotated[str, Field(pattern=r"^[0-9a-f]{6,64}$")]
ModelPins = Annotated[dict[str, ShaPrefix | None], Field(min_length=1)]

#: Size caps of one camera: validation and every per-frame zone test stay cheap whatever a config says.
MAX_POLYGON_POINTS = 64
MAX_ZONES = 32
MAX_RULES = 32


# ---------------------------------------------------------------- models


class Zone(BaseModel):
    """A named polygon in normalised image coordinates (x right, y down, both in [0, 1]).

    The fields are those of `vision.geometry.Zone` under the same names (`to_geometry()` builds it), and the polygon
    is checked by the same `vision.geometry.validate_polygon`, so YAML, HTTP API and runtime agree on what a zone is.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(
        pattern=r"^[\w-]+$", max_length=64, title="Name", description="Unique per camera; rules refer to it."
    )
    kind: ZoneKind = Field(
        default="generic",
        title="Kind",
        description="What the area is: generic | fire_exit | indoor | helmet_required | forbidden.",
    )
    polygon: list[NormalisedPoint] = Field(
        min_length=3,
        max_length=MAX_POLYGON_POINTS,
        title="Polygon",
        description=f"3 to {MAX_POLYGON_POINTS} normalised [x, y] points; closes implicitly (do not repeat the first "
        f"point); no self-intersection, no edges folding back, area at least {MIN_AREA:g} of the frame.",
    )
    labels: list[str] | None = Field(
        default=None, min_length=1, title="Labels", description="Only these labels count in this zone; unset = all."
    )
    min_size: float | None = Field(
        default=None, gt=0, le=1, title="Minimum size", description="Minimum box height as a fraction of frame height."
    )
    anchor: Anchor = Field(
        default=Anchor.BOTTOM_CENTER,
        title="Anchor",
        description="How a box is tested against the zone: bottom_center (feet) | center | overlap (fraction of the "
        "box area inside the zone, at least `min_overlap`).",
    )
    min_overlap: float = Field(
        default=0.5, gt=0, le=1, title="Minimum overlap", description="Used with anchor=overlap only."
    )

    @field_validator("polygon")
    @classmethod
    def _simple_polygon(cls, polygon: list[NormalisedPoint]) -> list[NormalisedPoint]:
        validate_polygon(polygon, "polygon")  # GeometryError is a ValueError: pydantic reports its message
        return polygon

    def to_geometry(self) -> geometry.Zone:
        """The runtime zone (`vision.geometry.Zone`) this config describes."""
        return geometry.Zone(
            self.polygon,
            name=self.name,
            anchor=self.anchor,
            labels=self.labels,
            min_size=self.min_size,
            min_overlap=self.min_overlap,
        )


class Streams(BaseModel):
    """Where the camera's video comes from."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    detect: str = Field(
        min_length=1,
        title="Detect stream",
        description="Analysed stream: URL (rtsp://user:pass@host/sub, …) or video file path (see module docs for "
        "how relative paths resolve). Set through the HTTP API: rtsp:// or rtsps:// URLs (other schemes need an "
        "admin key) or files under the media roots (SAFEWATCH_MEDIA_ROOTS).",
    )
    record: str | None = Field(
        default=None,
        min_length=1,
        title="Record stream",
        description="Optional higher-resolution stream; evidence clips come from it when set (same rules as `detect`).",
    )

    @field_validator("detect", "record")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        return None if value is None else check_stream_text(value)


class EvidenceConfig(BaseModel):
    """Evidence written for each incident."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(default=True, description="Write snapshots, clips and manifests.")
    clip: ClipConfig = Field(default_factory=ClipConfig, description="Clip windows (pre_roll_s, post_roll_s, ...).")
    snapshot: SnapshotConfig = Field(default_factory=SnapshotConfig, description="Snapshot JPEG settings.")


class CameraConfig(BaseModel):
    """One camera: its streams, zones, rules and schedule."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, title="CameraConfig")

    id: Slug = Field(title="Id", description="Unique camera id: lowercase letters, digits, '-' and '_'.")
    site: str = Field(min_length=1, max_length=128, title="Site", description="Site the camera belongs to.")
    name: str = Field(min_length=1, max_length=128, title="Name", description="Display name, any Unicode.")
    enabled: bool = Field(default=True, title="Enabled", description="Disabled cameras are not run.")
    streams: Streams = Field(title="Streams", description="Analysed and (optional) recorded streams.")
    analysis_fps: float = Field(
        default=5.0, gt=0, le=30, title="Analysis FPS", description="Frames per second decoded and analysed."
    )
    zones: list[Zone] = Field(
        default_factory=list,
        max_length=MAX_ZONES,
        title="Zones",
        description=f"Named polygons, names unique; at most {MAX_ZONES}.",
    )
    rules: list[RuleConfig] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        title="Rules",
        description=f"Rules, discriminated by type; at most {MAX_RULES}.",
    )
    schedule: Schedule | None = Field(default=None, title="Schedule", description="Active windows; unset = always.")
    models: ModelNames | ModelPins | None = Field(
        default=None,
        title="Models",
        description="Model names to run, overriding the automatic choice from the rules' labels: a list of names, "
        "or a mapping name → sha256 prefix (6 to 64 hex digits) of the pushed version to run (`POST /v1/models`; "
        "the models directory's own file when its card's sha256 matches), null = the newest version.",
    )
    model_fps: dict[str, Annotated[float, Field(gt=0, le=30)]] = Field(
        default_factory=dict,
        title="Per-model analysis rates",
        description="Model name → at most this many inferences per second (e.g. a slow helmet model at 1); "
        "models not listed run at analysis_fps.",
    )
    shadow_models: list[str] = Field(
        default_factory=list,
        max_length=4,
        title="Shadow models",
        description="Candidate models run beside production on the same frames (a shadow run): each replaces the "
        "production model(s) for the labels it serves, through the same rules; its incidents are stored as shadow "
        "incidents (never pushed to webhooks, SSE or MQTT) for `safewatch eval --shadow`. Names of model cards, "
        "checked like `models` when the camera starts.",
    )
    shadow_rate_fps: Annotated[float, Field(gt=0, le=30)] | None = Field(
        default=None,
        title="Shadow analysis rate",
        description="At most this many frames per second go to the shadow run (unset = analysis_fps); frames are "
        "skipped while it is behind, so it never slows production.",
    )
    motion_gate: MotionGateConfig | None = Field(
        default=None,
        title="Motion gate",
        description="Skip inference on unchanged frames; unset = on, except for cameras with line_crossing or "
        "smoke_fire rules, which need every analysed frame.",
    )
    detect: DetectConfig = Field(
        default_factory=DetectConfig,
        title="Detect",
        description="Where the detector runs: motion regions with stationary objects (default) or whole frames.",
    )
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, title="Tracker", description="ByteTrack settings.")
    evidence: EvidenceConfig = Field(
        default_factory=lambda: EvidenceConfig(),
        title="Evidence",
        description="Snapshot and clip settings (pre/post-roll, maximum clip length, JPEG quality).",
    )
    health: HealthConfig = Field(
        default_factory=HealthConfig,
        title="Health",
        description="Built-in camera_offline and camera_tamper rules (on by default): thresholds, severities, "
        "or `enabled: false`.",
    )

    _base_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _cross_references(self) -> CameraConfig:
        references = [(rule.type, rule.zones) for rule in self.rules]
        errors = [
            InitErrorDetails(type=PydanticCustomError("reference", message), loc=loc, input=value)
            for loc, message, value in reference_problems([zone.name for zone in self.zones], references)
        ]
        if errors:
            raise ValidationError.from_exception_data("CameraConfig", errors)
        return self

    @property
    def model_pins(self) -> dict[str, str]:
        """Model name → sha256 prefix of the version this camera must run (`models:` as a mapping)."""
        return {n: p for n, p in self.models.items() if p is not None} if isinstance(self.models, dict) else {}

    def zone(self, name: str) -> Zone:
        """The zone called `name` (KeyError if absent)."""
        for zone in self.zones:
            if zone.name == name:
                return zone
        raise KeyError(name)

    def is_active(self, when: datetime | float) -> bool:
        """Enabled and inside the schedule (if any) at `when`."""
        return self.enabled and (self.schedule is None or self.schedule.is_active(when))

    def with_base_dir(self, base_dir: Path | None) -> CameraConfig:
        """Remember the directory relative stream paths resolve against (set by the loader)."""
        self._base_dir = base_dir
        return self

    def stream_candidates(self, source: str) -> list[Path]:
        """Where a file path is looked for, in order (module docs); [] for a URL."""
        if is_url(source):
            return []
        if Path(source).is_absolute():
            return [Path(source)]
        bases = [self._base_dir, self._base_dir.parent] if self._base_dir else []
        return [base / source for base in [*bases, Path.cwd()]]

    def resolve_stream(self, source: str) -> str:
        """`source` ready to open: URLs and absolute paths unchanged, relative paths resolved (module docs)."""
        if is_url(source) or Path(source).is_absolute():
            return source
        candidates = self.stream_candidates(source)
        for path in candidates:
            if path.exists():
                return str(path.resolve())
        return str(candidates[0])

    @property
    def detect_source(self) -> str:
        return self.resolve_stream(self.streams.detect)

    @property
    def record_source(self) -> str | None:
        return self.resolve_stream(self.streams.record) if self.streams.record else None

    def redacted(self) -> dict[str, Any]:
        """JSON-ready dump with stream credentials replaced by `***` (safe for logs, CLI, HTTP)."""
        data = self.model_dump(mode="json")
        data["streams"] = {key: redact_url(v) if isinstance(v, str) else v for key, v in data["streams"].items()}
        return data

    def config_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of the redacted config, defaults included (for evidence manifests).

        Credentials are left out so a published hash cannot be used to guess a password.
        """
        canonical = json.dumps(self.redacted(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- loading


def load_camera_config(
    path: str | Path, *, check_files: bool = True, policy: StreamPolicy | None = None
) -> CameraConfig:
    """Load and validate one camera YAML. Raises ConfigError listing every problem (file, field path, message).

    With `check_files`, stream file paths (not URLs) must exist (resolved as described in the module docs).
    `policy`: which streams the file's author may name; default: the administrator's YAML on disk (anything).
    """
    path = Path(path)
    data, node = read_yaml(path)
    try:
        config = CameraConfig.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation(str(path), exc, node, CameraConfig)
        raise ConfigError(problems + raw_reference_problems(str(path), data, node, problems)) from None
    config.with_base_dir(path.resolve().parent)
    problems = _stream_problems(path, config, node, policy or StreamPolicy.on_disk(), check_files=check_files)
    if problems:
        raise ConfigError(problems)
    return config


def _stream_problems(
    path: Path, config: CameraConfig, node: Any, policy: StreamPolicy, *, check_files: bool
) -> list[ConfigProblem]:
    """Streams the policy refuses, then (with `check_files`) stream files that do not exist.

    A refused path gets only the policy's message, so whether it exists is never reported.
    """
    problems = []
    for key in ("detect", "record"):
        source = getattr(config.streams, key)
        if not source:
            continue
        line = line_of(node, ("streams", key))
        refused = policy.problem(source, config.stream_candidates(source))
        if refused is not None:
            problems.append(ConfigProblem(str(path), f"streams.{key}", refused, line))
        elif check_files and not is_url(source) and not Path(config.resolve_stream(source)).is_file():
            hint = "" if Path(source).is_absolute() else f" (tried {path.parent}, its parent and the current directory)"
            problems.append(ConfigProblem(str(path), f"streams.{key}", f"file not found: {source}{hint}", line))
    return problems


def load_camera_configs(path: str | Path, *, check_files: bool = True) -> list[CameraConfig]:
    """Load every `*.yaml`/`*.yml` in a directory (sorted, not recursive), or one file. Camera ids must be unique.

    Problems of all files are collected into one ConfigError.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file() and p.name[0] != ".")
        if not files:
            raise ConfigError([ConfigProblem(str(path), "", "no camera configs (*.yaml) in this directory")])
    elif path.exists():
        files = [path]
    else:
        raise ConfigError([ConfigProblem(str(path), "", "no such file or directory")])
    configs: list[CameraConfig] = []
    problems: list[ConfigProblem] = []
    owners: dict[str, Path] = {}
    for file in files:
        try:
            config = load_camera_config(file, check_files=check_files)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if config.id in owners:
            problems.append(
                ConfigProblem(str(file), "id", f"camera id '{config.id}' is already used by {owners[config.id]}")
            )
            continue
        owners[config.id] = file
        configs.append(config)
    if problems:
        raise ConfigError(problems)
    return configs
