"""`CameraState`: the one vocabulary for what a camera is doing, from which status, metrics and API views derive.

A camera's life in a worker: STARTING while its pipeline is built (models, sources); while the pipeline runs, its
source's state (`vision.sources.SourceState`, mapped once here by `CameraState.of_source`); then STOPPED (a file
played to its end) or ERROR (it cannot run as configured, its source failed or it crashed; the worker retries with
back-off). Every member is produced by someone: nothing advertises a state that never occurs.
"""

from __future__ import annotations

from enum import StrEnum

from vision.sources import SourceState


class CameraState(StrEnum):
    STARTING = "starting"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    FAILED = "failed"
    ERROR = "error"

    @classmethod
    def of_source(cls, state: SourceState) -> CameraState:
        """The camera state while its pipeline runs: what its source reports."""
        return _FROM_SOURCE[state]


_FROM_SOURCE: dict[SourceState, CameraState] = {
    SourceState.CONNECTING: CameraState.CONNECTING,
    SourceState.STREAMING: CameraState.STREAMING,
    SourceState.RECONNECTING: CameraState.RECONNECTING,
    SourceState.STOPPED: CameraState.STOPPED,
    SourceState.FAILED: CameraState.FAILED,
}
