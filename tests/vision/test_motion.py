"""Motion gate and static-scene model: synthetic sequences with known answers, and the real sample clip."""

from __future__ import annotations

import pathlib

import av
import numpy as np
import pydantic
import pytest

from vision.geometry import Zone
from vision.motion import MotionGate, MotionGateConfig, StaticSceneConfig, StaticSceneModel, small_gray
from vision.types import FloatArray, ImageArray

W, H = 320, 240


def rgb(f: av.VideoFrame) -> ImageArray:
    return np.asarray(f.to_ndarray(format="rgb24"), dtype=np.uint8)


def background(seed: int = 0) -> FloatArray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(60, 180, size=(H // 16, W // 16)).astype(np.float32)
    return np.kron(coarse, np.ones((16, 16), dtype=np.float32))


BG = background()


def frame(
    t: float,
    boxes: list[tuple[int, int, int, int, int]] | None = None,
    gain: float = 1.0,
    noise_seed: int | None = None,
) -> ImageArray:
    """An RGB frame: textured background, sensor noise, and solid boxes (x1, y1, x2, y2, gray value)."""
    img = BG * gain
    rng = np.random.default_rng(noise_seed if noise_seed is not None else round(t * 1000))
    img = img + rng.normal(0, 3, size=img.shape).astype(np.float32)
    for x1, y1, x2, y2, v in boxes or []:
        img[y1:y2, x1:x2] = v
    gray = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def run(model: StaticSceneModel, fps: float, until: float, boxes_at: object, start: float = 0.0) -> list[float]:
    """Feed frames from `start` to `until`; `boxes_at(t)` gives the boxes; returns the static fraction per frame."""
    fractions = []
    n = round((until - start) * fps)
    for i in range(n + 1):
        t = start + i / fps
        mask = model.update(frame(t, boxes_at(t)), t)  # type: ignore[operator]
        fractions.append(float(mask.mean()) if mask.size else 0.0)
    return fractions


def cfg(**kw: object) -> StaticSceneConfig:
    base: dict[str, object] = {"learn_s": 1.0, "learn_samples": 5, "dwell_s": 3.0, "short_tau_s": 0.5}
    return StaticSceneConfig.model_validate({**base, **kw})


# A "pallet" parked from t = 2 s at x 80..160, y 120..200 (of 320x240): 1/4 of a zone covering x 80..240, y 80..240
PALLET = (80, 120, 160, 200, 240)
ZONE = Zone([[0.25, 1 / 3], [0.75, 1 / 3], [0.75, 1.0], [0.25, 1.0]], name="lane")


@pytest.mark.parametrize("fps", [2.0, 5.0, 25.0])
def test_object_that_arrives_and_stays_becomes_static_after_dwell(fps: float) -> None:
    model = StaticSceneModel(cfg())
    run(model, fps, 1.9, lambda t: [])
    assert model.ready and not model.mask.any()
    run(model, fps, 4.5, lambda t: [PALLET], start=2.0)  # 2.5 s after arrival: not yet (dwell 3 s + settling)
    assert model.occupancy(ZONE) < 0.05
    run(model, fps, 8.0, lambda t: [PALLET], start=4.5 + 1 / fps)
    occupancy = model.occupancy(ZONE)
    assert occupancy == pytest.approx(0.25, abs=0.03)
    ys, xs = np.nonzero(model.mask)  # the mask sits on the pallet (mask is 160 x 120)
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == pytest.approx((40, 60, 79, 99), abs=2)


def test_object_moving_across_never_becomes_static() -> None:
    model = StaticSceneModel(cfg(dwell_s=2.0))
    run(model, 10, 1.9, lambda t: [])

    def walker(t: float) -> list[tuple[int, int, int, int, int]]:
        x = int(10 + (t - 2.0) * 40)  # 40 px/s, a 20x50 person: crosses its own width in 0.5 s
        return [(x, 100, x + 20, 150, 20)]

    fractions = run(model, 10, 9.0, walker, start=2.0)
    assert max(fractions) == 0.0


def test_object_that_leaves_is_cleared_quickly() -> None:
    model = StaticSceneModel(cfg())
    run(model, 5, 1.9, lambda t: [])
    run(model, 5, 7.0, lambda t: [PALLET], start=2.0)
    assert model.occupancy(ZONE) > 0.1
    fractions = run(model, 5, 9.0, lambda t: [], start=7.2)
    cleared_after = next(i for i, f in enumerate(fractions) if f == 0.0) / 5
    assert cleared_after <= 1.5  # a few short-term time constants


def test_passer_by_does_not_reset_a_static_object() -> None:
    model = StaticSceneModel(cfg())
    run(model, 5, 1.9, lambda t: [])
    run(model, 5, 7.0, lambda t: [PALLET], start=2.0)
    before = model.occupancy(ZONE)

    def with_walker(t: float) -> list[tuple[int, int, int, int, int]]:
        x = int(40 + (t - 7.2) * 100)
        return [PALLET, (x, 110, x + 20, 210, 20)]

    fractions = run(model, 5, 9.0, with_walker, start=7.2)
    assert before > 0.1
    assert min(fractions) > 0.5 * before * ZONE.area  # dents where the walker is, never cleared
    assert model.occupancy(ZONE) == pytest.approx(before, abs=0.03)


@pytest.mark.parametrize(("compensate", "static"), [(True, False), (False, True)])
def test_global_illumination_change(compensate: bool, static: bool) -> None:
    model = StaticSceneModel(cfg(compensate_gain=compensate))
    run(model, 5, 1.9, lambda t: [])
    for i in range(40):  # lights up by 35 % at t = 2 s, for 8 s
        t = 2.0 + i / 5
        model.update(frame(t, gain=1.35), t)
    assert bool(model.mask.mean() > 0.2) is static


def test_absorb_after_makes_long_static_objects_background() -> None:
    model = StaticSceneModel(cfg(absorb_after_s=5.0))
    run(model, 5, 1.9, lambda t: [])
    run(model, 5, 6.0, lambda t: [PALLET], start=2.0)
    assert model.occupancy(ZONE) > 0.1
    run(model, 5, 9.0, lambda t: [PALLET], start=6.2)
    assert model.occupancy(ZONE) == 0.0


def test_reference_can_be_set_and_relearned() -> None:
    model = StaticSceneModel(cfg())
    model.set_reference(frame(0.0))
    assert model.ready
    run(model, 5, 4.0, lambda t: [PALLET])
    assert model.occupancy(ZONE) > 0.1
    model.reset_reference()  # the site says: this is the clear scene now
    assert not model.ready and model.occupancy(ZONE) == 0.0
    run(model, 5, 6.0, lambda t: [PALLET], start=0.0)
    assert model.ready and model.occupancy(ZONE) == 0.0


def test_learning_median_ignores_people_walking_through() -> None:
    model = StaticSceneModel(cfg(learn_s=3.0, learn_samples=9))

    def walker(t: float) -> list[tuple[int, int, int, int, int]]:
        x = int(t * 80)
        return [(x, 100, x + 20, 150, 20)] if t < 3 else []

    run(model, 10, 8.0, walker)
    assert model.reference is not None
    assert np.abs(model.reference - small_gray(frame(0.0, noise_seed=1), 160)).mean() < 3.0
    assert not model.mask.any()


def test_frame_size_change_restarts_and_pts_must_be_finite() -> None:
    model = StaticSceneModel(cfg())
    run(model, 5, 2.0, lambda t: [])
    assert model.ready
    model.update(np.zeros((100, 100, 3), dtype=np.uint8), 2.2)
    assert not model.ready and model.mask.shape == (160, 160)
    with pytest.raises(ValueError, match="pts"):
        model.update(frame(0), float("inf"))
    with pytest.raises(ValueError, match="HxWx3"):
        model.update(np.zeros((10, 10, 4), dtype=np.uint8), 3.0)


@pytest.mark.parametrize(
    ("model", "fields", "error"),
    [
        (StaticSceneConfig, {"dwell_s": -1}, "dwell_s"),
        (StaticSceneConfig, {"short_tau_s": 0}, "short_tau_s"),
        (StaticSceneConfig, {"width": 8}, "width"),
        (StaticSceneConfig, {"absorb_after_s": 0}, "absorb_after_s"),
        (StaticSceneConfig, {"dwell": 3}, "dwell"),
        (MotionGateConfig, {"max_interval_s": 0}, "max_interval_s"),
        (MotionGateConfig, {"min_changed_fraction": 2}, "min_changed_fraction"),
        (MotionGateConfig, {"threshold": 3}, "threshold"),
    ],
)
def test_config_validation(model: type[pydantic.BaseModel], fields: dict[str, object], error: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=error):
        model.model_validate(fields)


def test_motion_gate_decisions() -> None:
    gate = MotionGate(MotionGateConfig(max_interval_s=2.0))
    assert gate.check(frame(0.0), 0.0).reason == "first"
    still = gate.check(frame(0.2), 0.2)
    assert not still.run and still.reason == "still" and still.changed_fraction < 0.002
    moved = gate.check(frame(0.4, [(100, 100, 140, 180, 20)]), 0.4)
    assert moved.run and moved.reason == "motion" and moved.changed_fraction == pytest.approx(0.04, abs=0.01)
    assert not gate.check(frame(0.6, [(100, 100, 140, 180, 20)]), 0.6).run  # it stopped moving
    assert gate.check(frame(2.4, [(100, 100, 140, 180, 20)]), 2.4).reason == "interval"
    assert gate.check(frame(2.6, [(100, 100, 140, 180, 20)]), 2.6).reason == "still"


def test_motion_gate_accumulates_slow_change() -> None:
    gate = MotionGate(MotionGateConfig(max_interval_s=100.0))
    gate.check(frame(0.0), 0.0)
    runs = []
    for i in range(1, 30):  # a box creeping 2 px per frame: each step alone is below the threshold
        x = 100 + 2 * i
        runs.append(gate.check(frame(i / 10, [(x, 100, x + 40, 180, 20)]), i / 10).run)
    assert any(runs)


def test_motion_gate_disabled_always_runs() -> None:
    gate = MotionGate(MotionGateConfig(enabled=False))
    assert all(gate.check(frame(0.0), t).run for t in (0.0, 0.1, 0.2))


def test_motion_gate_on_real_clips(sample_clip: pathlib.Path, negative_clip: pathlib.Path) -> None:
    """vtest always has someone walking; the night skyline is mostly still, so most frames are skipped."""
    for clip, lo, hi in ((sample_clip, 0.95, 1.0), (negative_clip, 0.2, 0.7)):
        gate = MotionGate()
        with av.open(str(clip)) as container:
            runs = [gate.check(rgb(f), float(f.time)).run for f in container.decode(video=0)]
        assert lo <= sum(runs) / len(runs) <= hi, f"{clip.name}: ran on {sum(runs)} of {len(runs)} frames"


def test_static_scene_on_the_real_clip(sample_clip: pathlib.Path) -> None:
    """People walking (and chatting for a few seconds) never form static blobs; the van parked from the start is
    part of the learned reference, so it is never static either (obstruction is relative to the reference)."""
    model = StaticSceneModel()
    van = Zone([[0.83, 0.06], [0.95, 0.06], [0.95, 0.18], [0.83, 0.18]], name="van")
    path = Zone([[0.0, 0.3], [1.0, 0.3], [1.0, 0.8], [0.0, 0.8]], name="path")
    ever = None
    worst_path = 0.0
    with av.open(str(sample_clip)) as container:
        for f in container.decode(video=0):
            mask = model.update(rgb(f), float(f.time))
            if model.ready:
                ever = mask.copy() if ever is None else ever | mask
                worst_path = max(worst_path, model.occupancy(path))
                assert model.occupancy(van) == 0.0
    assert ever is not None
    assert worst_path < 0.005
    assert ever.mean() < 0.005
