"""Evidence end to end: snapshots, stream-copied clips and manifests written by real replays and a real live camera.

File replay: the cached vtest replay of tests/pipelines/e2e/harness.py (evidence on). Live: `CameraWorker` on the
GStreamer RTSP test server (looped vtest), once with clips from the detect stream's ring buffer and once with a
`record` stream served by a second server at another resolution, so the clip's source is visible in the clip.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import yaml
from PIL import Image

from cli.main import main
from pipelines.camera.assemble import EvidenceOptions
from pipelines.camera.sinks import CallbackSink
from pipelines.events import EventType, IncidentEvent
from pipelines.worker.camera_worker import CameraWorker
from tests.fixtures.rtsp import RtspServer
from tests.pipelines.e2e import harness
from tests.pipelines.e2e.harness import ReplayResult

GOP_S = 2.0  # vtest: GOP 20 at 10 fps


@pytest.fixture(scope="module")
def vtest(tmp_path_factory: pytest.TempPathFactory) -> ReplayResult:
    return harness.vtest_replay(tmp_path_factory.mktemp("vtest"))


def _incident(result: ReplayResult, zone: str, near_s: float) -> tuple[IncidentEvent, IncidentEvent]:
    """(opened, closed) of the incident in `zone` that opened nearest to `near_s`."""
    opened = min(result.of(zone=zone, type_=EventType.opened), key=lambda e: abs(e.offset_s - near_s))
    closed = next(e for e in result.of(zone=zone, type_=EventType.closed) if e.id == opened.id)
    return opened, closed


def _packets(path: Path) -> list[tuple[bytes, bool]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(bytes(p), p.is_keyframe) for p in container.demux(stream) if p.size]


def _duration_s(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [(p.pts, p.duration or 0) for p in container.demux(stream) if p.size and p.pts is not None]
        assert stream.time_base is not None
        return float((max(a + d for a, d in pts) - min(a for a, _ in pts)) * stream.time_base)


def _first_frame_is_key(path: Path) -> bool:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return bool(frame.key_frame)


# -- file replay -----------------------------------------------------------------------------------------------------


def test_snapshots_exist_and_annotated_differs_from_raw(vtest: ReplayResult) -> None:
    assert vtest.media_root is not None
    opened, _ = _incident(vtest, "van_bay", 10.0)
    assert opened.snapshot_url is not None
    annotated = vtest.media_root / opened.snapshot_url
    raw = annotated.with_name("snapshot_raw.jpg")
    assert annotated.is_file() and raw.is_file()
    a, r = np.asarray(Image.open(annotated).convert("RGB")), np.asarray(Image.open(raw).convert("RGB"))
    assert a.shape == r.shape == (576, 768, 3)
    assert np.mean(np.abs(a.astype(np.int16) - r.astype(np.int16)) > 40) > 0.005  # boxes, zone, caption drawn


def test_clip_is_a_stream_copy_of_the_source_with_the_planned_length(vtest: ReplayResult, sample_clip: Path) -> None:
    assert vtest.media_root is not None
    camera = harness.load("intrusion_path.yaml")
    rule, clip_cfg = camera.rules[0], camera.evidence.clip
    opened, closed = _incident(vtest, "path_patch", 27.0)  # hand-labelled crossing 2: out at 27.8, back 35.2-37.6
    assert closed.clip_url is not None and closed.evidence_sha256 is not None
    clip = vtest.media_root / closed.clip_url

    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height",
         "-of", "default=noprint_wrappers=1", str(clip)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["codec_name=h264", "width=768", "height=576"]

    packets = _packets(clip)
    assert packets[0][1] and _first_frame_is_key(clip)
    source = [data for data, _ in _packets(sample_clip)]
    start = source.index(packets[0][0])
    assert [data for data, _ in packets] == source[start : start + len(packets)], "packets re-encoded or reordered"

    first_seen = opened.offset_s - rule.min_seconds
    last_seen = closed.offset_s - rule.clear_seconds
    expected = clip_cfg.pre_roll_s + (last_seen - first_seen) + clip_cfg.post_roll_s
    assert abs(_duration_s(clip) - expected) <= GOP_S + 0.2, (_duration_s(clip), expected)


def test_evidence_verify_passes_and_catches_a_flipped_byte(
    vtest: ReplayResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert vtest.media_root is not None
    assert main(["evidence", "verify", str(vtest.media_root), "--no-database"]) == 0
    assert "manifests OK" in capsys.readouterr().out

    copy = tmp_path / "media"
    shutil.copytree(vtest.media_root, copy)
    clip = next(iter(sorted(copy.rglob("clip-*.mp4"))))
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0x01
    clip.write_bytes(bytes(data))
    assert main(["evidence", "verify", str(copy), "--no-database"]) == 1
    assert clip.name in capsys.readouterr().out


# -- live RTSP camera run by the worker ------------------------------------------------------------------------------


def _small_annexb(clip: Path, out: Path, seconds: float = 15.0) -> Path:
    """The first `seconds` of `clip` at half resolution, re-encoded as H.264 Annex-B without B-frames (GOP 10)."""
    with av.open(str(clip)) as src, av.open(str(out), "w", format="h264") as dst:
        stream = dst.add_stream("libx264", rate=10, options={"tune": "zerolatency", "g": "10", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = 384, 288, "yuv420p"
        for frame in src.decode(video=0):
            if frame.time is not None and frame.time >= seconds:
                break
            small = frame.reformat(width=384, height=288, format="yuv420p")
            small.pts = None
            for packet in stream.encode(small):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


@pytest.fixture
def record_server(tmp_path: Path, sample_clip: Path, rtsp_stream_file: Path) -> Iterator[RtspServer]:
    """A second RTSP server whose `record` mount serves a 384x288 version of the clip (the default serves 768x576).
    Depends on `rtsp_stream_file` for its skip when GStreamer's RTSP server is not installed."""
    server = RtspServer(_small_annexb(sample_clip, tmp_path / "small.h264"), mounts=("record",))
    server.start()
    yield server
    server.stop()


def _camera_yaml(path: Path, camera_id: str, detect: str, record: str | None = None) -> None:
    zone = harness.load("exit_van.yaml").zones[0].model_dump(mode="json")
    data: dict[str, Any] = {
        "id": camera_id,
        "site": "e2e",
        "name": camera_id,
        "streams": {"detect": detect, **({"record": record} if record else {})},
        "analysis_fps": 5,
        "zones": [zone],
        "rules": [{"type": "exit_blocked", "zones": [zone["name"]], "dwell_seconds": 5}],
        "evidence": {"clip": {"pre_roll_s": 2, "post_roll_s": 1, "wait_timeout_s": 5}},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.rtsp
@pytest.mark.slow
def test_live_camera_clips_from_ring_buffer_and_record_stream(
    tmp_path: Path, rtsp_server: RtspServer, record_server: RtspServer
) -> None:
    configs = tmp_path / "cameras"
    configs.mkdir()
    _camera_yaml(configs / "ring.yaml", "live-ring", rtsp_server.url("cam1"))
    _camera_yaml(configs / "rec.yaml", "live-record", rtsp_server.url("detect"), record_server.url("record"))
    events: list[IncidentEvent] = []
    lock = threading.Lock()

    def collect(e: IncidentEvent) -> None:
        with lock:
            events.append(e)

    def opened(camera_id: str) -> bool:
        with lock:
            return any(e.camera_id == camera_id and e.type is EventType.opened for e in events)

    media = tmp_path / "media"
    worker = CameraWorker(
        configs, harness.registry(), [CallbackSink(collect)], evidence=EvidenceOptions(media_root=media), poll_s=0.5
    )
    worker.start()
    try:
        assert _wait(lambda: opened("live-ring") and opened("live-record"), 60), [s for s in worker.status()]
        time.sleep(2.0)  # some time past the opening inside the clip
    finally:
        worker.stop(timeout=30)
    for camera_id, size in (("live-ring", (768, 576)), ("live-record", (384, 288))):
        mine = [e for e in events if e.camera_id == camera_id]
        assert [e.type for e in mine if e.type is not EventType.updated] == [EventType.opened, EventType.closed]
        closed = mine[-1]
        assert closed.rule == "exit_blocked" and closed.clip_url is not None, closed
        clip = media / closed.clip_url
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.codec_context.width, stream.codec_context.height) == (
                "h264",
                *size,
            )
            frames = sum(1 for _ in container.decode(video=0))
        assert frames >= 20, "clip holds at least the dwell time's frames"
        assert _packets(clip)[0][1] and _first_frame_is_key(clip)
