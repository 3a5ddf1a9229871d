"""Camera config schema, loader and `safewatch config` CLI, driven by the YAML table in cases/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from cli.main import main
from pipelines.config.camera import (
    RULE_TYPES,
    CameraConfig,
    ConfigError,
    ConfigProblem,
    Schedule,
    Zone,
    load_camera_config,
    load_camera_configs,
)
from pipelines.config.rules import ExitBlockedRule, IntrusionRule, LineCrossingRule, SmokeFireRule
from vision.geometry import Anchor, GeometryError, validate_polygon

CASES = Path(__file__).parent / "cases"
GOOD = sorted((CASES / "good").glob("*.yaml"))
BAD = sorted((CASES / "bad").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (?P<path>\S+?): (?P<fragment>.+?)(?: @line (?P<line>\d+))?$")


def _expectations(case: Path) -> list[tuple[str, str, int | None]]:
    out = []
    for line in case.read_text(encoding="utf-8").splitlines():
        match = EXPECT.match(line)
        if match:
            path = "" if match["path"] == "-" else match["path"]
            out.append((path, match["fragment"], int(match["line"]) if match["line"] else None))
    return out


@pytest.mark.parametrize("case", GOOD, ids=lambda p: p.stem)
def test_good_cases_load(case: Path) -> None:
    config = load_camera_config(case)
    assert isinstance(config, CameraConfig)
    assert config.id and config.streams.detect


@pytest.mark.parametrize("case", BAD, ids=lambda p: p.stem)
def test_bad_cases_report_exact_problems(case: Path) -> None:
    expected = _expectations(case)
    assert expected, f"{case.name} has no '# expect:' line"
    with pytest.raises(ConfigError) as info:
        load_camera_config(case)
    problems = info.value.problems
    assert len(problems) == len(expected), "\n".join(map(str, problems))
    for path, fragment, line in expected:
        hits = [p for p in problems if p.path == path and fragment in p.message]
        assert hits, f"no problem at {path!r} containing {fragment!r}; got:\n" + "\n".join(map(str, problems))
        assert hits[0].file == str(case)
        if line is not None:
            assert hits[0].line == line, str(hits[0])


def test_table_covers_the_required_failures() -> None:
    names = {p.stem for p in BAD}
    required = {"unknown_field", "bad_id", "polygon_two_points", "coordinate_out_of_range", "bowtie"}
    required |= {"unknown_rule_type", "missing_zone", "bad_timezone", "bad_schedule", "duplicate_zone"}
    required |= {"yaml_syntax", "empty"}
    assert required <= names


def test_error_message_format_and_redaction() -> None:
    with pytest.raises(ConfigError) as info:
        load_camera_config(CASES / "bad" / "bad_scheme.yaml")
    text = str(info.value)
    assert text.startswith(f"{CASES / 'bad' / 'bad_scheme.yaml'}: streams.detect: unsupported URL scheme 'ftp'")
    assert "topsecret" not in text
    problem = ConfigProblem("x.yaml", "rules.0.zones.0", "zone missing", 7)
    assert str(problem) == "x.yaml: rules.0.zones.0: zone missing (line 7)"
    assert str(ConfigProblem("x.yaml", "", "empty file")) == "x.yaml: empty file"


def test_duplicate_camera_ids_across_files() -> None:
    with pytest.raises(ConfigError) as info:
        load_camera_configs(CASES / "dup_ids")
    [problem] = info.value.problems
    assert problem.file == str(CASES / "dup_ids" / "b.yaml")
    assert problem.path == "id"
    assert "camera id 'same' is already used by" in problem.message and "a.yaml" in problem.message


def test_directory_problems_are_collected_from_every_file(tmp_path: Path) -> None:
    for name in ("bowtie", "empty", "bad_id"):
        (tmp_path / f"{name}.yaml").write_bytes((CASES / "bad" / f"{name}.yaml").read_bytes())
    with pytest.raises(ConfigError) as info:
        load_camera_configs(tmp_path)
    assert {Path(p.file).stem for p in info.value.problems} == {"bowtie", "empty", "bad_id"}
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ConfigError, match="no camera configs"):
        load_camera_configs(tmp_path / "empty_dir")
    with pytest.raises(ConfigError, match="no such file or directory"):
        load_camera_configs(tmp_path / "missing")


def test_every_shipped_camera_config_validates(repo_root: Path, sample_clip: Path) -> None:
    configs = load_camera_configs(repo_root / "camera_configs")
    assert {c.id for c in configs} >= {"demo-gate", "demo-yard"}
    for config in configs:
        assert Path(config.detect_source) == sample_clip.resolve()
        assert config.rules and all(
            rule.zones or isinstance(rule, LineCrossingRule | SmokeFireRule) for rule in config.rules
        )
    gate = next(c for c in configs if c.id == "demo-gate")
    assert {r.type for r in gate.rules} == {"exit_blocked", "intrusion"}
    assert gate.name == "演示 1号门 消防通道"


def test_architecture_example_fields_and_defaults() -> None:
    config = load_camera_config(CASES / "good" / "architecture_example.yaml")
    assert config.id == "gate-3" and config.name == "3号门 消防通道" and config.analysis_fps == 5
    blocked, intrusion = config.rules
    assert isinstance(blocked, ExitBlockedRule) and blocked.dwell_seconds == 30 and blocked.occupancy == 0.3
    assert blocked.static_scene and "e_bike" in blocked.labels and blocked.severity == "critical"
    assert isinstance(intrusion, IntrusionRule) and intrusion.min_seconds == 1 and intrusion.labels == ["person"]
    assert config.zone("fire_lane").anchor == "bottom_center" and config.zone("fire_lane").kind == "generic"


def test_rule_defaults_and_types() -> None:
    assert set(RULE_TYPES) == {
        "no_helmet", "exit_blocked", "ebike_indoor", "smoke_fire", "intrusion", "loitering", "line_crossing",
    }  # fmt: skip
    config = load_camera_config(CASES / "good" / "full.yaml")
    by_type = {rule.type: rule for rule in config.rules}
    assert set(by_type) == set(RULE_TYPES)
    assert by_type["ebike_indoor"].labels == ["e_bike", "motorcycle"]
    assert by_type["smoke_fire"].labels == ["smoke", "fire"] and by_type["smoke_fire"].zones == []
    assert config.zone("消防通道").min_overlap == 0.4
    assert config.schedule is not None and config.schedule.windows[1].start == "22:00"


@pytest.mark.parametrize(
    "polygon",
    [
        [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.1]],  # closed ring
        [[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]],  # folds back
        [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]],  # bow tie
        [[0.1, 0.1], [0.1005, 0.1], [0.1, 0.1005]],  # near-zero area
    ],
)
def test_zone_polygons_are_checked_by_the_geometry_validator(polygon: list[list[float]]) -> None:
    """One validator: the schema reports exactly what `vision.geometry.validate_polygon` says."""
    with pytest.raises(GeometryError) as expected:
        validate_polygon(polygon, "polygon")
    with pytest.raises(ValidationError) as info:
        Zone.model_validate({"name": "z", "polygon": polygon})
    [error] = info.value.errors()
    assert error["loc"] == ("polygon",) and error["msg"] == f"Value error, {expected.value}"


def test_zone_to_geometry_keeps_every_option_under_its_yaml_name() -> None:
    zone = Zone.model_validate(
        {"name": "z", "polygon": [[0, 0], [1, 0], [1, 1]], "anchor": "overlap", "labels": ["car"], "min_size": 1.0}
    )
    assert zone.anchor is Anchor.OVERLAP and zone.model_dump(mode="json")["anchor"] == "overlap"
    geo = zone.to_geometry()
    assert (geo.name, geo.anchor, geo.labels, geo.min_size) == ("z", Anchor.OVERLAP, ("car",), 1.0)
    assert geo.polygon.tolist() == [[0, 0], [1, 0], [1, 1]]


def test_unquoted_times_stay_strings() -> None:
    config = load_camera_config(CASES / "good" / "unquoted_times.yaml")
    assert config.schedule is not None
    window = config.schedule.windows[0]
    assert (window.start, window.end) == ("19:30", "07:00")


def test_redacted_and_config_hash() -> None:
    config = load_camera_config(CASES / "good" / "full.yaml")
    redacted = config.redacted()
    assert redacted["streams"] == {
        "detect": "rtsp://***@cam7.example:554/sub",
        "record": "rtsps://***@cam7.example:322/main",
    }
    assert "hunter2" not in json.dumps(redacted, ensure_ascii=False)
    assert config.streams.detect.startswith("rtsp://admin:hunter2@")  # the model itself keeps the secret
    digest = config.config_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    again = CameraConfig.model_validate(config.model_dump())
    assert again.config_hash() == digest
    changed = config.model_copy(update={"analysis_fps": 3.0})
    assert changed.config_hash() != digest


def test_relative_stream_paths_resolve_against_config_dir_then_parent(tmp_path: Path, sample_clip: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "clip.mp4").write_bytes(b"not really a video")
    (tmp_path / "configs").mkdir()
    yaml_text = "id: a\nsite: s\nname: n\nstreams: {detect: media/clip.mp4}\n"
    (tmp_path / "configs" / "a.yaml").write_text(yaml_text, encoding="utf-8")
    config = load_camera_config(tmp_path / "configs" / "a.yaml")
    assert config.detect_source == str((tmp_path / "media" / "clip.mp4").resolve())
    (tmp_path / "configs" / "media").mkdir()
    (tmp_path / "configs" / "media" / "clip.mp4").write_bytes(b"closer")
    assert load_camera_config(tmp_path / "configs" / "a.yaml").detect_source.endswith("configs/media/clip.mp4")
    url = CameraConfig.model_validate({"id": "b", "site": "s", "name": "n", "streams": {"detect": "rtsp://h/x"}})
    assert url.detect_source == "rtsp://h/x" and url.record_source is None
    absolute = load_camera_config(tmp_path / "configs" / "a.yaml").resolve_stream(str(sample_clip))
    assert absolute == str(sample_clip)


SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("windows", "when", "active"),
    [
        # 2024-01-01 is a Monday.
        ([{"days": ["mon"], "start": "07:00", "end": "19:00"}], datetime(2024, 1, 1, 7, 0, tzinfo=SHANGHAI), True),
        (
            [{"days": ["mon"], "start": "07:00", "end": "19:00"}],
            datetime(2024, 1, 1, 18, 59, 59, tzinfo=SHANGHAI),
            True,
        ),
        ([{"days": ["mon"], "start": "07:00", "end": "19:00"}], datetime(2024, 1, 1, 19, 0, tzinfo=SHANGHAI), False),
        ([{"days": ["mon"], "start": "07:00", "end": "19:00"}], datetime(2024, 1, 2, 8, 0, tzinfo=SHANGHAI), False),
        # the same instant given in UTC: 23:30 UTC Sunday = 07:30 Monday in Shanghai
        ([{"days": ["mon"], "start": "07:00", "end": "19:00"}], datetime(2023, 12, 31, 23, 30, tzinfo=UTC), True),
        # naive datetimes are UTC: 23:30 naive = 07:30 Shanghai
        ([{"days": ["mon"], "start": "07:00", "end": "19:00"}], datetime(2023, 12, 31, 23, 30), True),
        # over midnight: Friday 22:00 → Saturday 06:00
        ([{"days": ["fri"], "start": "22:00", "end": "06:00"}], datetime(2024, 1, 5, 23, 0, tzinfo=SHANGHAI), True),
        ([{"days": ["fri"], "start": "22:00", "end": "06:00"}], datetime(2024, 1, 6, 5, 59, tzinfo=SHANGHAI), True),
        ([{"days": ["fri"], "start": "22:00", "end": "06:00"}], datetime(2024, 1, 6, 6, 0, tzinfo=SHANGHAI), False),
        ([{"days": ["fri"], "start": "22:00", "end": "06:00"}], datetime(2024, 1, 5, 5, 0, tzinfo=SHANGHAI), False),
        ([{"days": ["fri"], "start": "22:00", "end": "06:00"}], datetime(2024, 1, 6, 23, 0, tzinfo=SHANGHAI), False),
        # Sunday night window wraps into Monday
        ([{"days": ["sun"], "start": "20:00", "end": "02:00"}], datetime(2024, 1, 1, 1, 0, tzinfo=SHANGHAI), True),
        # whole day, default days = every day
        ([{"start": "00:00", "end": "24:00"}], datetime(2024, 1, 3, 23, 59, 59, tzinfo=SHANGHAI), True),
        # any window matches
        (
            [{"days": ["sat"], "start": "08:00", "end": "09:00"}, {"days": ["mon"], "start": "12:00", "end": "13:00"}],
            datetime(2024, 1, 1, 12, 30, tzinfo=SHANGHAI),
            True,
        ),
        # unix seconds: 1704067200 = 2024-01-01 00:00 UTC = 08:00 Monday in Shanghai
        ([{"days": ["mon"], "start": "08:00", "end": "08:01"}], 1704067200.0, True),
    ],
)
def test_schedule_is_active(windows: list[dict[str, object]], when: datetime | float, active: bool) -> None:
    schedule = Schedule.model_validate({"timezone": "Asia/Shanghai", "windows": windows})
    assert schedule.is_active(when) is active


def test_schedule_follows_daylight_saving() -> None:
    schedule = Schedule.model_validate({"timezone": "Europe/London", "windows": [{"start": "09:00", "end": "10:00"}]})
    assert schedule.is_active(datetime(2024, 1, 15, 9, 30, tzinfo=UTC))  # GMT
    assert not schedule.is_active(datetime(2024, 7, 15, 9, 30, tzinfo=UTC))  # 10:30 BST
    assert schedule.is_active(datetime(2024, 7, 15, 8, 30, tzinfo=UTC))


def test_camera_is_active_needs_enabled_and_schedule() -> None:
    base = {"id": "a", "site": "s", "name": "n", "streams": {"detect": "rtsp://h/x"}}
    assert CameraConfig.model_validate(base).is_active(0.0)
    assert not CameraConfig.model_validate({**base, "enabled": False}).is_active(0.0)


# ---------------------------------------------------------------- CLI


def test_cli_validate_ok(repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(repo_root / "camera_configs")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^OK demo-gate .*detect=sample_media/vtest\.mp4.*rules=\[exit_blocked, intrusion\]", out, re.M)
    assert "演示 1号门 消防通道" in out
    assert re.search(r"^\d+ camera config\(s\) OK$", out, re.M)


def test_cli_validate_redacts_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(CASES / "good" / "full.yaml")]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "admin" not in out
    assert "detect=rtsp://***@cam7.example:554/sub record=rtsps://***@cam7.example:322/main" in out
    assert main(["config", "validate", str(CASES / "bad" / "bad_scheme.yaml")]) == 2
    captured = capsys.readouterr()
    assert "topsecret" not in captured.out + captured.err


def test_cli_validate_errors_one_line_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES / "bad" / "missing_zone.yaml"
    assert main(["config", "validate", str(case)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{case}: rules.1.zones.1: rule intrusion names zone 'loading_bay', which does not exist; "
        "zones: fire_lane, yard (line 14)"
    ]
    assert "1 problem(s) in 1 file(s)" in captured.err
    assert "Traceback" not in captured.err


def test_cli_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["analysis_fps"]["description"]
    assert {"ExitBlockedRule", "LineCrossingRule", "Zone", "Schedule"} <= set(schema["$defs"])
    assert set(schema["properties"]["rules"]["items"]["discriminator"]["mapping"]) == set(RULE_TYPES)


def _undocumented(schema: dict[str, object]) -> list[str]:
    missing = []
    defs = schema.get("$defs", {})
    assert isinstance(defs, dict)
    for model_name, model in [("CameraConfig", schema), *defs.items()]:
        for field, spec in model.get("properties", {}).items():
            if not spec.get("description"):
                missing.append(f"{model_name}.{field}")
    return missing


def test_schema_documents_every_field() -> None:
    assert _undocumented(CameraConfig.model_json_schema()) == []


def test_console_script_exit_codes(repo_root: Path) -> None:
    script = Path(sys.executable).parent / "safewatch"
    ok = subprocess.run(
        [str(script), "config", "validate", "camera_configs"], cwd=repo_root, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "OK demo-yard" in ok.stdout
    bad = subprocess.run(
        [str(script), "config", "validate", str(CASES / "bad")], cwd=repo_root, capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "topsecret" not in bad.stdout + bad.stderr
    assert len(bad.stdout.splitlines()) == sum(len(_expectations(p)) for p in BAD)
