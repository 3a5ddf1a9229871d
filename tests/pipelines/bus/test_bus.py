"""InProcessBus: consumer groups, acknowledgement after commit, redelivery of unacked events, bounded log."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from pipelines.bus.base import EventBus, InProcessBus
from pipelines.events import IncidentEvent


def _event(incident: str, seq: int = 0) -> IncidentEvent:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    return IncidentEvent(
        id=incident,
        type="opened" if seq == 0 else "updated",
        camera_id="cam",
        site="site",
        rule="intrusion",
        started_at=t,
        updated_at=t,
        offset_s=0.0,
        seq=seq,
    )


def test_implements_protocol() -> None:
    assert isinstance(InProcessBus(), EventBus)


def test_each_group_sees_every_event_in_order() -> None:
    bus = InProcessBus()
    for i in range(5):
        bus.publish(_event(f"i{i}"))
    store = bus.consume("store", "c1", timeout_s=0)
    hooks = bus.consume("hooks", "c1", timeout_s=0)
    assert [d.event.id for d in store] == [f"i{i}" for i in range(5)]
    assert [d.event.id for d in hooks] == [f"i{i}" for i in range(5)]


def test_within_a_group_each_event_goes_to_one_consumer() -> None:
    bus = InProcessBus()
    for i in range(4):
        bus.publish(_event(f"i{i}"))
    a = bus.consume("g", "a", max_count=2, timeout_s=0)
    b = bus.consume("g", "b", max_count=10, timeout_s=0)
    assert [d.event.id for d in a] == ["i0", "i1"]
    assert [d.event.id for d in b] == ["i2", "i3"]
    assert bus.consume("g", "c", timeout_s=0) == []


def test_unacked_deliveries_come_back_and_acked_ones_do_not() -> None:
    bus = InProcessBus(redeliver_after_s=0.05)
    bus.publish(_event("keep"))
    bus.publish(_event("drop"))
    first = bus.consume("g", "a", timeout_s=0)
    bus.ack("g", [d for d in first if d.event.id == "keep"])
    assert bus.pending("g") == 1
    time.sleep(0.06)
    again = bus.consume("g", "b", timeout_s=0)
    assert [(d.event.id, d.attempt) for d in again] == [("drop", 2)]
    bus.ack("g", again)
    assert bus.pending("g") == 0
    time.sleep(0.06)
    assert bus.consume("g", "b", timeout_s=0) == []


def test_consume_waits_for_a_publish_from_another_thread() -> None:
    bus = InProcessBus()
    timer = threading.Timer(0.05, bus.publish, args=(_event("late"),))
    timer.start()
    got = bus.consume("g", "a", timeout_s=2.0)
    timer.join()
    assert [d.event.id for d in got] == ["late"]


def test_consume_times_out_empty_and_close_wakes_waiters() -> None:
    bus = InProcessBus()
    t0 = time.monotonic()
    assert bus.consume("g", "a", timeout_s=0.05) == []
    assert time.monotonic() - t0 >= 0.04
    threading.Timer(0.05, bus.close).start()
    t0 = time.monotonic()
    assert bus.consume("g", "a", timeout_s=5.0) == []
    assert time.monotonic() - t0 < 2.0
    with pytest.raises(RuntimeError, match="closed"):
        bus.publish(_event("x"))


def test_maxlen_drops_oldest_for_late_groups() -> None:
    bus = InProcessBus(maxlen=3)
    for i in range(5):
        bus.publish(_event(f"i{i}"))
    assert [d.event.id for d in bus.consume("late", "a", timeout_s=0)] == ["i2", "i3", "i4"]


@pytest.mark.parametrize("maxlen", [0, -1])
def test_invalid_maxlen(maxlen: int) -> None:
    with pytest.raises(ValueError, match="maxlen"):
        InProcessBus(maxlen=maxlen)


def test_concurrent_publishers_lose_nothing() -> None:
    bus = InProcessBus()
    threads = [
        threading.Thread(target=lambda k=k: [bus.publish(_event(f"t{k}", s)) for s in range(50)]) for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = bus.consume("g", "a", max_count=1000, timeout_s=0)
    assert sorted(d.event.event_key for d in got) == sorted(f"t{k}:{s}" for k in range(4) for s in range(50))
