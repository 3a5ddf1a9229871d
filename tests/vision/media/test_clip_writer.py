"""ClipWriter (worker thread) and ClipPlanner (which windows a long incident gets), with real H.264 packets."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest

from tests.vision.media.packets_util import demux, make_source
from vision.media.clip_plan import ClipPlanner, ClipWindow
from vision.media.clip_writer import ClipJob, ClipWriter
from vision.media.config import ClipConfig


@pytest.fixture(scope="module")
def vtest(sample_clip: Path) -> tuple[Any, list[Any]]:
    return demux(sample_clip)


def _frames(path: Path) -> int:
    with av.open(str(path)) as clip:
        return sum(1 for p in clip.demux(video=0) if p.size)


def test_job_waits_for_post_roll_packets(vtest: tuple[Any, list[Any]], tmp_path: Path) -> None:
    params, packets = vtest
    source = make_source(params)
    for p in packets[:100]:  # up to 9.9 s
        source.push(p)
    cfg = ClipConfig(poll_interval_s=0.02, wait_timeout_s=20)
    with ClipWriter(cfg) as writer:
        fut = writer.submit(ClipJob(source, start=5.0, end=12.0, path=tmp_path / "clip-000.mp4"))
        time.sleep(0.2)
        assert not fut.done()  # the window end (12 s) has not arrived yet

        def feed() -> None:
            for p in packets[100:140]:
                source.push(p)
                time.sleep(0.002)

        feeder = threading.Thread(target=feed)
        feeder.start()
        result = fut.result(timeout=20)
        feeder.join()
    assert not result.file.missing and not result.partial
    assert result.start_s == pytest.approx(4.0) and result.end_s == pytest.approx(12.0)
    assert _frames(result.file.path) == 81


def test_source_end_and_close_write_partial_clips(vtest: tuple[Any, list[Any]], tmp_path: Path) -> None:
    params, packets = vtest
    ended, open_ = make_source(params), make_source(params)
    for p in packets[:60]:
        ended.push(p)
        open_.push(p)
    writer = ClipWriter(ClipConfig(poll_interval_s=0.02, wait_timeout_s=60))
    f1 = writer.submit(ClipJob(ended, start=2.0, end=30.0, path=tmp_path / "a.mp4"))
    f2 = writer.submit(ClipJob(open_, start=2.0, end=30.0, path=tmp_path / "b.mp4"))
    writer.source_ended(ended)
    r1 = f1.result(timeout=10)
    assert r1.partial and not r1.file.missing and r1.end_s == pytest.approx(5.9)
    assert not f2.done()
    writer.close()  # flushes what is queued without waiting for more packets
    r2 = f2.result(timeout=1)
    assert r2.partial and _frames(r2.file.path) == 40
    with pytest.raises(RuntimeError):
        writer.submit(ClipJob(open_, start=0.0, end=1.0, path=tmp_path / "c.mp4"))


def test_wait_timeout_and_wall_clock(vtest: tuple[Any, list[Any]], tmp_path: Path) -> None:
    params, packets = vtest
    source = make_source(params)
    for p in packets[:50]:
        source.push(p)
    wall0 = packets[0].wall_time
    with ClipWriter(ClipConfig(poll_interval_s=0.02, wait_timeout_s=0.3)) as writer:
        done = writer.submit(ClipJob(source, wall0 + 2.5, wall0 + 3.5, tmp_path / "w.mp4", clock="wall"))
        late = writer.submit(ClipJob(source, wall0 + 3.0, wall0 + 60, tmp_path / "t.mp4", clock="wall"))
        r_done, r_late = done.result(timeout=5), late.result(timeout=5)
    # on the job's clock: wall seconds for wall-clock jobs
    assert not r_done.partial
    assert r_done.start_s == pytest.approx(wall0 + 2.0) and r_done.end_s == pytest.approx(wall0 + 3.5)
    assert r_late.partial and r_late.end_s == pytest.approx(wall0 + 4.9)


def test_job_without_stream_params_is_missing(tmp_path: Path, vtest: tuple[Any, list[Any]]) -> None:
    params, _ = vtest
    source = make_source(params)
    source.params = None
    with ClipWriter(ClipConfig(poll_interval_s=0.02)) as writer:
        fut = writer.submit(ClipJob(source, 0.0, 1.0, tmp_path / "x.mp4"))
        writer.source_ended(source)
        result = fut.result(timeout=5)
    assert result.file.missing and "stream parameters" in (result.file.reason or "")


W = ClipWindow


@pytest.mark.parametrize(
    ("mode", "start", "polls", "end", "expected"),
    [
        # short incident: one clip, pre-roll 5 s before start to post-roll 5 s after the close
        ("split", 100.0, [110.0], 120.0, [W(0, 95.0, 125.0)]),
        # long incident, split: full 60 s windows while open, then the rest
        ("split", 100.0, [150.0, 155.0, 215.0], 230.0, [W(0, 95.0, 155.0), W(1, 155.0, 215.0), W(2, 215.0, 235.0)]),
        # long incident, start only: the first window, nothing after
        ("start_only", 100.0, [155.0, 300.0], 400.0, [W(0, 95.0, 155.0)]),
        # start only, closed before a full window
        ("start_only", 100.0, [], 130.0, [W(0, 95.0, 135.0)]),
        # closed exactly at a window boundary minus post-roll: no empty trailing clip
        ("split", 100.0, [155.0], 150.0, [W(0, 95.0, 155.0)]),
    ],
)
def test_clip_planner_windows(
    mode: str, start: float, polls: list[float], end: float, expected: list[ClipWindow]
) -> None:
    planner = ClipPlanner(start, ClipConfig(pre_roll_s=5, post_roll_s=5, max_clip_s=60, long_incident=mode))  # type: ignore[arg-type]
    got = [w for now in polls for w in planner.poll(now)] + planner.close(end)
    assert got == expected
    assert planner.done and planner.close(end + 10) == [] and planner.poll(1e9) == []
    assert [w.filename for w in got] == [f"clip-{i:03d}.mp4" for i in range(len(got))]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"pre_roll_s": 60, "max_clip_s": 60}, "must be shorter"),
        ({"max_clip_s": 0}, "greater than 0"),
        ({"long_incident": "both"}, "split"),
        ({"pre_roll": 5}, "Extra inputs"),
    ],
)
def test_clip_config_rejects_bad_values(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ClipConfig(**kwargs)


def _source_at_reused_address(params: Any, freed: set[int]) -> Any:
    """A fresh ring buffer at the address (`id`) of one of the freed ones: CPython hands freed memory out again."""
    held = []
    for _ in range(10_000):
        source = make_source(params)
        if id(source) in freed:
            return source
        held.append(source)  # keep the misses alive so the allocator moves on to other blocks
    pytest.fail("no ring buffer was allocated at a freed one's address")


def test_a_new_source_at_an_ended_ones_address_is_not_ended(vtest: tuple[Any, list[Any]], tmp_path: Path) -> None:
    params, packets = vtest
    with ClipWriter(ClipConfig(poll_interval_s=0.02, wait_timeout_s=60)) as writer:
        old = [make_source(params) for _ in range(200)]
        for source in old:
            writer.source_ended(source)  # cameras stopped: their rings ended, then the cameras dropped them
        freed = {id(source) for source in old}
        del old, source
        gc.collect()
        new = _source_at_reused_address(params, freed)  # a restarted camera's ring
        for p in packets[:60]:
            new.push(p)
        fut = writer.submit(ClipJob(new, start=2.0, end=12.0, path=tmp_path / "clip-000.mp4"))
        time.sleep(0.3)
        assert not fut.done()  # waits for its post-roll: the dead ring's "ended" is not inherited
        for p in packets[60:140]:
            new.push(p)
        result = fut.result(timeout=10)
    assert not result.partial and result.end_s == pytest.approx(12.0)


def test_ended_sources_are_forgotten_when_freed(vtest: tuple[Any, list[Any]], tmp_path: Path) -> None:
    params, packets = vtest
    with ClipWriter(ClipConfig(poll_interval_s=0.02, wait_timeout_s=60)) as writer:
        for i in range(200):  # 200 camera restarts
            source = make_source(params)
            for p in packets[:30]:
                source.push(p)
            if i % 50 == 0:  # now and then a restart leaves a job behind: it is written once its source ended
                fut = writer.submit(ClipJob(source, 0.0, 20.0, tmp_path / f"{i}.mp4"))
                writer.source_ended(source)
                assert fut.result(timeout=10).partial
            writer.source_ended(source)
            del source
        gc.collect()
        assert len(writer._ended) == 0


def _setter(event: threading.Event) -> Callable[[object], None]:
    return lambda _frame: event.set()


def test_restarting_a_camera_many_times(sample_clip: Path, tmp_path: Path) -> None:
    """A real camera runtime (file source, evidence, one shared ClipWriter as in a worker) started and stopped again
    and again: each new ring buffer starts un-ended, and the ended ones do not pile up."""
    from pipelines.camera.assemble import EvidenceOptions, build_runtime
    from tests.pipelines.e2e.harness import load, registry

    camera = load("exit_van.yaml")
    models = registry()
    with ClipWriter(ClipConfig(poll_interval_s=0.02, wait_timeout_s=5)) as writer:
        for _ in range(15):
            runtime = build_runtime(
                camera, models, evidence=EvidenceOptions(media_root=tmp_path / "media"), clip_writer=writer
            )
            ring = runtime.source.ring
            assert ring is not None and ring not in writer._ended
            stop = threading.Event()
            runtime.source.open()
            runtime.pipeline.run(runtime.source, stop, on_frame=_setter(stop))  # stops after one frame
            assert ring in writer._ended
            runtime.close()
            del runtime, ring
            gc.collect()
        assert len(writer._ended) == 0
