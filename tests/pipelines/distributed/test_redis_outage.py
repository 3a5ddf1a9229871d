"""Distributed mode through a Redis outage: real processes (`safewatch api` + two `safewatch worker`s) on a private,
persistent redis-server that is killed for ~20 s while incidents keep happening, then restarted on the same port.

Every worker also writes what it published (to Redis or to its on-disk spool) with `--events-log`; after the restart
and a clean stop, the store must hold each of those events as published, events from the outage included, and the
store's per-incident invariants must hold (seq 0..last without gaps, one `opened`).

Ownership through the outage: nobody can claim a lease while Redis is down, so the owners keep their cameras running
(their events go to the spool) and re-take their leases when Redis returns, before anyone else may claim, under the
same fencing token (pipelines/distributed/leases.py, fencing.py): the events of the outage stay valid and the store
fences none of them (asserted: no `safewatch_fenced_events_total` series). So no (id, seq) is ever published twice
with different content, and no incident is left open in the store without a camera state that continues it (the
hand-over at the clean stop re-takes a lease that lapsed during the outage before it saves the state).
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis

from pipelines.incidents.manager import ManagerState
from tests.fixtures.redis import RedisNamespace, RedisServer, free_port
from tests.pipelines.distributed.cluster import Cluster, Key, busy_camera_yaml

PREFIX = "swoutage"
WORKERS = ("w0", "w1")
CAMERAS = ("path-a", "path-b")
OUTAGE_S = 20.0
LEASE_TTL_S = 4.0


@pytest.fixture
def cluster(redis_server_factory: Callable[..., RedisServer], tmp_path: Path, sample_clip: Path) -> Iterator[Any]:
    server = redis_server_factory(persistent=True)  # AOF, fsync always: the stream survives the kill
    cfg, data = tmp_path / "cameras", tmp_path / "data"
    cfg.mkdir()
    data.mkdir()
    for cam in CAMERAS:
        (cfg / f"{cam}.yaml").write_text(busy_camera_yaml(cam, sample_clip))
    port = free_port()
    c = Cluster.with_api(tmp_path, server.url, PREFIX, data, cfg, port)
    for w in WORKERS:
        c.start(w, "worker", "--worker-id", w, "--lease-ttl", str(LEASE_TTL_S), "--poll", "0.5",
                "--events-log", str(tmp_path / f"{w}-events.jsonl"))  # fmt: skip
    try:
        yield c, server, f"http://127.0.0.1:{port}"
    finally:
        c.stop()


def _metrics(c: Cluster, url: str) -> str:
    response = httpx.get(f"{url}/metrics", headers={"X-API-Key": c.key}, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def _cameras_in_metrics(c: Cluster, url: str) -> bool:
    """Both cameras show up in the api's /metrics, each on a worker (from the workers' heartbeats)."""
    text = _metrics(c, url)
    return all(f'safewatch_camera_worker{{camera="{cam}",worker="w' in text for cam in CAMERAS)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stream(server: RedisServer) -> list[Key]:
    """The (id, seq) of every event entry of the stream, in stream order (duplicate deliveries included; the lease
    grant entries left out)."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        entries = cast(list[tuple[str, dict[str, str]]], client.xrange(f"{PREFIX}:events"))
        return [(f["id"], int(f["seq"])) for _, f in entries if "event" in f]
    finally:
        client.close()


def _saved_incidents(server: RedisServer) -> set[str]:
    """Ids of the open incidents in the cameras' saved states (what the next owner continues)."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        texts = [client.get(f"{PREFIX}:incidents:{cam}") for cam in CAMERAS]
    finally:
        client.close()
    return {i.id for t in texts if t for i in ManagerState.model_validate_json(t).incidents}


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["updated_at"])


def _key(event: dict[str, Any]) -> Key:
    return (event["id"], event["seq"])


@dataclass
class _Outcome:
    published: dict[str, list[dict[str, Any]]]  # worker → events in the order it published them
    stored: dict[Key, dict[str, Any]]
    stored_rows: int
    stream: list[Key]
    fenced: list[str]  # the safewatch_fenced_events_total lines of the API's /metrics
    saved_open: set[str]  # open incidents the cameras' saved states know (after the clean stop)
    down_at: datetime
    up_at: datetime


def _run_through_outage(c: Cluster, server: RedisServer, url: str) -> _Outcome:
    c.wait("the API", lambda: _healthy(url), 120)  # a loaded CI machine can take long to import
    c.wait("incidents stored before the outage", lambda: len(c.stored()) >= 4, 50)
    c.wait("worker gauges in /metrics", lambda: _cameras_in_metrics(c, url), 10)
    server.kill()  # a crash (SIGKILL): every client sees refused connections at once
    down_at, down_mono = datetime.now(UTC), time.monotonic()
    time.sleep(1.0)
    assert "safewatch_incidents" in _metrics(c, url)  # scrapes still answer (store gauges; worker gauges left out)
    time.sleep(OUTAGE_S - (time.monotonic() - down_mono))
    spooled = {w: c.spooled(w) for w in WORKERS}
    server.start()  # the same port and data dir: the AOF brings the stream, groups and leases back
    up_at, outage_s = datetime.now(UTC), time.monotonic() - down_mono
    c.wait("workers' spools flushed", lambda: all(c.spooled(w) == 0 for w in WORKERS), 20)
    flushed_s = time.monotonic() - down_mono - outage_s
    c.wait("events after the restart", lambda: any(_at(e) > up_at for e in c.stored().values()), 20)
    assert c.stop(*WORKERS) == dict.fromkeys(WORKERS, 0)  # clean stop: cameras handed over, leases released
    published = {w: c.published(w) for w in WORKERS}
    keys = {_key(e) for events in published.values() for e in events}
    c.wait("the API to store every published event", lambda: keys <= set(c.stored()), 20)
    con = sqlite3.connect(f"file:{c.db}?mode=ro", uri=True)
    rows = int(con.execute("SELECT COUNT(*) FROM incident_events").fetchone()[0])
    con.close()
    fenced = [line for line in _metrics(c, url).splitlines() if line.startswith("safewatch_fenced_events_total")]
    out = _Outcome(published, c.stored(), rows, _stream(server), fenced, _saved_incidents(server), down_at, up_at)
    assert c.stop("api")["api"] in (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM it handled
    during = [e for events in published.values() for e in events if down_at <= _at(e) <= up_at]
    total = sum(map(len, published.values()))
    print(
        f"\nredis down {outage_s:.1f} s; {sum(spooled.values())} events in the spools at restart {spooled}, "
        f"{len(during)} published during the outage; spools flushed {flushed_s:.1f} s after the restart; "
        f"{total} events published ({total - len(keys)} reusing an (id, seq)), {rows} stored, {len(out.stream)} "
        f"stream entries ({len(out.stream) - total} sent twice)"
    )
    assert sum(spooled.values()) > 0 and during, f"nothing was spooled during the outage\n{c.logs()}"
    return out


def _assert_delivered(o: _Outcome) -> None:
    """At-least-once through the spool: every published event is in the stream and in the store, in order."""
    variants: dict[Key, list[dict[str, Any]]] = {}
    for events in o.published.values():
        for e in events:
            variants.setdefault(_key(e), []).append(e)
    during = {k for k, vs in variants.items() if any(o.down_at <= _at(e) <= o.up_at for e in vs)}
    assert during <= set(o.stored), f"events of the outage missing: {sorted(during - set(o.stored))[:5]}"
    assert set(o.stored) == set(variants), "the store holds exactly the (id, seq) the workers published"
    assert o.stored_rows == len(o.stored)  # each (id, seq) stored once
    assert all(o.stored[k] in vs for k, vs in variants.items()), "a stored event is not one that was published"
    assert set(o.stream) == set(variants)  # the stream kept every event over the kill (AOF) and got the spools
    first = {k: i for i, k in reversed(list(enumerate(o.stream)))}
    for worker, events in o.published.items():  # each camera thread's events reach the stream in publish order
        for cam in CAMERAS:
            mine = [first[_key(e)] for e in events if e["camera_id"] == cam and len(variants[_key(e)]) == 1]
            assert mine == sorted(mine), f"{worker}/{cam}: events reached the stream out of order"


def _assert_store_invariants(stored: dict[Key, dict[str, Any]]) -> None:
    """Per incident: seq 0..last without gaps, seq 0 is the one `opened`, so a closed one was opened."""
    seqs: dict[str, list[int]] = {}
    for incident_id, seq in sorted(stored):
        seqs.setdefault(incident_id, []).append(seq)
    gaps = {i: s for i, s in seqs.items() if s != list(range(len(s)))}
    assert not gaps, f"incidents with missing events: {gaps}"
    assert all(stored[(i, 0)]["type"] == "opened" for i in seqs)
    assert sum(e["type"] == "opened" for e in stored.values()) == len(seqs), "an incident was opened twice"
    assert any(stored[(i, s[-1])]["type"] == "closed" for i, s in seqs.items()), "incidents should open and close"


def _fencing_violations(o: _Outcome) -> list[str]:
    """What the leases and their fencing tokens should prevent: a worker publishing after its lease lapsed, and the
    next owner, restored from a state older than those events, reusing their (id, seq) or leaving their incidents
    open forever; and events of the outage refused by the store (their owner kept its token through the outage)."""
    out = [f"events fenced by the store: {o.fenced}"] if o.fenced else []
    by_key = Counter(_key(e) for events in o.published.values() for e in events)
    if reused := sorted(k for k, n in by_key.items() if n > 1):
        out.append(f"{len(reused)} (id, seq) published twice with different content (the store kept one): {reused}")
    last: dict[str, dict[str, Any]] = {}
    for (incident_id, _seq), e in sorted(o.stored.items()):
        last[incident_id] = e
    if orphans := sorted(i for i, e in last.items() if e["type"] != "closed" and i not in o.saved_open):
        out.append(f"{len(orphans)} incidents open in the store that no camera state continues: {orphans}")
    return out


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_events_published_during_a_redis_outage_reach_the_store(cluster: Any) -> None:
    t0 = time.monotonic()
    outcome = _run_through_outage(*cluster)
    _assert_delivered(outcome)
    _assert_store_invariants(outcome.stored)
    print(f"test body {time.monotonic() - t0:.0f} s")
    assert not _fencing_violations(outcome)


@pytest.mark.redis
def test_worker_rejects_an_unwritable_events_log(
    redis_ns: RedisNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("SAFEWATCH_REDIS_URL", redis_ns.url)
    monkeypatch.setenv("SAFEWATCH_DATA_DIR", str(tmp_path / "data"))
    assert (
        main(["worker", "--redis-prefix", redis_ns.prefix, "--events-log", str(tmp_path / "not-a-dir" / "e.jsonl")])
        == 2
    )
    err = capsys.readouterr().err
    assert "--events-log" in err and "not-a-dir" in err and "Traceback" not in err
