"""`CameraState`: one vocabulary, with a single mapping from the source's states."""

from __future__ import annotations

from pipelines.camera.state import CameraState
from vision.sources import SourceState


def test_every_source_state_maps_to_the_camera_state_of_the_same_name() -> None:
    for state in SourceState:
        assert CameraState.of_source(state).value == state.value


def test_the_worker_adds_only_its_own_lifecycle_states() -> None:
    from_source = {CameraState.of_source(s) for s in SourceState}
    assert set(CameraState) - from_source == {CameraState.STARTING, CameraState.ERROR}
    assert "stalled" not in {s.value for s in CameraState}  # nothing produces it
