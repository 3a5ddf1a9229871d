"""`CameraWorker` config-dir reconciliation with real cameras (looped real-time file sources, the real default model).

One worker, one config dir, and the lifecycle an operator (or the HTTP API) drives through files: add a camera →
it starts; change it → it restarts with the new config; break its YAML → the last good config keeps running and the
problem is logged; delete it → it stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipelines.camera.sinks import CountingSink
from pipelines.camera.state import CameraState
from pipelines.worker.camera_worker import CameraStatus, CameraWorker
from tests.pipelines.e2e import harness

POLL_S = 0.3
WAIT_S = 15.0


def _write(path: Path, camera_id: str, analysis_fps: float = 2.0) -> None:
    """A looped vtest camera with the quiet-lawn intrusion rule (the model runs; no incidents)."""
    camera = harness.load("quiet_lawn.yaml")
    harness.write_camera(camera, path, id=camera_id, name=camera_id, analysis_fps=analysis_fps)


def _wait(predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _status(worker: CameraWorker) -> dict[str, CameraStatus]:
    return {s.camera_id: s for s in worker.status()}


def _running(worker: CameraWorker, camera_id: str, min_frames: int = 3) -> bool:
    s = _status(worker).get(camera_id)
    return s is not None and s.error is None and s.frames >= min_frames


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[CameraWorker]:
    configs = tmp_path / "cameras"
    configs.mkdir()
    _write(configs / "cam-a.yaml", "cam-a")
    w = CameraWorker(configs, harness.registry(), [CountingSink()], realtime_files=True, loop_files=True, poll_s=POLL_S)
    w.start()
    yield w
    w.stop(timeout=20)


@pytest.mark.slow
def test_config_dir_reconciliation(worker: CameraWorker, caplog: pytest.LogCaptureFixture) -> None:
    configs = worker.config_dir
    assert configs is not None
    assert _wait(lambda: _running(worker, "cam-a")), worker.status()

    # a second camera appears → it starts within a few seconds
    _write(configs / "cam-b.yaml", "cam-b")
    t0 = time.monotonic()
    assert _wait(lambda: _running(worker, "cam-b", min_frames=1)), worker.status()
    assert time.monotonic() - t0 < 5.0
    assert _running(worker, "cam-a")

    # the first camera's config changes → it restarts with the new config (a new pipeline: frame count starts over)
    assert _wait(lambda: _status(worker)["cam-a"].frames >= 20, 20), worker.status()
    _write(configs / "cam-a.yaml", "cam-a", analysis_fps=3.0)
    assert _wait(lambda: "cam-a" in _status(worker) and _status(worker)["cam-a"].frames < 10), worker.status()
    assert _wait(lambda: _running(worker, "cam-a")), worker.status()

    # an invalid YAML → the last good config keeps running, and the problem is logged with file and field
    with caplog.at_level(logging.ERROR, logger="pipelines.worker.camera_worker"):
        (configs / "cam-a.yaml").write_text(
            "id: cam-a\nsite: e2e\nname: a\nstreams: {detect: x.mp4}\nanalysis_fps: -1\n"
        )
        assert _wait(lambda: any("analysis_fps" in r.getMessage() for r in caplog.records)), caplog.text
    before = _status(worker)["cam-a"].frames
    assert _wait(lambda: _status(worker)["cam-a"].frames > before + 2), worker.status()
    assert _status(worker)["cam-a"].error is None
    assert any("cam-a.yaml" in r.getMessage() for r in caplog.records)

    # the file is deleted → the camera stops; the other one keeps running
    (configs / "cam-a.yaml").unlink()
    assert _wait(lambda: "cam-a" not in _status(worker)), worker.status()
    assert _running(worker, "cam-b")


def test_camera_states_follow_the_lifecycle(tmp_path: Path) -> None:
    """A file played once ends STOPPED and is not restarted; a camera whose model is missing reports ERROR."""
    configs = tmp_path / "cameras"
    configs.mkdir()
    _write(configs / "once.yaml", "once", analysis_fps=0.5)
    broken = harness.load("quiet_lawn.yaml")
    harness.write_camera(broken, configs / "broken.yaml", id="broken", name="broken", models=["no-such-model"])
    w = CameraWorker(configs, harness.registry(), [CountingSink()], realtime_files=False, loop_files=False, poll_s=0.2)

    w.start()
    try:
        assert _wait(lambda: _status(w)["once"].state is CameraState.STOPPED, 60), w.status()
        frames = _status(w)["once"].frames
        assert frames > 0 and _status(w)["once"].error is None
        assert _wait(lambda: _status(w)["broken"].state is CameraState.ERROR), w.status()
        assert "no-such-model" in (_status(w)["broken"].error or "")
        time.sleep(1.0)  # several reconcile rounds: the finished file is not restarted
        assert _status(w)["once"].state is CameraState.STOPPED and _status(w)["once"].frames == frames
    finally:
        w.stop(timeout=20)
