"""Fencing tokens against a real Redis: every grant of a camera's lease carries a larger token and is recorded in the
event stream; a lapsed lease is re-taken under the same token only if nobody was granted it meanwhile; the worker
stamps its token on every event. The store's side: tests/api/test_consumer_fencing.py; real processes:
test_fencing_pause.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

from api.consumer import STORE_GROUP
from pipelines.bus.redis_streams import RedisStreamBus
from pipelines.distributed.fencing import FencedSink
from pipelines.distributed.leases import LeaseConfig, LeaseManager
from pipelines.events import FenceGrant, IncidentEvent
from tests.api.conftest import make_event
from tests.fixtures.redis import RedisNamespace

pytestmark = pytest.mark.redis


@pytest.fixture
def client(redis_ns: RedisNamespace) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_ns.url, decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def bus(redis_ns: RedisNamespace, tmp_path: Path) -> Iterator[RedisStreamBus]:
    b = RedisStreamBus(redis_ns.url, spool_dir=tmp_path / "spool", prefix=redis_ns.prefix, redeliver_after_s=60)
    yield b
    b.close()


def _manager(client: redis.Redis, prefix: str, wid: str, ttl: float = 1.0) -> LeaseManager:
    return LeaseManager(client, prefix, wid, host="test", config=LeaseConfig(ttl_s=ttl, settle_s=0.0))


def test_every_grant_has_a_larger_token_recorded_in_the_stream(
    client: redis.Redis, redis_ns: RedisNamespace, bus: RedisStreamBus
) -> None:
    a, b = _manager(client, redis_ns.prefix, "a"), _manager(client, redis_ns.prefix, "b")
    assert a.claim("cam") and not b.claim("cam")  # held: no grant, no token, nothing recorded
    first = a.token("cam")
    assert first is not None and b.token("cam") is None
    assert a.release("cam") and a.token("cam") is None
    assert b.claim("cam")
    second = b.token("cam")
    assert second is not None and second > first
    assert int(cast(str, client.get(f"{redis_ns.prefix}:fence:cam"))) == second
    got = [d.event for d in bus.consume(STORE_GROUP, "c", timeout_s=1)]
    assert got == [FenceGrant(camera_id="cam", token=first), FenceGrant(camera_id="cam", token=second)]


def test_token_survives_a_redis_that_lost_its_data(client: redis.Redis, redis_ns: RedisNamespace) -> None:
    """The token is at least Redis's clock in ms, so a counter lost with Redis's data does not start over at 1."""
    a = _manager(client, redis_ns.prefix, "a")
    assert a.claim("cam")
    before = a.token("cam")
    assert before is not None and before > 1_600_000_000_000
    a.release("cam")
    client.delete(f"{redis_ns.prefix}:fence:cam")  # as after a restart without persistence
    assert a.claim("cam")
    after = a.token("cam")
    assert after is not None and after >= before


def test_retake_after_an_outage_keeps_the_token_only_if_nobody_was_granted(
    client: redis.Redis, redis_ns: RedisNamespace
) -> None:
    prefix = redis_ns.prefix
    a, b = _manager(client, prefix, "a"), _manager(client, prefix, "b")
    assert a.claim("one") and a.claim("two")
    tokens = {c: a.token(c) for c in ("one", "two")}
    a._uncertain.update({"one", "two"})  # renewals failed: Redis was unreachable (as renew() records it)
    client.delete(f"{prefix}:lease:one", f"{prefix}:lease:two")  # both lapsed during the outage
    assert b.claim("two") and b.release("two")  # another worker ran "two" meanwhile (and gave it up)
    assert a.renew() == ["two"]  # "one" re-taken under its token; "two" lost although its lease is free
    assert a.held() == {"one"} and a.token("one") == tokens["one"]
    assert client.get(f"{prefix}:lease:two") is None


def test_fenced_sink_stamps_the_token_on_every_event() -> None:
    seen: list[IncidentEvent] = []

    class Sink:
        def handle(self, event: IncidentEvent) -> None:
            seen.append(event)

    FencedSink(Sink(), 42).handle(make_event("a", 0))
    assert [e.fence for e in seen] == [42] and seen[0].model_copy(update={"fence": None}) == make_event("a", 0)


def test_events_without_a_token_still_validate() -> None:
    """An older worker's event JSON (no `fence` field) is accepted: upgrade the API first, then the workers."""
    old = make_event("a", 0).model_dump(mode="json")
    del old["fence"]
    assert IncidentEvent.model_validate(old).fence is None
