"""`safewatch replay` end to end: the real console script over the real clip, its outputs and its errors.

The full replay runs once as a subprocess (the way users run it) with the merged vtest fixture camera; its events must
equal the in-process replay's (tests/pipelines/e2e/harness.py) — reproducibility across runs and entry points.
Error cases run in-process through `cli.main.main` (fast, same code path as the console script).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from pipelines.events import EventType, IncidentEvent
from tests.pipelines.e2e import harness
from tests.pipelines.e2e.harness import ReplayResult

SAFEWATCH = Path(sys.executable).with_name("safewatch")


@pytest.fixture(scope="module")
def vtest(tmp_path_factory: pytest.TempPathFactory) -> ReplayResult:
    return harness.vtest_replay(tmp_path_factory.mktemp("vtest"))


@pytest.fixture(scope="module")
def cli_run(
    tmp_path_factory: pytest.TempPathFactory, sample_clip: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    work = tmp_path_factory.mktemp("cli")
    camera = harness.write_camera(harness.merged_camera(harness.VTEST_CAMERAS), work / "camera.yaml")
    out = work / "out"
    cmd = [str(SAFEWATCH), "replay", str(sample_clip), "--camera", str(camera), "--out", str(out), "--no-evidence"]
    env = {**os.environ, "SAFEWATCH_MODELS_DIR": str(harness.MODELS_DIR)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=harness.ROOT, env=env)
    return proc, out


def test_cli_replay_writes_incident_events_and_a_summary(
    cli_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, out = cli_run
    assert proc.returncode == 0, proc.stderr
    lines = (out / "incidents.jsonl").read_text(encoding="utf-8").splitlines()
    events = [IncidentEvent.model_validate_json(line) for line in lines]
    assert len(events) == len(lines) > 0
    opened = [e for e in events if e.type is EventType.opened]
    assert {e.rule for e in opened} == {"exit_blocked", "intrusion"}
    assert all(e.camera_id == "e2e-vtest" and e.clip_url is None for e in events)  # --no-evidence
    # the summary: a table of incidents per rule, frame counts and where the events went
    assert "exit_blocked" in proc.stdout and "intrusion" in proc.stdout
    total = next(line for line in proc.stdout.splitlines() if line.startswith("total"))
    assert int(total.split()[-1]) == len(opened)
    assert "frames analysed" in proc.stdout and f"({len(lines)} lines)" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_replay_is_reproducible(cli_run: tuple[subprocess.CompletedProcess[str], Path], vtest: ReplayResult) -> None:
    """Same clip, same camera, two runs (subprocess without evidence, in-process with): the same events."""
    proc, out = cli_run
    assert proc.returncode == 0, proc.stderr
    lines = (out / "incidents.jsonl").read_text(encoding="utf-8").splitlines()
    cli_events = [IncidentEvent.model_validate_json(line) for line in lines]
    assert harness.event_keys(cli_events) == harness.event_keys(vtest.events)


def test_missing_source_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.mp4"
    code = main(["replay", str(missing), "--camera", str(harness.E2E_DIR / "exit_van.yaml"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(missing) in err and "no such file" in err
    assert not (tmp_path / "incidents.jsonl").exists()


BAD_CAMERAS = [
    pytest.param("analysis_fps", 0, "analysis_fps", id="fps-zero"),
    pytest.param("analysis_fps", "fast", "analysis_fps", id="fps-not-a-number"),
    pytest.param("id", "Gate 3!", "id", id="bad-id"),
    pytest.param("rules", [{"type": "intrusion", "zones": ["nowhere"]}], "rules.0.zones.0", id="unknown-zone"),
    pytest.param("rules", [{"type": "teleport", "zones": []}], "rules.0", id="unknown-rule-type"),
    pytest.param("colour", "red", "colour", id="unknown-field"),
]


@pytest.mark.parametrize(("field", "value", "path"), BAD_CAMERAS)
def test_bad_camera_yaml_exits_2_naming_file_and_field(
    field: str, value: object, path: str, tmp_path: Path, sample_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    camera = harness.write_camera(harness.load("exit_van.yaml"), tmp_path / "bad.yaml", **{field: value})
    code = main(["replay", str(sample_clip), "--camera", str(camera), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    line = next((ln for ln in err.splitlines() if str(camera) in ln), "")
    assert f": {path}" in line, err
    assert "Traceback" not in err


def test_unreadable_camera_yaml_exits_2(tmp_path: Path, sample_clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    camera = tmp_path / "broken.yaml"
    camera.write_text("id: [unclosed\n", encoding="utf-8")
    assert main(["replay", str(sample_clip), "--camera", str(camera)]) == 2
    assert str(camera) in capsys.readouterr().err
