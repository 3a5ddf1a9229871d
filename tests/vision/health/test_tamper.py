"""`TamperDetector` on real footage: the sample clip with tamper episodes made by ffmpeg
(tests/fixtures/tamper_clips.py) reads covered / defocused / moved inside each episode and healthy outside; the
unaltered clip, simulated dusk, lights switching on and IR mode read healthy throughout; the night clip (a moving,
cut shot) never stays tampered for long."""

from __future__ import annotations

import pathlib

import av
import numpy as np
import numpy.typing as npt
import pytest

from tests.fixtures.tamper_clips import EPISODES
from vision.health.tamper import TamperConfig, TamperDetector, TamperReason
from vision.health.views import side_by_side

Reading = tuple[float, TamperReason | None]


def _readings(clip: pathlib.Path, config: TamperConfig | None = None) -> list[Reading]:
    detector = TamperDetector(config)
    out: list[Reading] = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            if not detector.due(t):
                continue
            reading = detector.check(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8), t)
            if reading is not None:
                out.append((t, reading.reason))
    return out


def test_each_episode_reads_its_reason_and_the_rest_reads_healthy(tamper_episodes_clip: pathlib.Path) -> None:
    readings = _readings(tamper_episodes_clip, TamperConfig(learn_s=4.0))
    assert readings[0][0] <= 6.0, "learned within about learn_s"
    for start, end, reason in EPISODES:
        inside = [r for t, r in readings if start + 0.5 <= t <= end - 0.5]
        assert inside and all(r == TamperReason(reason) for r in inside), (reason, inside)
    edges = [(s - 0.5, e + 1.5) for s, e, _ in EPISODES]
    outside = [(t, r) for t, r in readings if not any(a <= t <= b for a, b in edges)]
    assert len(outside) > 30
    assert [x for x in outside if x[1] is not None] == []


def test_unaltered_clip_and_lighting_changes_read_healthy(
    sample_clip: pathlib.Path, lighting_clips: dict[str, pathlib.Path]
) -> None:
    for name, clip in [("unaltered", sample_clip), *lighting_clips.items()]:
        readings = _readings(clip)
        assert len(readings) >= 65, name  # 79.5 s at one check a second, after 10 s of learning
        assert [x for x in readings if x[1] is not None] == [], name


def test_night_clip_never_reads_tampered_for_long(night_loop_clip: pathlib.Path) -> None:
    """The night clip pans and cuts to another shot (it is not a fixed camera): the cut reads `moved` for a few
    seconds each loop, never for anything near the default tamper_after_s (20 s); never covered or defocused."""
    readings = _readings(night_loop_clip)
    assert {r for _, r in readings} <= {None, TamperReason.moved}
    longest, start = 0.0, None
    for t, reason in readings:
        if reason is None:
            start = None
            continue
        start = t if start is None else start
        longest = max(longest, t - start)
    assert longest <= 5.0


def test_side_by_side_keeps_both_views() -> None:
    ref = np.full((60, 80, 3), 200, np.uint8)
    cur = np.zeros((120, 160, 3), np.uint8)
    image = side_by_side(ref, cur)
    assert image.shape == (120, 2 * 160 + 8, 3) and image.dtype == np.uint8
    assert image[10, 10].tolist() == [200, 200, 200] and image[10, 200].tolist() == [0, 0, 0]
    assert side_by_side(None, cur).shape == image.shape


@pytest.mark.parametrize("value", [0, 128, 255])
def test_a_uniform_view_is_never_learned(value: int) -> None:
    detector = TamperDetector(TamperConfig(learn_s=1.0))
    flat = np.full((240, 320, 3), value, np.uint8)
    for i in range(10):
        assert detector.check(flat, float(i)) is None
    assert not detector.ready


def _frames(clip: pathlib.Path, seconds: float) -> list[tuple[float, npt.NDArray[np.uint8]]]:
    out = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            if t > seconds:
                break
            out.append((t, np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)))
    return out


def test_a_still_view_is_judged_without_feature_matching(sample_clip: pathlib.Path) -> None:
    """One frame held still (sensor noise added) matches no features once learned; the same view shifted by 8 % of
    the width still reads moved (the shortcut only applies to a view that looks like the reference)."""
    ((_, still),) = _frames(sample_clip, 0.0)[:1]
    rng = np.random.default_rng(1)
    counted = {"features": 0}

    class Counting(TamperDetector):
        def _features(self, gray: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
            counted["features"] += 1
            return super()._features(gray)

    for still_change, expect_matching in ((0.1, False), (0.0, True)):
        detector = Counting(TamperConfig(learn_s=2.0, still_change=still_change))
        readings = []
        for second in range(12):
            noisy = np.clip(still + rng.normal(0, 2, still.shape), 0, 255).astype(np.uint8)
            reading = detector.check(noisy, float(second))
            readings.append(reading.reason if reading is not None else "learning")
        assert [r for r in readings if r != "learning"] == [None] * 9, readings
        counted["features"] = 0
        detector.check(still, 12.0)
        assert (counted["features"] > 0) is expect_matching
        shifted = np.zeros_like(still)
        shifted[48:, 64:] = still[:-48, :-64]
        reading = detector.check(shifted, 13.0)
        assert reading is not None and reading.reason == TamperReason.moved
