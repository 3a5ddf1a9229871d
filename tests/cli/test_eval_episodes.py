"""`safewatch eval --episodes`: bad input exits 2 naming the file and line (before any replay); one real run of the
committed gate episodes with --json, --report and a one-value --sweep (the same config as the base run, so the
replay cache makes it a single replay)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "sample_media" / "vtest.mp4"
GATE_CAMERA = ROOT / "camera_configs" / "demo-gate.yaml"
GATE = ROOT / "sample_media" / "vtest.gate.episodes.yaml"
MODELS = ["--models-dir", str(ROOT / "models")]


def bad_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.episodes.yaml"
    path.write_text(f"clip: {CLIP}\ncamera: {GATE_CAMERA}\n{body}", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("episodes:\n  - {rule: smoke_fire, start: 1, end: 2}\n", "episodes.0.rule: camera demo-gate runs no rule"),
        ("episodes:\n  - {rule: intrusion, zone: roof, start: 1, end: 2}\n", "episodes.0.zone: unknown zone 'roof'"),
        ("episodes:\n  - {rule: intrusion, zone: footpath, start: 70, end: 99}\n", "lies outside the clip"),
        (
            "episodes:\n  - {rule: intrusion, zone: footpath, start: 1, end: 5}\n"
            "  - {rule: intrusion, zone: footpath, start: 4, end: 6}\n",
            "episodes.1: overlaps episodes.0 (line 4)",
        ),
        ("episodes: [\n", "YAML syntax error"),
    ],
    ids=["unknown-rule", "unknown-zone", "outside-clip", "overlap", "malformed"],
)
def test_bad_episodes_exit_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    path = bad_file(tmp_path, body)
    assert main(["eval", "--episodes", str(GATE), str(path), *MODELS]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: ") and expected in err and "(line " in err
    assert "replaying" not in err  # every file is checked before the first replay


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--sweep", "rules.intrusion.min_seconds"], "expected PARAM=V1,V2"),
        (["--sweep", "rules.loitering.dwell_seconds=1,2"], "matches nothing in camera demo-gate"),
        (["--set", "rules.intrusion.min_seconds=-1"], "greater than or equal to 0"),
        (["--set", "conf=0.3,0.4"], "one value expected"),
        (["--conf", "1.5"], "less than or equal to 1"),
        (["--tolerance", "-1"], "--tolerance must be >= 0"),
        (["somemodel"], "--episodes takes no MODEL"),
    ],
)
def test_bad_flags_exit_2_before_any_replay(
    capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    assert main(["eval", "--episodes", str(GATE), *MODELS, *flags]) == 2
    err = capsys.readouterr().err
    assert expected in err and "replaying" not in err


def test_model_or_episodes_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval"]) == 2
    assert "give MODEL" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(900)  # one real replay: ~30 s of CPU, much longer on a loaded machine
def test_gate_episodes_json_report_and_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "--episodes", str(GATE), *MODELS, "--json", "--report", str(tmp_path / "report")]
    assert main([*args, "--sweep", "rules.intrusion.min_seconds=1"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("replaying vtest.mp4 with camera demo-gate") == 2  # base run and the sweep's one value
    out = json.loads(captured.out)
    assert out["tolerance_s"] == 2.0 and list(out["rules"]) == ["exit_blocked", "intrusion", "overall"]
    for rule in ("exit_blocked", "intrusion"):
        assert out["rules"][rule]["precision"] >= 0.9 and out["rules"][rule]["recall"] >= 0.9
    assert out["rules"]["overall"]["episodes"] == 6 and out["clips"][0]["camera"] == "demo-gate"
    assert out["sweep"]["param"] == "rules.intrusion.min_seconds"
    assert out["sweep"]["runs"][0]["rules"]["intrusion"] == out["rules"]["intrusion"]  # same config, same replay
    html = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 2 and "vtest.gate.episodes.yaml" in html and "intrusion / footpath" in html
