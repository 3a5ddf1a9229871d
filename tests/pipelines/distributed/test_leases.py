"""Camera leases against a real Redis: one owner, renewal, expiry takeover, fair balance (in-process workers)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from pipelines.distributed.leases import (
    LeaseConfig,
    LeaseManager,
    WorkerLoad,
    fair_shares,
    lease_owners,
    read_heartbeats,
)
from tests.fixtures.redis import RedisNamespace

pytestmark = pytest.mark.redis

CAMERAS = [f"cam-{i}" for i in range(6)]


@pytest.fixture
def client(redis_ns: RedisNamespace) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_ns.url, decode_responses=True)
    yield c
    c.close()


def _manager(client: redis.Redis, prefix: str, wid: str, ttl: float = 1.0, **kw: object) -> LeaseManager:
    cfg = LeaseConfig(ttl_s=ttl, settle_s=0.0, **kw)  # type: ignore[arg-type]
    return LeaseManager(client, prefix, wid, host="test", config=cfg)


@pytest.mark.parametrize(
    ("total", "workers", "expected"),
    [
        (6, [("a", 1.0, None), ("b", 1.0, None), ("c", 1.0, None)], {"a": 2, "b": 2, "c": 2}),
        (7, [("a", 1.0, None), ("b", 1.0, None), ("c", 1.0, None)], {"a": 3, "b": 3, "c": 3}),
        (6, [("a", 1.0, 1), ("b", 1.0, None), ("c", 1.0, None)], {"a": 1, "b": 3, "c": 3}),
        (8, [("a", 2.0, None), ("b", 1.0, None), ("c", 1.0, None)], {"a": 4, "b": 2, "c": 2}),
        (6, [("a", 1.0, 1), ("b", 1.0, 2)], {"a": 1, "b": 2}),  # not enough capacity: caps hold
        (0, [("a", 1.0, None)], {"a": 0}),
        (5, [("a", 1.0, 0), ("b", 1.0, None)], {"a": 0, "b": 5}),
    ],
)
def test_fair_shares(total: int, workers: list[tuple[str, float, int | None]], expected: dict[str, int]) -> None:
    assert fair_shares(total, workers) == expected


@pytest.mark.parametrize("bad", [{"ttl_s": 0.0}, {"max_cameras": -1}, {"weight": 0}, {"ttl": 3}])
def test_lease_config_rejects_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LeaseConfig(**bad)  # type: ignore[arg-type]


def test_exactly_one_worker_wins_a_contended_claim(client: redis.Redis, redis_ns: RedisNamespace) -> None:
    managers = [_manager(client, redis_ns.prefix, f"w{i}") for i in range(8)]
    barrier = threading.Barrier(len(managers))
    wins: list[str] = []

    def claim(m: LeaseManager) -> None:
        barrier.wait()
        if m.claim("gate"):
            wins.append(m.id)

    threads = [threading.Thread(target=claim, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert managers[0].owner("gate") == wins[0]
    losers = [m for m in managers if m.id != wins[0]]
    assert not any(m.release("gate") for m in losers)  # only the owner may release
    assert managers[0].owner("gate") == wins[0]


def test_renewal_keeps_the_lease_and_expiry_hands_it_over(client: redis.Redis, redis_ns: RedisNamespace) -> None:
    a = _manager(client, redis_ns.prefix, "a", ttl=0.6)
    b = _manager(client, redis_ns.prefix, "b", ttl=0.6)
    a.start()
    try:
        assert a.claim("gate")
        time.sleep(1.5)  # 2.5 TTLs: only renewals keep it
        assert a.owner("gate") == "a"
        assert not b.claim("gate")
    finally:
        a.stop(release=False)  # a crash: nothing released, nothing renewed
    deadline = time.monotonic() + 3.0
    while not b.claim("gate"):
        assert time.monotonic() < deadline, "lease did not expire"
        time.sleep(0.05)
    assert b.owner("gate") == "b"
    assert a.renew() == ["gate"]  # the old owner learns it lost the camera
    assert a.held() == frozenset()
    assert b.owner("gate") == "b"


def test_clean_stop_releases_at_once(client: redis.Redis, redis_ns: RedisNamespace) -> None:
    a = _manager(client, redis_ns.prefix, "a", ttl=30.0)
    a.start()
    assert a.claim("gate") and a.claim("yard")
    a.stop()
    assert lease_owners(client, redis_ns.prefix) == {}
    assert read_heartbeats(client, redis_ns.prefix) == []


def test_lost_lease_is_reported(client: redis.Redis, redis_ns: RedisNamespace) -> None:
    lost: list[str] = []
    a = _manager(client, redis_ns.prefix, "a", ttl=0.6)
    a.bind(load=WorkerLoad, on_lost=lost.append)
    a.start()
    try:
        assert a.claim("gate")
        client.set(a.lease_key("gate"), "intruder")  # e.g. expired during a long pause and was taken
        deadline = time.monotonic() + 2.0
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        a.stop()
    assert lost == ["gate"]
    assert client.get(a.lease_key("gate")) == "intruder"  # the release did not touch the new owner's lease


def _rounds(managers: list[LeaseManager], cameras: list[str], n: int) -> None:
    for _ in range(n):
        for m in managers:
            plan = m.plan(cameras)
            for cam in plan.release:
                m.release(cam)


def test_three_workers_balance_and_absorb_a_dead_one(client: redis.Redis, redis_ns: RedisNamespace) -> None:
    prefix = redis_ns.prefix
    w = [_manager(client, prefix, f"w{i}", ttl=1.0) for i in range(3)]
    w[0].start()
    try:
        assert w[0].plan(CAMERAS).owned == frozenset(CAMERAS)  # alone: takes everything
        w[1].start()
        w[2].start()
        _rounds(w, CAMERAS, 6)
        owners = lease_owners(client, prefix)
        assert sorted(owners) == CAMERAS
        assert Counter(owners.values()) == {"w0": 2, "w1": 2, "w2": 2}
        for m in w:
            assert m.held() == {c for c, o in owners.items() if o == m.id}
        beats = {h.id: h for h in read_heartbeats(client, prefix)}
        assert set(beats) == {"w0", "w1", "w2"}

        dead = w[2]
        dead.stop(release=False)  # kill -9: no release, no renewals, heartbeat expires with the leases
        deadline = time.monotonic() + 5.0
        while len(lease_owners(client, prefix)) > 4 or len(read_heartbeats(client, prefix)) > 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        _rounds(w[:2], CAMERAS, 2)
        owners = lease_owners(client, prefix)
        assert sorted(owners) == CAMERAS
        assert Counter(owners.values()) == {"w0": 3, "w1": 3}
    finally:
        for m in w[:2]:
            m.stop()


def test_capacity_limits_claims(client: redis.Redis, redis_ns: RedisNamespace) -> None:
    small = _manager(client, redis_ns.prefix, "small", max_cameras=1)
    big = _manager(client, redis_ns.prefix, "big", weight=2.0)
    for m in (small, big):
        m.start()
    try:
        _rounds([small, big], CAMERAS, 3)
        assert len(small.held()) == 1
        assert len(big.held()) == 5
        assert sorted(lease_owners(client, redis_ns.prefix)) == CAMERAS
    finally:
        for m in (small, big):
            m.stop()
