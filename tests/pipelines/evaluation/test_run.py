"""The evaluator on the real pipeline (real models, real footage): the committed gate episodes, a small sweep, and
parameter overrides. Replays are shared through one cache for the module (identical configs replay once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.evaluation.episodes import EpisodeSet, load_episodes
from pipelines.evaluation.metrics import OVERALL, Outcome
from pipelines.evaluation.report import as_json, sweep_svg, text, timeline_svg, write_html
from pipelines.evaluation.run import EvaluationError, ReplayCache, apply_overrides, evaluate, parse_sweep, sweep
from vision.detect.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[3]
GATE = ROOT / "sample_media" / "vtest.gate.episodes.yaml"
CACHE: ReplayCache = {}


@pytest.fixture(scope="module")
def gate() -> EpisodeSet:
    return load_episodes(GATE)


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(ROOT / "models")


@pytest.mark.slow
@pytest.mark.timeout(900)  # one real replay: ~30 s of CPU, much longer on a loaded machine
def test_committed_gate_episodes_on_the_real_pipeline(gate: EpisodeSet, registry: ModelRegistry) -> None:
    ev = evaluate([gate], registry, cache=CACHE)
    intrusion, exit_blocked = ev.totals["intrusion"], ev.totals["exit_blocked"]
    assert (exit_blocked.tp, exit_blocked.fp, exit_blocked.missed) == (1, 0, 0)
    assert 10.0 <= exit_blocked.delays[0] <= 30.0  # dwell_seconds 20 of the demo camera
    assert intrusion.episodes == 5 and intrusion.recall is not None and intrusion.recall >= 0.9
    assert intrusion.precision is not None and intrusion.precision >= 0.9
    assert intrusion.median_delay_s is not None and 0.0 <= intrusion.median_delay_s <= 2.0  # min_seconds 1
    clip = ev.clips[0]
    assert all(m.incident.offset_s <= gate.duration_s for m in clip.matches)
    assert {m.outcome for m in clip.matches} <= {Outcome.tp, Outcome.ignored, Outcome.fp, Outcome.duplicate}
    out = as_json(ev)
    assert out["rules"][OVERALL]["episodes"] == 6 and len(out["clips"][0]["incidents"]) == len(clip.matches)
    assert "intrusion" in text(ev) and "<svg" in timeline_svg(clip)


@pytest.mark.slow
@pytest.mark.timeout(900)  # one more real replay (min_seconds 1 is the cached base run)
def test_sweep_min_seconds(gate: EpisodeSet, registry: ModelRegistry, tmp_path: Path) -> None:
    """A longer confirmation time cannot add intrusion incidents and delays those it keeps."""
    runs = sweep([gate], registry, "rules.intrusion.min_seconds", [1, 3], cache=CACHE)
    assert [v for v, _ in runs] == [1, 3]
    short, long_ = (ev.totals["intrusion"] for _, ev in runs)
    alarms = [c.tp + c.fp + c.duplicates + c.ignored for c in (short, long_)]
    assert alarms[1] <= alarms[0]
    assert long_.median_delay_s is None or (short.median_delay_s or 0.0) < long_.median_delay_s
    assert runs[1][1].clips[0].camera.rules[1].min_seconds == 3.0
    assert runs[0][1].totals["exit_blocked"].tp == runs[1][1].totals["exit_blocked"].tp == 1
    html = write_html(tmp_path / "report", runs[0][1], ("rules.intrusion.min_seconds", runs)).read_text()
    assert html.count("<svg") == 2 and "Sweep rules.intrusion.min_seconds" in html
    assert "<polyline" in sweep_svg("x", runs)


def test_overrides_address_rules_by_type_name_or_index(gate: EpisodeSet) -> None:
    cam = apply_overrides(gate.camera, [("rules.intrusion.min_seconds", 2.5), ("zones.fire_lane.min_overlap", 0.7)])
    assert cam.rules[1].min_seconds == 2.5 and cam.zones[0].min_overlap == 0.7
    assert apply_overrides(gate.camera, [("rules.0.dwell_seconds", 5)]).rules[0].dwell_seconds == 5.0  # type: ignore[union-attr]
    assert all(r.min_confidence == 0.4 for r in apply_overrides(gate.camera, [("conf", 0.4)]).rules)
    assert apply_overrides(gate.camera, [("analysis_fps", 2)]).analysis_fps == 2
    with pytest.raises(EvaluationError, match="matches nothing in camera demo-gate"):
        apply_overrides(gate.camera, [("rules.loitering.dwell_seconds", 3)])
    with pytest.raises(EvaluationError, match=r"rules\.0\.exit_blocked\.speed: Extra inputs are not permitted"):
        apply_overrides(gate.camera, [("rules.exit_blocked.speed", 3)])
    with pytest.raises(EvaluationError, match="greater than or equal to 0"):
        apply_overrides(gate.camera, [("rules.intrusion.min_seconds", -1)])


def test_parse_sweep() -> None:
    assert parse_sweep("rules.intrusion.min_seconds=0.5,1, 2") == ("rules.intrusion.min_seconds", [0.5, 1, 2])
    assert parse_sweep("detect.mode=full,regions") == ("detect.mode", ["full", "regions"])
    for bad in ("conf", "=1,2", "conf=", "conf=,"):
        with pytest.raises(EvaluationError, match="expected PARAM=V1,V2"):
            parse_sweep(bad)


@pytest.mark.slow
@pytest.mark.timeout(900)  # one real replay of the yard camera (person model + helmet model on crops)
def test_committed_yard_episodes_score_no_helmet_per_person(registry: ModelRegistry) -> None:
    """The demo yard: 22 per-person walkway stays (overlapping episodes of different subjects); the helmet model on
    enlarged upper-body crops at the analysis rate reports nearly every one, once."""
    yard = load_episodes(ROOT / "sample_media" / "vtest.yard.episodes.yaml")
    assert sum(e.rule == "no_helmet" for e in yard.episodes) == 22
    ev = evaluate([yard], registry, cache=CACHE)
    helmet = ev.totals["no_helmet"]
    assert helmet.recall is not None and helmet.recall >= 0.9
    assert helmet.precision is not None and helmet.precision >= 0.9
    assert helmet.duplicates == 0 and helmet.fp == 0
