"""BatchingDetector: batched results equal unbatched ones, routing, fairness, error isolation, shutdown."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Sequence
from concurrent.futures import Future, wait

import numpy as np
import onnx
import pytest

from tests.vision.detect.helpers import DEFAULT, built_default_models_dir, make_v8_conv, write_card
from vision.detect.batcher import BatcherClosedError, BatcherPool, BatchingConfig, BatchingDetector
from vision.detect.detector import Detector
from vision.detect.errors import ImageError
from vision.detect.images import sample_frames
from vision.detect.registry import ModelRegistry
from vision.types import Detections

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def default_detector() -> Detector:
    models = built_default_models_dir()
    return Detector(ModelRegistry(models).card(DEFAULT), models)


@pytest.fixture(scope="module")
def frames(sample_clip: pathlib.Path) -> list[np.ndarray]:
    """24 distinct real frames of vtest.mp4 (every 30th)."""
    return sample_frames(sample_clip, 24, step=30)


@pytest.fixture(scope="module")
def unbatched(default_detector: Detector, frames: list[np.ndarray]) -> list[Detections]:
    return [default_detector.detect(f) for f in frames]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A tiny real v8-layout model (dynamic batch) and a copy with a fixed batch of 1."""
    d = tmp_path_factory.mktemp("tiny")
    make_v8_conv(d / "tiny.onnx", ["person"])
    write_card(d)
    model = onnx.load(str(d / "tiny.onnx"))
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, str(d / "fixed.onnx"))
    write_card(d, name="fixed", file="fixed.onnx", dynamic_batch=False)
    return d


@pytest.fixture
def tiny(tiny_dir: pathlib.Path) -> Detector:
    return Detector(ModelRegistry(tiny_dir).card("tiny"), tiny_dir)


def assert_same(got: Detections, want: Detections) -> None:
    assert len(got) == len(want)
    np.testing.assert_allclose(got.xyxy, want.xyxy, atol=1e-3)
    np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-5)
    assert list(got.label) == list(want.label)


def rand_image(seed: int, hw: tuple[int, int] = (96, 128)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (*hw, 3), dtype=np.uint8)


def test_batched_equals_unbatched_on_real_frames(
    default_detector: Detector, frames: list[np.ndarray], unbatched: list[Detections]
) -> None:
    assert default_detector.io.dynamic_batch
    sizes: list[int] = []
    batcher = BatchingDetector(
        default_detector, BatchingConfig(max_wait_ms=200), on_batch=lambda k: sizes.append(len(k))
    )
    try:
        futures = [batcher.submit(f, key=f"cam{i}") for i, f in enumerate(frames[:8])]
        for fut, want in zip(futures, unbatched[:8], strict=True):
            assert_same(fut.result(timeout=30), want)
    finally:
        batcher.close()
    assert sum(sizes) == 8 and max(sizes) > 1  # really batched
    assert sum(len(d) for d in unbatched[:8]) > 20  # real detections were compared, not empty lists


def test_eight_cameras_concurrently_get_their_own_results(
    default_detector: Detector, frames: list[np.ndarray], unbatched: list[Detections]
) -> None:
    batcher = BatchingDetector(default_detector, BatchingConfig(max_wait_ms=10))
    views = [batcher.for_camera(f"cam{i}") for i in range(8)]
    got: dict[int, Detections] = {}
    errors: list[BaseException] = []

    def camera(i: int) -> None:
        try:
            for j in range(3):  # camera i analyses frames i, i+8, i+16
                got[i + 8 * j] = views[i].detect(frames[i + 8 * j])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(45)
    finally:
        batcher.close()
    assert not errors
    assert sorted(got) == list(range(24))
    for k, det in got.items():
        assert_same(det, unbatched[k])
    assert batcher.stats.frames == 24 and batcher.stats.max_size > 1 and batcher.stats.direct == 0


def test_busy_camera_cannot_starve_the_others(tiny: Detector) -> None:
    batches: list[Sequence[str]] = []
    batcher = BatchingDetector(tiny, BatchingConfig(max_batch=4, max_wait_ms=2), on_batch=batches.append)
    image = rand_image(0)
    stop = threading.Event()
    hog: list[Future[Detections]] = []
    waits: list[int] = []  # batches started between a steady camera's submit and the batch that served it

    def flood() -> None:
        while not stop.is_set() and len(hog) < 3000:
            hog.append(batcher.submit(image, key="hog"))

    def steady(key: str) -> None:
        for n in range(15):
            before = len(batches)
            batcher.submit(image, key=key).result(timeout=10)
            served = [i for i, keys in enumerate(list(batches)) if key in keys][n]  # FIFO per camera
            waits.append(served - before)
            stop.wait(0.005)

    flooder = threading.Thread(target=flood)
    flooder.start()
    cams = [threading.Thread(target=steady, args=(f"cam{i}",)) for i in range(3)]
    for t in cams:
        t.start()
    for t in cams:
        t.join(30)
    stop.set()
    flooder.join(10)
    hog_pending = sum(not f.done() for f in hog)
    batcher.close()
    assert len(waits) == 45
    # served by the next batch or the one after (the batch being assembled while it was submitted may be counted
    # first), never behind the hog's queue of > 20 frames
    assert max(waits) <= 2, waits
    assert hog_pending > 20  # the hog really had a long queue the others did not wait behind
    assert all(len(set(keys)) == len(keys) for keys in batches)  # never two frames of one camera in a batch
    assert sum(keys.count("hog") for keys in batches) >= 45 // 3  # and the hog was served too


def test_an_error_reaches_only_the_caller_of_that_frame(tiny: Detector) -> None:
    batches: list[Sequence[str]] = []
    batcher = BatchingDetector(tiny, BatchingConfig(max_wait_ms=300), on_batch=batches.append)
    try:
        good = [batcher.submit(rand_image(i), key=f"cam{i}") for i in range(3)]
        bad = batcher.submit(np.zeros((10, 10), np.uint8), key="broken")
        more = batcher.submit(rand_image(9), key="cam9")
        with pytest.raises(ImageError, match="HxWx3"):
            bad.result(timeout=10)
        for i, fut in enumerate(good):
            assert_same(fut.result(timeout=10), tiny.detect(rand_image(i)))
        assert_same(more.result(timeout=10), tiny.detect(rand_image(9)))
    finally:
        batcher.close()
    assert ["cam0", "cam1", "cam2", "broken", "cam9"] in [list(b) for b in batches]  # one batch held them all
    assert batcher.stats.failed_batches == 1


def test_close_fails_pending_requests_without_hanging(default_detector: Detector, frames: list[np.ndarray]) -> None:
    batcher = BatchingDetector(default_detector, BatchingConfig(max_wait_ms=1))
    futures = [batcher.submit(frames[i], key="cam1") for i in range(12)]  # one per batch: most are still queued
    batcher.close(timeout=30)
    _, not_done = wait(futures, timeout=5)
    assert not not_done
    outcomes = [f.exception() for f in futures]
    assert any(isinstance(e, BatcherClosedError) for e in outcomes)
    assert all(e is None or isinstance(e, BatcherClosedError) for e in outcomes)
    with pytest.raises(BatcherClosedError):
        batcher.submit(frames[0], key="cam1")
    with pytest.raises(BatcherClosedError):
        batcher.for_camera("cam2").detect(frames[0])


def test_fixed_batch_model_runs_frames_one_by_one(tiny_dir: pathlib.Path) -> None:
    fixed = Detector(ModelRegistry(tiny_dir).card("fixed"), tiny_dir)
    assert not fixed.io.dynamic_batch
    batcher = BatchingDetector(fixed)
    views = [batcher.for_camera(f"cam{i}") for i in range(3)]
    results: dict[int, Detections] = {}

    def camera(i: int) -> None:
        results[i] = views[i].detect(rand_image(i))

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    batcher.close()
    assert sorted(results) == [0, 1, 2]
    for i, det in results.items():
        assert_same(det, fixed.detect(rand_image(i)))
    assert batcher.stats.batches == 0 and batcher.stats.direct == 3


def test_pool_shares_one_batcher_and_closes_it_with_the_last_camera(tiny: Detector) -> None:
    pool = BatcherPool(BatchingConfig(max_wait_ms=5))
    a, b = pool.for_camera(tiny, "a"), pool.for_camera(tiny, "b")
    assert a.batcher is b.batcher and a.batcher.cameras == 2 and a.name == tiny.name
    assert_same(a.detect(rand_image(1)), tiny.detect(rand_image(1)))
    a.close()
    a.close()  # idempotent
    assert b.batcher.cameras == 1 and not b.batcher.closed
    assert_same(b.detect(rand_image(2)), tiny.detect(rand_image(2)))  # one camera left: runs directly
    b.close()
    assert b.batcher.closed and pool.batchers == []
    c = pool.for_camera(tiny, "c")  # a fresh batcher once the old one is gone
    assert c.batcher is not b.batcher and not c.batcher.closed
    pool.close()
    assert c.batcher.closed


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({}, True),
        ({"max_batch": 4, "max_wait_ms": 0}, True),
        ({"max_batch": 0}, False),
        ({"max_wait_ms": -1}, False),
        ({"max_wait_ms": 5000}, False),
        ({"batch": 4}, False),
    ],
)
def test_config_validation(fields: dict[str, object], ok: bool) -> None:
    if ok:
        assert BatchingConfig.model_validate(fields).max_wait_ms >= 0
    else:
        with pytest.raises(ValueError):
            BatchingConfig.model_validate(fields)
