"""The spool's byte cap: compaction drops the oldest droppable (`updated`) records, never the others, and stays
consistent across a crash at any step and with a batch in flight."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.bus.redis_streams import RedisStreamBus, droppable_event
from pipelines.bus.spool import Spool
from pipelines.events import EventType, IncidentEvent
from tests.fixtures.redis import RedisServer


def _rec(n: int, kind: str) -> str:
    return json.dumps({"n": n, "type": kind, "pad": "x" * 60})  # ~90 bytes a line


def _kinds(lines: list[str]) -> list[tuple[int, str]]:
    return [(json.loads(line)["n"], json.loads(line)["type"]) for line in lines]


def _fill(spool: Spool, count: int) -> list[tuple[int, str]]:
    """opened, then updated…, with a closed every 10th record: what an outage spools."""
    out = []
    for n in range(count):
        kind = "opened" if n % 10 == 0 else "closed" if n % 10 == 9 else "updated"
        spool.append(_rec(n, kind))
        out.append((n, kind))
    return out


def test_droppable_event_names_only_updated() -> None:
    assert droppable_event('{"type": "updated"}') == "updated"
    assert [droppable_event(f'{{"type": "{k}"}}') for k in ("opened", "closed")] == [None, None]
    assert droppable_event("not json") is None and droppable_event("[1]") is None


def test_cap_drops_oldest_updated_first_and_never_opened_or_closed(tmp_path: Path) -> None:
    cap = 8000  # above the ~3.8 KB of opened/closed records: the cap holds
    spool = Spool(tmp_path, "s", max_bytes=cap, droppable=droppable_event)
    written = _fill(spool, 200)  # ~19 KB through an 8 KB cap
    assert spool.path.stat().st_size <= cap
    kept = _kinds(spool.read_batch(1000).lines)
    stats = spool.stats
    assert stats.bytes == spool.path.stat().st_size and stats.records == len(kept) == spool.pending
    # every opened/closed survives, in order; what is gone is only updated records
    must_keep = [r for r in written if r[1] != "updated"]
    assert [r for r in kept if r[1] != "updated"] == must_keep
    gone = [r for r in written if r not in kept]
    assert gone and all(kind == "updated" for _, kind in gone)
    assert stats.dropped == {"updated": len(gone)} and stats.over_cap == 0
    # oldest first: every updated record kept is newer than every updated record dropped
    kept_updated = [n for n, kind in kept if kind == "updated"]
    assert max(n for n, _ in gone) < min(kept_updated)
    assert kept == sorted(kept)  # the order is kept
    spool.close()


def test_cap_is_exceeded_rather_than_drop_opened_or_closed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, "s", max_bytes=1000, droppable=droppable_event)
    for n in range(40):
        spool.append(_rec(n, "opened" if n % 2 else "closed"))
    assert spool.pending == 40 and spool.stats.bytes > 1000
    assert spool.stats.dropped == {} and spool.stats.over_cap >= 1
    assert "nothing left to drop" in caplog.text
    # compaction is amortised: not one rewrite per append once over the cap
    assert spool.stats.over_cap < 10
    assert [n for n, _ in _kinds(spool.read_batch(100).lines)] == list(range(40))
    spool.close()


def test_no_cap_and_no_classifier_keeps_everything(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "s")
    _fill(spool, 100)
    assert spool.pending == 100 and spool.stats.dropped == {} and spool.stats.max_bytes is None
    spool.close()
    with pytest.raises(ValueError, match="max_bytes"):
        Spool(tmp_path, "t", max_bytes=0)


def test_a_batch_in_flight_survives_compaction_and_commits_correctly(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "s", max_bytes=3000, droppable=droppable_event)
    _fill(spool, 20)
    spool.commit(spool.read_batch(5))  # a committed prefix, then a batch being sent while the cap bites
    batch = spool.read_batch(5)
    assert [n for n, _ in _kinds(batch.lines)] == list(range(5, 10))
    _fill_from(spool, 20, 80)
    assert spool.stats.dropped.get("updated", 0) > 0
    spool.commit(batch)  # the pump's commit after its send: translated into the compacted file
    rest = _kinds(spool.read_batch(1000).lines)
    assert rest[0][0] >= 10  # nothing of the sent batch comes again, nothing after it is skipped
    assert [r for r in rest if r[1] != "updated"] == [
        (n, "opened" if n % 10 == 0 else "closed") for n in range(10, 80) if n % 10 in (0, 9)
    ]
    spool.close()


def _fill_from(spool: Spool, start: int, stop: int) -> None:
    for n in range(start, stop):
        spool.append(_rec(n, "opened" if n % 10 == 0 else "closed" if n % 10 == 9 else "updated"))


def test_reopened_spool_reads_the_same_pending_records_after_compaction(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "s", max_bytes=3000, droppable=droppable_event)
    _fill(spool, 100)
    spool.commit(spool.read_batch(3))
    before = spool.read_batch(1000).lines
    spool.close()
    reopened = Spool(tmp_path, "s", max_bytes=3000, droppable=droppable_event)
    assert reopened.read_batch(1000).lines == before and reopened.pending == len(before)
    reopened.close()


def test_crash_during_compaction_loses_nothing_undelivered(tmp_path: Path) -> None:
    """A crash before the rename leaves the old file and a stray `.compact`; with the offset reset first, the old file
    is read from its start: delivered records may come again (at-least-once), undelivered ones are all there."""
    spool = Spool(tmp_path, "s")
    _fill(spool, 30)
    spool.commit(spool.read_batch(10))
    spool.close()
    (tmp_path / "s.jsonl.compact").write_bytes(b'{"n": 99, "type": "upd')  # torn new file, never renamed
    (tmp_path / "s.offset").write_text("0")  # the offset was reset just before the crash
    reopened = Spool(tmp_path, "s", max_bytes=3000, droppable=droppable_event)
    assert not (tmp_path / "s.jsonl.compact").exists()
    assert [n for n, _ in _kinds(reopened.read_batch(1000).lines)] == list(range(30))
    reopened.close()


def test_torn_tail_after_compaction_is_cut(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "s", max_bytes=3000, droppable=droppable_event)
    _fill(spool, 100)
    before = spool.read_batch(1000).lines
    spool.close()
    fd = os.open(tmp_path / "s.jsonl", os.O_WRONLY | os.O_APPEND)
    os.write(fd, b'{"n": 1000, "type": "clo')  # a crash in the middle of the next append
    os.close(fd)
    reopened = Spool(tmp_path, "s", max_bytes=3000, droppable=droppable_event)
    assert reopened.read_batch(1000).lines == before
    reopened.append(_rec(100, "closed"))
    assert _kinds(reopened.read_batch(1000).lines)[-1] == (100, "closed")
    reopened.close()


# ---- a real Redis outage ---------------------------------------------------------------------------------------------
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def incident(n: int, updates: int) -> list[IncidentEvent]:
    kinds = [EventType.opened, *[EventType.updated] * updates, EventType.closed]
    return [
        IncidentEvent(
            id=f"inc{n}",
            type=kind,
            camera_id="cam",
            site="site",
            rule="intrusion",
            started_at=T0,
            updated_at=T0,
            offset_s=float(seq),
            seq=seq,
        )
        for seq, kind in enumerate(kinds)
    ]


@pytest.mark.redis
def test_outage_with_a_small_cap_drops_only_updated_and_delivers_every_opened_and_closed(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = redis_server_factory(persistent=True)
    cap = 20_000  # a few dozen events; the outage below spools 320 (several times the cap)
    bus = RedisStreamBus(server.url, prefix="t", spool_dir=tmp_path / "spool", spool_max_bytes=cap, max_block_s=0.2)
    incidents = [incident(n, updates=30) for n in range(10)]
    published = [e for n in range(0, 10, 2) for pair in zip(incidents[n], incidents[n + 1], strict=True) for e in pair]
    try:
        server.kill()
        started = time.monotonic()
        for event in published:  # incidents interleaved in pairs, as two cameras publish them
            bus.publish(event)  # never raises, never blocks past the socket timeouts
        assert time.monotonic() - started < 30
        stats = bus.spool_stats()
        # Under the cap at the end, having dropped only `updated`. (A compaction that runs while the pump has a batch
        # in flight keeps that batch as it is, so `over_cap` may count a moment past the cap: timing, not a leak.)
        assert stats.bytes <= cap and set(stats.dropped) == {"updated"}
        server.restart()
        assert bus.wait_flushed(15)
        got = [d.event for d in bus.consume("g", "c", max_count=1000, timeout_s=2)]
    finally:
        bus.close()
    lost = {(e.id, e.seq) for e in published} - {(e.id, e.seq) for e in got}
    assert len(lost) == stats.dropped["updated"] > 0
    assert all(seq not in (0, 31) for _, seq in lost)  # seq 0 = opened, 31 = closed: none of them lost
    must_keep = [e for e in published if e.type is not EventType.updated]
    assert [e for e in got if e.type is not EventType.updated] == must_keep  # all of them, in the publish order
    for inc in incidents:  # per incident, the updates kept are its newest ones (oldest dropped first)
        kept = [e.seq for e in got if e.id == inc[0].id and e.type is EventType.updated]
        assert kept == list(range(31 - len(kept), 31))
