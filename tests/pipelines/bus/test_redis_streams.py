"""RedisStreamBus on a real Redis (tests/fixtures/redis.py): the bus contract shared with InProcessBus (parametrised
over both), stream details, Redis outages with the on-disk spool, a bus process restart, and the API store consumer."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.consumer import STORE_GROUP, consume_into_store
from api.metrics import Metrics
from api.store.db import Store
from api.store.incidents import incident_events
from api.store.models import IncidentEventRow
from pipelines.bus.base import Delivery, EventBus, InProcessBus
from pipelines.bus.factory import make_bus
from pipelines.bus.redis_streams import BusUnavailableError, RedisStreamBus
from pipelines.bus.spool import Spool, SpoolLockedError
from pipelines.events import EventType, IncidentEvent
from tests.fixtures.redis import RedisNamespace, RedisServer, free_port

pytestmark = pytest.mark.timeout(60)

AnyBus = InProcessBus | RedisStreamBus
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _event(incident: str, seq: int = 0) -> IncidentEvent:
    return IncidentEvent(
        id=incident,
        type=EventType.opened if seq == 0 else EventType.updated,
        camera_id="cam",
        site="site",
        rule="intrusion",
        started_at=T0,
        updated_at=T0,
        offset_s=float(seq),
        seq=seq,
    )


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _dead_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there: connection refused


def _spool_lines(spool_dir: Path, stream: str = "t:events") -> list[str]:
    path = spool_dir / f"{stream.replace(':', '_')}.jsonl"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


# ---- the contract, on both implementations -----------------------------------------------------------------------
@pytest.fixture(params=["inprocess", pytest.param("redis", marks=pytest.mark.redis)])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., AnyBus]]:
    """`make(maxlen=…, redeliver_after_s=…)` builds the bus under test; every bus is closed afterwards."""
    ns: RedisNamespace | None = request.getfixturevalue("redis_ns") if request.param == "redis" else None
    buses: list[AnyBus] = []

    def build(*, maxlen: int = 100_000, redeliver_after_s: float = 30.0) -> AnyBus:
        bus: AnyBus
        if ns is None:
            bus = InProcessBus(maxlen=maxlen, redeliver_after_s=redeliver_after_s)
        else:
            spool = tmp_path / f"spool-{len(buses)}"
            bus = RedisStreamBus(
                ns.url, prefix=ns.prefix, spool_dir=spool, maxlen=maxlen, redeliver_after_s=redeliver_after_s
            )
        buses.append(bus)
        return bus

    yield build
    for bus in buses:
        bus.close()


def test_round_trip_ack_and_backlog(make: Callable[..., AnyBus]) -> None:
    bus = make()
    assert isinstance(bus, EventBus)
    events = [_event(f"i{i}") for i in range(5)]
    for event in events:
        bus.publish(event)
    assert bus.backlog("g") == 5
    first = bus.consume("g", "c1", max_count=2, timeout_s=1)
    assert [d.event for d in first] == events[:2] and {d.attempt for d in first} == {1}
    assert bus.backlog("g") == 5  # 3 not delivered + 2 delivered, unacked
    bus.ack("g", first)
    assert bus.backlog("g") == 3
    rest = bus.consume("g", "c1", timeout_s=1)
    assert [d.event for d in rest] == events[2:]
    bus.ack("g", rest)
    assert bus.backlog("g") == 0
    assert bus.consume("g", "c1", timeout_s=0) == []


def test_each_group_sees_every_event(make: Callable[..., AnyBus]) -> None:
    bus = make()
    for i in range(5):
        bus.publish(_event(f"i{i}"))
    expected = [f"i{i}" for i in range(5)]
    assert [d.event.id for d in bus.consume("store", "c1", timeout_s=1)] == expected
    assert [d.event.id for d in bus.consume("hooks", "c1", timeout_s=1)] == expected


def test_consumers_of_one_group_split_the_events(make: Callable[..., AnyBus]) -> None:
    bus = make()
    for i in range(4):
        bus.publish(_event(f"i{i}"))
    a = bus.consume("g", "a", max_count=2, timeout_s=1)
    b = bus.consume("g", "b", max_count=10, timeout_s=1)
    assert [d.event.id for d in a] == ["i0", "i1"]
    assert [d.event.id for d in b] == ["i2", "i3"]
    assert bus.consume("g", "c", timeout_s=0) == []


def test_unacked_delivery_goes_to_another_consumer(make: Callable[..., AnyBus]) -> None:
    bus = make(redeliver_after_s=0.5)
    bus.publish(_event("keep"))
    bus.publish(_event("drop"))
    first = bus.consume("g", "a", timeout_s=1)
    bus.ack("g", [d for d in first if d.event.id == "keep"])
    assert bus.consume("g", "b", timeout_s=0) == []  # not idle long enough yet
    time.sleep(0.55)
    again = bus.consume("g", "b", timeout_s=2)
    assert [(d.event.id, d.attempt) for d in again] == [("drop", 2)]
    bus.ack("g", again)
    time.sleep(0.55)
    assert bus.consume("g", "b", timeout_s=0) == []
    assert bus.backlog("g") == 0


def test_consume_waits_for_a_publish_from_another_thread(make: Callable[..., AnyBus]) -> None:
    bus = make()
    timer = threading.Timer(0.1, bus.publish, args=(_event("late"),))
    timer.start()
    got = bus.consume("g", "a", timeout_s=5)
    timer.join()
    assert [d.event.id for d in got] == ["late"]


def test_close_wakes_a_blocked_consumer_and_refuses_publish(make: Callable[..., AnyBus]) -> None:
    bus = make()
    results: list[list[Delivery]] = []
    waiter = threading.Thread(target=lambda: results.append(bus.consume("g", "a", timeout_s=30)))
    waiter.start()
    time.sleep(0.2)
    bus.close()
    waiter.join(5)
    assert not waiter.is_alive() and results == [[]]
    with pytest.raises(RuntimeError, match="closed"):
        bus.publish(_event("x"))


def test_maxlen_keeps_the_newest_events(make: Callable[..., AnyBus]) -> None:
    bus = make(maxlen=50)
    for i in range(300):
        bus.publish(_event(f"i{i:03}"))
    ids = [d.event.id for d in bus.consume("late", "a", max_count=1000, timeout_s=0)]
    assert 50 <= len(ids) <= 150  # exactly 50 in-process; Redis `MAXLEN ~` trims whole 100-entry nodes only
    assert ids == [f"i{i:03}" for i in range(300 - len(ids), 300)]


def test_concurrent_publishers_lose_nothing(make: Callable[..., AnyBus]) -> None:
    bus = make()

    def publish_all(k: int) -> None:
        for s in range(50):
            bus.publish(_event(f"t{k}", s))

    threads = [threading.Thread(target=publish_all, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = bus.consume("g", "a", max_count=1000, timeout_s=0)
    assert sorted(d.event.event_key for d in got) == sorted(f"t{k}:{s}" for k in range(4) for s in range(50))


# ---- Redis specifics ---------------------------------------------------------------------------------------------
@pytest.mark.redis
def test_entries_are_inspectable_and_malformed_ones_are_acked(
    redis_ns: RedisNamespace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = RedisStreamBus(redis_ns.url, prefix=redis_ns.prefix, spool_dir=tmp_path)
    client = redis_ns.client()
    try:
        bus.publish(_event("a", 0))
        client.xadd(bus.stream, {"junk": "1"})
        client.xadd(bus.stream, {"event": b"\xff\xfe not utf-8"})
        client.xadd(bus.stream, {"event": '{"id": "x"}'})
        bus.publish(_event("a", 1))
        first = client.xrange(bus.stream, count=1)
        assert first and first[0][1] and (first[0][1][b"id"], first[0][1][b"seq"]) == (b"a", b"0")
        with caplog.at_level(logging.ERROR, logger="pipelines.bus.redis_streams"):
            got = bus.consume("g", "c", timeout_s=1)
        assert [d.event.event_key for d in got] == ["a:0", "a:1"]
        assert "malformed" in caplog.text
        assert bus.pending("g") == 2  # the three bad entries were acked, not left pending
        bus.ack("g", got)
        assert bus.pending("g") == 0 and bus.backlog("g") == 0
    finally:
        client.close()
        bus.close()


@pytest.mark.redis
def test_stream_length_is_capped_approximately(redis_ns: RedisNamespace, tmp_path: Path) -> None:
    bus = RedisStreamBus(redis_ns.url, prefix=redis_ns.prefix, spool_dir=tmp_path, maxlen=100)
    client = redis_ns.client()
    try:
        for i in range(1000):
            bus.publish(_event(f"i{i}"))
        node = int(client.config_get("stream-node-max-entries").get("stream-node-max-entries") or 100)
        assert 100 <= client.xlen(bus.stream) <= 100 + node
    finally:
        client.close()
        bus.close()


def test_unreachable_redis_never_raises_into_publish_consume_or_ack(tmp_path: Path) -> None:
    bus = RedisStreamBus(_dead_url(), prefix="t", spool_dir=tmp_path, close_drain_s=0)
    for i in range(20):
        bus.publish(_event(f"i{i}"))
    assert bus.spooled == 20
    assert bus.consume("g", "a", timeout_s=0.2) == []
    bus.ack("g", [Delivery(_event("i0"), token="1-0")])
    with pytest.raises(BusUnavailableError, match="unavailable"):
        bus.backlog("g")
    with pytest.raises(SpoolLockedError, match="in use"):
        RedisStreamBus(_dead_url(), prefix="t", spool_dir=tmp_path)
    bus.close()
    assert [IncidentEvent.model_validate_json(line).id for line in _spool_lines(tmp_path)] == [
        f"i{i}" for i in range(20)
    ]


@pytest.mark.redis
def test_outage_spools_then_flushes_in_order_and_nothing_is_lost(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = redis_server_factory(persistent=True)
    spool = tmp_path / "spool"
    bus = RedisStreamBus(server.url, prefix="t", spool_dir=spool, redeliver_after_s=1.0, max_block_s=0.2)
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def consumer() -> None:
        try:
            while not stop.is_set():
                got = bus.consume(STORE_GROUP, "c1", timeout_s=0.2)
                seen.extend(d.event.event_key for d in got)
                bus.ack(STORE_GROUP, got)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=consumer)
    thread.start()
    events = [_event(f"inc{i // 3}", i % 3) for i in range(90)]
    try:
        for event in events[:30]:
            bus.publish(event)
        _wait_for(lambda: len(seen) >= 30 and bus.backlog(STORE_GROUP) == 0)
        server.kill()
        for event in events[30:70]:
            bus.publish(event)  # must not raise
        assert bus.spooled == 40 and len(_spool_lines(spool)) == 40
        server.restart()
        assert bus.wait_flushed(15)
        for event in events[70:]:
            bus.publish(event)
        _wait_for(lambda: set(seen) >= {e.event_key for e in events})
    finally:
        stop.set()
        thread.join(10)
        bus.close()
    assert errors == []
    unique = list(dict.fromkeys(seen))
    assert unique == [e.event_key for e in events]  # none lost, stream order kept
    assert len(seen) - len(unique) <= 30  # duplicates are allowed (at-least-once) but bounded by what was in flight
    assert _spool_lines(spool) == []


@pytest.mark.redis
def test_consumer_recreates_its_group_after_redis_lost_its_data(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = redis_server_factory(persistent=False)
    bus = RedisStreamBus(server.url, prefix="t", spool_dir=tmp_path)
    try:
        bus.publish(_event("before"))
        bus.ack("g", bus.consume("g", "a", timeout_s=1))
        server.kill()
        server.restart()  # empty: no stream, no group
        bus.publish(_event("after"))
        assert bus.wait_flushed(10)
        assert [d.event.id for d in bus.consume("g", "a", timeout_s=2)] == ["after"]
    finally:
        bus.close()


_CRASHING_PUBLISHER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from pipelines.bus.redis_streams import RedisStreamBus
    from pipelines.events import EventType, IncidentEvent

    bus = RedisStreamBus(sys.argv[1], prefix="t", spool_dir=Path(sys.argv[2]))
    for line in sys.stdin:
        bus.publish(IncidentEvent.model_validate_json(line))
    os._exit(0)  # a crash: no close(), no drain
    """
)


@pytest.mark.redis
def test_a_new_bus_process_flushes_what_a_crashed_one_spooled(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path, repo_root: Path
) -> None:
    server = redis_server_factory()
    server.stop()
    spool = tmp_path / "spool"
    events = [_event(f"inc{i}", s) for i in range(10) for s in range(2)]
    stdin = "\n".join(e.model_dump_json() for e in events) + "\n"
    cmd = [sys.executable, "-c", _CRASHING_PUBLISHER, server.url, str(spool)]
    subprocess.run(cmd, input=stdin, text=True, cwd=repo_root, check=True, timeout=60, capture_output=True)
    assert len(_spool_lines(spool)) == 20
    with (spool / "t_events.jsonl").open("ab") as f:
        f.write(b'{"id": "torn", "ty')  # a crash in the middle of an append: never acknowledged, cut on open
    server.start()
    bus = RedisStreamBus(server.url, prefix="t", spool_dir=spool)
    try:
        assert bus.wait_flushed(10)
        assert [d.event for d in bus.consume("g", "a", max_count=100, timeout_s=1)] == events
        assert _spool_lines(spool) == []
    finally:
        bus.close()


@pytest.mark.redis
def test_store_consumer_stores_each_event_exactly_once(redis_ns: RedisNamespace, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{(tmp_path / 'store.db').as_posix()}")
    metrics = Metrics(store)
    bus = RedisStreamBus(redis_ns.url, prefix=redis_ns.prefix, spool_dir=tmp_path / "spool", redeliver_after_s=0.5)
    events = [_event(f"inc{i}", s) for i in range(5) for s in range(3)]
    for event in events:
        bus.publish(event)
    dead = bus.consume(STORE_GROUP, "dead-worker", max_count=4, timeout_s=1)  # delivered, never acked
    assert len(dead) == 4
    for event in events[:3]:  # re-published, as after a crash between XADD and spool truncation
        bus.publish(event)

    def stored() -> int:
        with store.read() as session:
            return session.query(IncidentEventRow).count()

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(consume_into_store(bus, store, metrics, stop))
        deadline = time.monotonic() + 15
        while not (stored() == len(events) and bus.backlog(STORE_GROUP) == 0):
            assert time.monotonic() < deadline, f"stored {stored()}, backlog {bus.backlog(STORE_GROUP)}"
            await asyncio.sleep(0.05)
        stop.set()
        await task

    try:
        asyncio.run(run())
        with store.read() as session:
            for i in range(5):
                assert [row.seq for row in incident_events(session, f"inc{i}")] == [0, 1, 2]
        applied = {
            kind: metrics.registry.get_sample_value(
                "safewatch_incident_events_total", {"rule": "intrusion", "type": kind}
            )
            for kind in ("opened", "updated")
        }
        assert applied == {"opened": 5.0, "updated": 10.0}
    finally:
        bus.close()
        store.dispose()


@pytest.mark.redis
def test_password_protected_redis(redis_server_factory: Callable[..., RedisServer], tmp_path: Path) -> None:
    server = redis_server_factory(password="s3cr3t-pw")
    bus = RedisStreamBus(server.url, prefix="t", spool_dir=tmp_path / "ok")
    try:
        bus.publish(_event("a"))
        assert [d.event.id for d in bus.consume("g", "a", timeout_s=1)] == ["a"]
    finally:
        bus.close()
    bad = server.url.replace("s3cr3t-pw", "not-the-pw")
    with pytest.raises(ValueError, match="authentication failed") as info:
        RedisStreamBus(bad, prefix="t", spool_dir=tmp_path / "bad")
    assert "not-the-pw" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("http://127.0.0.1:6379/0", {}, "scheme"),
        ("127.0.0.1:6379", {}, "scheme"),
        ("redis://u:pw@127.0.0.1:1/0", {"maxlen": 0}, "'maxlen'"),
        ("redis://127.0.0.1:1/0", {"redeliver_after_s": 0}, "'redeliver_after_s'"),
        ("redis://127.0.0.1:1/0", {"socket_timeout_s": -1}, "'socket_timeout_s'"),
        ("redis://127.0.0.1:1/0", {"flush_batch": 0}, "'flush_batch'"),
        ("redis://127.0.0.1:1/0", {"prefix": ""}, "'prefix'"),
    ],
)
def test_bad_options_are_rejected(url: str, options: dict[str, object], message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message) as info:
        RedisStreamBus(url, spool_dir=tmp_path, **options)  # type: ignore[arg-type]
    assert ":pw@" not in str(info.value)


def test_make_bus_picks_the_implementation(tmp_path: Path) -> None:
    assert isinstance(make_bus(None, maxlen=10), InProcessBus)
    with pytest.raises(ValueError, match="spool_dir"):
        make_bus("redis://127.0.0.1:1/0")
    bus = make_bus(_dead_url(), spool_dir=tmp_path, prefix="t", close_drain_s=0)
    assert isinstance(bus, RedisStreamBus) and bus.stream == "t:events"
    bus.close()


# ---- the spool -----------------------------------------------------------------------------------------------------
def test_spool_appends_reads_in_batches_commits_and_truncates(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "a:b")
    for i in range(5):
        spool.append(f'{{"n": {i}}}')
    first = spool.read_batch(2)
    assert first.lines == ['{"n": 0}', '{"n": 1}'] and spool.pending == 5
    spool.commit(first)
    spool.append('{"n": 5}')  # appends while a flush is under way land after it
    rest = spool.read_batch(100)
    assert rest.lines == [f'{{"n": {i}}}' for i in range(2, 6)]
    spool.commit(rest)
    assert spool.pending == 0 and spool.path.stat().st_size == 0
    spool.append('{"n": 6}')
    assert spool.read_batch(10).lines == ['{"n": 6}']
    with pytest.raises(ValueError, match="single line"):
        spool.append("two\nlines")
    spool.close()


@pytest.mark.parametrize(
    ("offset_file", "expected"),
    [
        (None, [0, 1, 2, 3]),  # never committed
        ("committed", [2, 3]),  # resumes after the committed batch
        ("999999", [0, 1, 2, 3]),  # beyond the file (crash between truncate and offset reset)
        ("3", [0, 1, 2, 3]),  # not on a record boundary
        ("not a number", [0, 1, 2, 3]),
    ],
)
def test_spool_reopens_at_the_committed_offset(tmp_path: Path, offset_file: str | None, expected: list[int]) -> None:
    spool = Spool(tmp_path, "s")
    for i in range(4):
        spool.append(f'{{"n": {i}}}')
    if offset_file == "committed":
        spool.commit(spool.read_batch(2))
    spool.close()
    if offset_file not in (None, "committed"):
        (tmp_path / "s.offset").write_text(str(offset_file))
    reopened = Spool(tmp_path, "s")
    try:
        assert reopened.pending == len(expected)
        assert reopened.read_batch(100).lines == [f'{{"n": {i}}}' for i in expected]
    finally:
        reopened.close()


def test_spool_cuts_a_torn_record_and_is_owned_by_one_bus(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "s")
    spool.append('{"n": 0}')
    with pytest.raises(SpoolLockedError):
        Spool(tmp_path, "s")
    spool.close()
    with (tmp_path / "s.jsonl").open("ab") as f:
        f.write(b'{"n": 1, "par')
    reopened = Spool(tmp_path, "s")
    reopened.append('{"n": 2}')
    assert reopened.read_batch(10).lines == ['{"n": 0}', '{"n": 2}']
    reopened.close()
