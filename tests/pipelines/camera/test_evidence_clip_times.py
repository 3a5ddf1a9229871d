"""Clip times in the manifest of a long live incident whose clips come from a `record` stream (the wall clock).

`CameraWorker` runs a camera on the GStreamer RTSP test server (looped vtest: the van stands in its bay from the
first frame) with `streams.record` set, so clips are cut on the wall clock, and `max_clip_s: 4`, so the incident is
split into several clips while it is open. Each clip's `start_offset_s` must sit at its planned window start (the
keyframe at or before it: one GOP earlier at most; clip 0's pre-roll is cut at the camera's start) and each
`duration_s` must be the clip file's first-to-last frame span. The media-clock case (clips from the detect stream's
ring) is tested through the API in tests/api/routers/test_incident_clips.py.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import av
import pytest
import yaml

from pipelines.camera.assemble import EvidenceOptions
from pipelines.camera.sinks import CallbackSink
from pipelines.events import EventType, IncidentEvent
from pipelines.worker.camera_worker import CameraWorker
from tests.fixtures.rtsp import RtspServer
from tests.pipelines.e2e import harness

GOP_S = 2.0  # vtest: GOP 20 at 10 fps
JITTER_S = 0.5  # packet wall times are arrival times: the record and detect streams arrive independently
FRAME_S = 0.1
PRE_ROLL_S, MAX_CLIP_S = 2.0, 4.0


def _camera(path: Path, detect: str, record: str) -> None:
    zone = harness.load("exit_van.yaml").zones[0].model_dump(mode="json")
    data = {
        "id": "live-long",
        "site": "e2e",
        "name": "live-long",
        "streams": {"detect": detect, "record": record},
        "analysis_fps": 5,
        "zones": [zone],
        "rules": [{"type": "exit_blocked", "zones": [zone["name"]], "dwell_seconds": 3}],
        "evidence": {
            "clip": {"pre_roll_s": PRE_ROLL_S, "post_roll_s": 1, "max_clip_s": MAX_CLIP_S, "wait_timeout_s": 5}
        },
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def _span_s(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
        assert stream.time_base is not None
        return float((max(pts) - min(pts)) * stream.time_base)


@pytest.mark.rtsp
@pytest.mark.slow
def test_a_long_live_incident_records_each_clip_start_and_length(tmp_path: Path, rtsp_server: RtspServer) -> None:
    configs, media = tmp_path / "cameras", tmp_path / "media"
    configs.mkdir()
    _camera(configs / "live-long.yaml", rtsp_server.url("detect"), rtsp_server.url("record"))
    events: list[IncidentEvent] = []
    lock = threading.Lock()

    def collect(event: IncidentEvent) -> None:
        with lock:
            events.append(event)

    def opened() -> bool:
        with lock:
            return any(e.type is EventType.opened for e in events)

    worker = CameraWorker(
        configs, harness.registry(), [CallbackSink(collect)], evidence=EvidenceOptions(media_root=media), poll_s=0.5
    )
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not opened() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert opened(), worker.status()
        time.sleep(2 * MAX_CLIP_S)  # two more windows pass while the incident is open
    finally:
        worker.stop(timeout=30)
    closed = [e for e in events if e.type is EventType.closed]
    assert len(closed) == 1 and closed[0].clip_url is not None, events
    folder = (media / closed[0].clip_url).parent
    clips = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["clips"]
    assert [c["index"] for c in clips] == list(range(len(clips))) and len(clips) >= 3, clips
    for clip in clips:
        planned = -PRE_ROLL_S + clip["index"] * MAX_CLIP_S
        low = planned - GOP_S - JITTER_S
        high = JITTER_S if clip["index"] == 0 else planned + JITTER_S  # clip 0: no packets before the camera started
        assert low <= clip["start_offset_s"] <= high, clip
        assert abs(clip["duration_s"] - _span_s(folder / clip["path"])) <= FRAME_S + 1e-3, clip
