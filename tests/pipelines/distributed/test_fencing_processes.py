"""Fencing with real processes (pipelines/distributed/fencing.py): the worker holding a camera with an open incident
loses it while it cannot act on Redis, another worker takes the camera over and continues the incident from the saved
state, then the first one comes back:

- paused: SIGSTOP for at least twice the lease TTL (until the other worker has the camera), then SIGCONT. Until its
  lease renewal finds the lease lost, its camera thread may still publish what it had in hand;
- partitioned: its link to Redis is cut (tests/pipelines/distributed/partition.py: a relay on loopback; commands time
  out as over a dead link) for at least twice the TTL; it keeps its camera running and spools the events (an outage,
  as far as it can tell) until the link is back, then flushes the spool, finds the lease lost and stops the camera.
  The spool is waited for until it holds an `opened` event, so the store has something it must refuse.

The new owner's grant is in the event stream before anything the former owner sends afterwards (read back from the
stream: the entries of the old token after the grant entry), so the store refuses all of it, counts it in
`safewatch_fenced_events_total` and logs it once. The incident stays one incident: one `opened`, seq 0..n without
gaps, closed by the new owner under its token (the camera is removed at the end); no other incident of its zone is
opened while it is open; everything the former owner sent before the takeover is stored as sent. The camera has a
zone-level incident that stays open (`exit_blocked` on the van parked in vtest; one incident per zone) and busy
per-person `intrusion` incidents (so the former owner has events in hand).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis
import yaml

from pipelines.distributed.leases import read_heartbeats
from pipelines.incidents.manager import ManagerState
from pipelines.incidents.snapshot import Phase
from tests.fixtures.redis import RedisNamespace, free_port
from tests.pipelines.distributed.cluster import Cluster, Key, busy_camera_yaml
from tests.pipelines.distributed.partition import LinkCutter

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CAMERA = "fenced-cam"
WORKERS = ("w0", "w1")
LEASE_TTL_S = 3.0


@dataclass
class _Env:
    c: Cluster
    url: str
    prefix: str
    redis_url: str
    client: redis.Redis

    def worker(self, name: str, redis_url: str | None = None) -> None:
        self.c.start(name, "worker", "--worker-id", name, "--lease-ttl", str(LEASE_TTL_S), "--poll", "0.5",
                     "--events-log", str(self.c.tmp / f"{name}-events.jsonl"),
                     env={"SAFEWATCH_REDIS_URL": redis_url} if redis_url else None)  # fmt: skip

    def owner(self) -> str | None:
        return cast(str | None, self.client.get(f"{self.prefix}:lease:{CAMERA}"))


@pytest.fixture
def env(redis_ns: RedisNamespace, tmp_path: Path, sample_clip: Path) -> Iterator[_Env]:
    """The API (config dir with the one camera) and a Redis client; the tests start the workers."""
    cfg, data = tmp_path / "cameras", tmp_path / "data"
    cfg.mkdir()
    data.mkdir()
    camera = yaml.safe_load(busy_camera_yaml(CAMERA, sample_clip, site="fencing-test"))
    camera["zones"].append(
        {"name": "fire_lane", "kind": "fire_exit", "anchor": "overlap", "min_overlap": 0.5,
         "polygon": [[0.83, 0.06], [0.95, 0.06], [0.95, 0.19], [0.83, 0.19]]}  # the van parked top right of vtest
    )  # fmt: skip
    camera["rules"].append({"type": "exit_blocked", "zones": ["fire_lane"], "dwell_seconds": 3})
    (cfg / f"{CAMERA}.yaml").write_text(yaml.safe_dump(camera, sort_keys=False))
    port = free_port()
    c = Cluster.with_api(tmp_path, redis_ns.url, redis_ns.prefix, data, cfg, port)
    client = redis.Redis.from_url(redis_ns.url, decode_responses=True)
    try:
        yield _Env(c, f"http://127.0.0.1:{port}", redis_ns.prefix, redis_ns.url, client)
    finally:
        c.stop()
        client.close()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _open_incident(client: redis.Redis, prefix: str) -> str | None:
    """The id of the open exit_blocked incident in the camera's saved state (saved before each of its events leaves)."""
    text = cast(str | None, client.get(f"{prefix}:incidents:{CAMERA}"))
    state = ManagerState.model_validate_json(text) if text else None
    if state is None:
        return None
    return next((i.id for i in state.incidents if i.rule == "exit_blocked" and i.phase is Phase.open and i.id), None)


def _stored_open_incident(e: _Env) -> tuple[str, str] | None:
    """(owner, id) of the camera's open exit_blocked incident, once its `opened` is stored."""
    owner, incident = e.owner(), _open_incident(e.client, e.prefix)
    return (owner, incident) if owner in WORKERS and incident and (incident, 0) in e.c.stored() else None


def _pause_with_open_incident(e: _Env) -> tuple[str, str]:
    """SIGSTOP the camera's owner while an incident of it is open and stored; (owner, incident id)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if found := _stored_open_incident(e):
            e.c.pause(found[0])
            if _open_incident(e.client, e.prefix) == found[1]:  # still open now that its owner cannot change it
                return found
            e.c.resume(found[0])
        time.sleep(0.2)
    raise AssertionError(f"no open incident on {CAMERA} to pause its owner with\n{e.c.logs()}")


def _fenced(c: Cluster, url: str) -> float:
    response = httpx.get(f"{url}/metrics", headers={"X-API-Key": c.key}, timeout=10)
    assert response.status_code == 200, response.text
    prefix = f'safewatch_fenced_events_total{{camera="{CAMERA}"}} '
    return sum(float(line[len(prefix) :]) for line in response.text.splitlines() if line.startswith(prefix))


def _after_grant(client: redis.Redis, prefix: str, token: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The camera's events in the stream (events of every camera were published there) before and after the grant
    entry of `token`, in stream order."""
    entries = cast(list[tuple[str, dict[str, str]]], client.xrange(f"{prefix}:events"))
    grant = next(i for i, (_, f) in enumerate(entries) if f.get("fence") == CAMERA and f.get("token") == str(token))
    events = [(i, json.loads(f["event"])) for i, (_, f) in enumerate(entries) if "event" in f]
    mine = [(i, e) for i, e in events if e["camera_id"] == CAMERA]
    return [e for i, e in mine if i < grant], [e for i, e in mine if i > grant]


def _must_fence(stored: set[Key], later: list[dict[str, Any]], token: int) -> int:
    """How many of the stale events after the grant the store must count as fenced: those whose (id, seq) it does not
    hold yet when they arrive (the others are duplicates, ignored before the token is looked at)."""
    count = 0
    for e in later:
        key = (e["id"], e["seq"])
        if e["fence"] >= token:
            stored.add(key)
        elif key not in stored:
            count += 1
    return count


def _incident(stored: dict[Key, dict[str, Any]], incident: str) -> list[dict[str, Any]]:
    return [stored[k] for k in sorted(k for k in stored if k[0] == incident)]


@dataclass
class _Takeover:
    former: str  # the worker that lost the camera
    incident: str  # its open exit_blocked incident at that moment
    old_token: int
    new_token: int
    sent_before: int  # lines of the former owner's events log before it lost Redis


def _taken_over(e: _Env, former: str, incident: str, since: float) -> _Takeover:
    """Wait (the former owner being away) until the other worker holds the camera and 2x the TTL have passed."""
    other = next(w for w in WORKERS if w != former)
    before = e.c.published(former)
    e.c.wait(f"{other} taking {CAMERA} over", lambda: e.owner() == other, 60)
    time.sleep(max(0.0, 2 * LEASE_TTL_S - (time.monotonic() - since)))
    old_tokens = {ev["fence"] for ev in before if ev["camera_id"] == CAMERA}
    assert len(old_tokens) == 1
    new_token = int(cast(str, e.client.get(f"{e.prefix}:fence:{CAMERA}")))
    return _Takeover(former, incident, old_tokens.pop(), new_token, len(before))


def _finish_and_check(e: _Env, t: _Takeover, away_s: float) -> tuple[int, float]:
    """Once the former owner gave the camera up: remove the camera (its owner closes the incident), then check what
    the store holds (module docs). Returns (stale events in the stream, events the store fenced)."""
    c, other = e.c, next(w for w in WORKERS if w != t.former)
    gave_up = lambda: any(h.id == t.former and CAMERA not in h.cameras for h in read_heartbeats(e.client, e.prefix))  # noqa: E731
    c.wait(f"{t.former} giving {CAMERA} up", gave_up, 60)
    (c.tmp / "cameras" / f"{CAMERA}.yaml").unlink()
    c.wait(f"{other} closing {t.incident}", lambda: _incident(c.stored(), t.incident)[-1]["type"] == "closed", 60)
    woken = c.published(t.former)[t.sent_before :]
    keys_sent = {(ev["id"], ev["seq"]) for ev in c.published(other)}
    c.wait("the API storing what the new owner sent", lambda: keys_sent <= set(c.stored()), 30)
    fenced, stored = _fenced(c, e.url), c.stored()
    earlier, later = _after_grant(e.client, e.prefix, t.new_token)

    stale = [ev for ev in later if ev["fence"] < t.new_token]  # the former owner's, behind the new owner's grant
    keys_before = {(ev["id"], ev["seq"]) for ev in earlier}
    events = _incident(stored, t.incident)
    print(f"\n{t.former} away {away_s:.1f} s; it sent {len(woken)} events meanwhile or after ({len(stale)} behind the "
          f"grant in the stream), the store fenced {fenced:.0f}; incident {t.incident}: "
          f"{[(ev['seq'], ev['type'], ev['fence']) for ev in events]}")  # fmt: skip
    assert [ev["seq"] for ev in events] == list(range(len(events)))  # gap-free
    assert [ev["type"] for ev in events].count("opened") == 1 and events[0]["type"] == "opened"
    assert events[-1]["type"] == "closed" and events[-1]["fence"] == t.new_token  # closed by the new owner
    assert all(stored.get((ev["id"], ev["seq"])) != ev for ev in stale), "an event sent after the takeover was applied"
    mine = [ev for ev in earlier if ev["fence"] == t.old_token]
    assert all(stored.get((ev["id"], ev["seq"])) == ev for ev in mine), "an event sent before the takeover is missing"
    assert {(ev["id"], ev["seq"]) for ev in woken} <= {(ev["id"], ev["seq"]) for ev in stale} | keys_before
    assert _must_fence(set(keys_before), later, t.new_token) <= fenced <= len(stale)
    start, end = datetime.fromisoformat(events[0]["started_at"]), datetime.fromisoformat(events[-1]["ended_at"])
    opened_meanwhile = [
        ev["id"] for ev in stored.values()
        if ev["rule"] == "exit_blocked" and ev["type"] == "opened" and ev["id"] != t.incident
        and start <= datetime.fromisoformat(ev["started_at"]) < end
    ]  # fmt: skip
    assert not opened_meanwhile, "a second exit_blocked incident was opened while the first was open"
    assert c.log("api").count("refusing events of a former owner") == (1 if fenced else 0)  # logged once per camera
    return len(stale), fenced


@pytest.mark.timeout(360)
def test_a_paused_owner_cannot_change_the_incident_after_a_takeover(env: _Env) -> None:
    for w in WORKERS:
        env.worker(w)
    env.c.wait("the API", lambda: _healthy(env.url), 120)
    paused, incident = _pause_with_open_incident(env)
    paused_at = time.monotonic()
    takeover = _taken_over(env, paused, incident, paused_at)
    assert takeover.new_token > takeover.old_token
    env.c.resume(paused)
    _finish_and_check(env, takeover, time.monotonic() - paused_at)


def _spooled_opened(c: Cluster, worker: str) -> bool:
    return any(json.loads(line).get("type") == "opened" for line in c.spool(worker))


@pytest.mark.timeout(360)
def test_a_partitioned_owner_cannot_change_the_incident_after_a_takeover(env: _Env) -> None:
    parts = urlsplit(env.redis_url)
    link = LinkCutter(parts.port or 6379, parts.hostname or "127.0.0.1")
    try:
        env.worker("w0", urlunsplit(parts._replace(netloc=f"127.0.0.1:{link.port}")))  # w0 reaches Redis via `link`
        env.c.wait("the API", lambda: _healthy(env.url), 120)
        env.c.wait(f"w0 holding {CAMERA}", lambda: env.owner() == "w0", 60)
        env.worker("w1")
        found = env.c.wait("an open incident", lambda: _stored_open_incident(env), 120)
        assert found[0] == "w0"
        link.cut()
        cut_at = time.monotonic()
        takeover = _taken_over(env, "w0", found[1], cut_at)
        env.c.wait("w0 spooling a new incident", lambda: _spooled_opened(env.c, "w0"), 90)
        link.restore()
        away_s = time.monotonic() - cut_at
        env.c.wait("w0's spool flushed", lambda: env.c.spooled("w0") == 0, 60)
        stale, fenced = _finish_and_check(env, takeover, away_s)
    finally:
        link.close()
    assert stale > 0 and fenced > 0  # the spool of the partition reached the stream behind the grant: refused
