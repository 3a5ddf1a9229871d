"""Episodes files: the committed ones load; every kind of bad input names the file, the field and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config.yaml_io import ConfigError
from pipelines.evaluation.episodes import allowed_zones, load_episodes

ROOT = Path(__file__).resolve().parents[3]
CLIP = ROOT / "sample_media" / "vtest.mp4"
GATE = ROOT / "camera_configs" / "demo-gate.yaml"
YARD = ROOT / "camera_configs" / "demo-yard.yaml"
COMMITTED = sorted((ROOT / "sample_media").glob("*.episodes.yaml"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_episodes_load(path: Path) -> None:
    es = load_episodes(path)
    assert es.clip.is_file() and es.episodes and 79.0 < es.duration_s < 80.0
    assert {e.rule for e in es.episodes} <= set(es.rules)


def test_gate_file_contents() -> None:
    es = load_episodes(ROOT / "sample_media" / "vtest.gate.episodes.yaml")
    assert es.camera.id == "demo-gate" and es.rules == ["exit_blocked", "intrusion"]
    assert [(e.rule, e.zone) for e in es.episodes[:2]] == [("exit_blocked", "fire_lane"), ("intrusion", "footpath")]
    assert es.episodes[1].line == 24 and es.ignore[0].start == 1.2


def test_allowed_zones() -> None:
    es = load_episodes(ROOT / "sample_media" / "vtest.gate.episodes.yaml")
    assert allowed_zones(es.camera) == {"exit_blocked": {"fire_lane"}, "intrusion": {"footpath"}}


def write(tmp_path: Path, body: str, camera: Path = GATE) -> Path:
    path = tmp_path / "case.episodes.yaml"
    path.write_text(f"clip: {CLIP}\ncamera: {camera}\n{body}", encoding="utf-8")
    return path


BAD = [
    pytest.param(
        "episodes:\n  - {rule: loitering, zone: footpath, start: 1, end: 2}\n",
        "episodes.0.rule: camera demo-gate runs no rule 'loitering' (its rules: exit_blocked, intrusion) (line 4)",
        id="unknown-rule",
    ),
    pytest.param(
        "episodes:\n  - {rule: intrusion, zone: lawn, start: 1, end: 2}\n",
        "episodes.0.zone: unknown zone 'lawn' (intrusion watches: footpath) (line 4)",
        id="unknown-zone",
    ),
    pytest.param(
        "episodes:\n  - {rule: intrusion, start: 1, end: 2}\n",
        "episodes.0.zone: needs a zone (intrusion watches: footpath) (line 4)",
        id="missing-zone",
    ),
    pytest.param(
        "episodes:\n  - {rule: intrusion, zone: footpath, start: 1, end: 2}\n"
        "ignore:\n  - {rule: intrusion, zone: footpath, start: 78, end: 95.5}\n",
        "ignore.0: span 78.0-95.5 s lies outside the clip (0-79.5 s) (line 6)",
        id="outside-clip",
    ),
    pytest.param(
        "episodes:\n  - {rule: intrusion, zone: footpath, start: 10, end: 14}\n"
        "  - {rule: exit_blocked, zone: fire_lane, start: 0, end: 79}\n"
        "  - {rule: intrusion, zone: footpath, start: 13.5, end: 20}\n",
        "episodes.2: overlaps episodes.0 (line 4) of the same rule and zone (10.0-14.0 s); merge them into one "
        "episode, or name each one's subject (one person each) (line 6)",
        id="overlap",
    ),
    pytest.param(
        "episodes:\n  - {rule: intrusion, zone: footpath, subject: red coat, start: 10, end: 14}\n"
        "  - {rule: intrusion, zone: footpath, start: 13.5, end: 20}\n",
        "episodes.1: overlaps episodes.0 (line 4) of the same rule and zone (10.0-14.0 s); merge them into one "
        "episode, or name each one's subject (one person each) (line 5)",
        id="overlap-one-subject",
    ),
    pytest.param(
        "episodes:\n  - {rule: intrusion, zone: footpath, subject: red coat, start: 10, end: 14}\n"
        "  - {rule: intrusion, zone: footpath, subject: blue cap, start: 11, end: 30}\n"
        "  - {rule: intrusion, zone: footpath, subject: red coat, start: 13.5, end: 20}\n",
        "episodes.2: overlaps episodes.0 (line 4) of the same rule and zone (10.0-14.0 s); subject 'red coat' cannot "
        "be in two episodes at once; merge them (line 6)",
        id="overlap-same-subject",
    ),
    pytest.param(
        "episodes:\n  - {rule: intrusion, zone: footpath, start: 5, end: 2}\n",
        "episodes.0: end (2.0) is before start (5.0) (line 4)",
        id="end-before-start",
    ),
    pytest.param(
        "episodes:\n  - {rule: intrusion, zone: footpath, start: 1, end: 2, who: me}\n",
        "episodes.0.who: unknown field 'who'; allowed: rule, zone, start, end, note, subject (line 4)",
        id="unknown-field",
    ),
    pytest.param(
        "episodes:\n  - {rule: intrusion, zone: footpath, start: 1, end: 2\n",
        "YAML syntax error",
        id="malformed-yaml",
    ),
    pytest.param(
        "episodes:\n  - {rule: intrusion, zone: footpath, end: 2}\n", "episodes.0.start: required", id="no-start"
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_input_names_file_field_and_line(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_episodes(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "line " in text


def test_missing_clip_and_camera(tmp_path: Path) -> None:
    path = tmp_path / "x.episodes.yaml"
    path.write_text("clip: nothere.mp4\ncamera: ../cam.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"clip: no such file: .*nothere\.mp4 \(line 1\)"):
        load_episodes(path)
    path.write_text(f"clip: {CLIP}\n\ncamera: cam.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"camera: no such file: .*cam\.yaml \(line 3\)"):
        load_episodes(path)


def test_line_crossing_takes_no_zone(tmp_path: Path) -> None:
    es = load_episodes(write(tmp_path, "episodes:\n  - {rule: line_crossing, start: 5, end: 5}\n", camera=YARD))
    assert es.episodes[0].zone is None and es.episodes[0].start == es.episodes[0].end == 5.0
    with pytest.raises(
        ConfigError, match="unknown zone 'walkway' \\(line_crossing has no zone here: leave zone out\\)"
    ):
        load_episodes(write(tmp_path, "episodes:\n  - {rule: line_crossing, zone: walkway, start: 5, end: 5}\n", YARD))


def test_overlapping_episodes_of_different_subjects(tmp_path: Path) -> None:
    body = (
        "episodes:\n  - {rule: no_helmet, zone: walkway, subject: red coat, start: 10, end: 20}\n"
        "  - {rule: no_helmet, zone: walkway, subject: blue cap, start: 12, end: 15}\n"
        "  - {rule: no_helmet, zone: walkway, subject: red coat, start: 20, end: 30}\n"
    )
    es = load_episodes(write(tmp_path, body, camera=YARD))
    assert [(e.subject, e.start, e.end) for e in es.episodes] == [
        ("red coat", 10.0, 20.0), ("blue cap", 12.0, 15.0), ("red coat", 20.0, 30.0)
    ]  # fmt: skip
