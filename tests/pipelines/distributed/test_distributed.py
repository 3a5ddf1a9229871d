"""Distributed mode: incident state failover, config distribution through Redis, and real worker/API processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from pipelines.config.source import DirConfigSource
from pipelines.distributed.config_sync import ConfigPublisher, RedisConfigSource
from pipelines.distributed.incident_state import IncidentStateStore
from pipelines.distributed.leases import lease_owners, read_heartbeats
from pipelines.events import EventType, IncidentEvent
from pipelines.incidents.manager import IncidentManager, ManagerState
from pipelines.rules.base import RuleTiming, Violation
from tests.fixtures.redis import RedisNamespace, free_port

ROOT = Path(__file__).resolve().parents[3]
BASE = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
TIMINGS = {"exit": RuleTiming("exit_blocked", min_seconds=1.0, clear_seconds=5.0, cooldown_seconds=60.0)}


def _van(track: int, conf: float = 0.8) -> Violation:
    return Violation("exit", "exit_blocked", "fire_lane", None, (track,), ("truck",), conf)


def _run(m: IncidentManager, start: float, end: float, wall0: datetime, present: bool, track: int = 1) -> list[Any]:
    """Observe one frame per second of offsets [start, end); wall clock = wall0 + (offset - start)."""
    events = []
    t = start
    while t < end:
        events += m.observe([_van(track)] if present else [], t, wall0 + timedelta(seconds=t - start))
        t += 1.0
    return events


def _opened_then_exported() -> tuple[list[IncidentEvent], ManagerState]:
    m = IncidentManager("gate", "site", TIMINGS)
    events = _run(m, 100.0, 112.0, BASE, present=True)  # media offsets of worker A start at 100
    state = ManagerState.model_validate_json(m.export_state().model_dump_json())  # through JSON, as in Redis
    return events, state


# ---------------------------------------------------------------------------------------------- state export/restore


def test_restored_incident_continues_with_same_id_and_next_seq() -> None:
    events, state = _opened_then_exported()
    assert [e.type for e in events] == [EventType.opened]  # opened at offset 101 (min_seconds 1)
    last = events[-1]
    assert state.incidents[0].id == last.id and state.incidents[0].seq == last.seq

    b = IncidentManager("gate", "site", TIMINGS)  # worker B: offsets start at 0, 4 s of wall clock later
    b.restore_state(state, grace_seconds={"exit": 3.0})
    resumed = BASE + timedelta(seconds=15)
    assert _run(b, 0.0, 3.0, resumed, present=False) == []  # warming up: neither closed nor reopened
    more = _run(b, 3.0, 20.0, resumed + timedelta(seconds=3), present=True, track=7)  # new tracker ids on B
    assert more, "the restored incident should report the new tracks"
    assert {e.id for e in more} == {last.id}
    assert all(e.type is EventType.updated for e in more)
    assert more[0].seq == last.seq + 1
    assert more[0].started_at == events[0].started_at  # the incident's start is kept, in wall-clock terms


def test_restored_incident_closes_when_condition_is_gone() -> None:
    events, state = _opened_then_exported()
    b = IncidentManager("gate", "site", TIMINGS)
    b.restore_state(state, grace_seconds={"exit": 3.0})
    out = _run(b, 0.0, 12.0, BASE + timedelta(seconds=20), present=False)
    assert [(e.type, e.id, e.seq) for e in out] == [(EventType.closed, events[0].id, events[-1].seq + 1)]
    assert out[0].offset_s >= 8.0  # not before grace (3 s) + clear_seconds (5 s) of observation on B
    assert out[0].ended_at == BASE + timedelta(seconds=11)  # last seen on worker A


def test_cooldown_survives_failover() -> None:
    a = IncidentManager("gate", "site", TIMINGS)
    first = _run(a, 0.0, 4.0, BASE, present=True) + _run(a, 4.0, 12.0, BASE + timedelta(seconds=4), present=False)
    assert [e.type for e in first] == [EventType.opened, EventType.closed]
    state = a.export_state()
    assert len(state.cooldowns) == 1 and not state.incidents
    b = IncidentManager("gate", "site", TIMINGS)
    b.restore_state(state)
    assert _run(b, 0.0, 10.0, BASE + timedelta(seconds=13), present=True) == []  # inside the 60 s cooldown


def test_restore_rejects_another_cameras_state() -> None:
    _, state = _opened_then_exported()
    with pytest.raises(ValueError, match="gate"):
        IncidentManager("yard", "site", TIMINGS).restore_state(state)


@pytest.mark.redis
def test_state_store_is_fenced_by_the_lease(redis_ns: RedisNamespace) -> None:
    client = redis.Redis.from_url(redis_ns.url, decode_responses=True)
    store = IncidentStateStore(client, redis_ns.prefix)
    _, state = _opened_then_exported()
    assert not store.save(state, "w1")  # nobody holds the lease: nothing written
    client.set(f"{redis_ns.prefix}:lease:gate", "w1")
    assert store.save(state, "w1")
    assert not store.save(ManagerState(camera_id="gate", saved_at=BASE), "w2")  # a stale owner cannot overwrite
    loaded = store.load("gate")
    assert loaded is not None and loaded.incidents[0].id == state.incidents[0].id
    client.set(store.key("yard"), "{not json")
    assert store.load("yard") is None  # unreadable state: logged, start fresh
    assert store.delete("gate", "w1") and store.load("gate") is None


# ---------------------------------------------------------------------------------------------- config distribution


def _camera_yaml(cam_id: str, clip: Path, *, fps: float = 1.0, rules: bool = False, enabled: bool = True) -> str:
    data: dict[str, Any] = {
        "id": cam_id,
        "site": "test-site",
        "name": f"camera {cam_id}",
        "enabled": enabled,
        "streams": {"detect": str(clip)},
        "analysis_fps": fps,
        "evidence": {"enabled": False},
    }
    if rules:  # an exit zone over the van parked top right of vtest
        data["zones"] = [
            {
                "name": "fire_lane",
                "kind": "fire_exit",
                "anchor": "overlap",
                "min_overlap": 0.5,
                "polygon": [[0.83, 0.06], [0.95, 0.06], [0.95, 0.19], [0.83, 0.19]],
            }
        ]
        data["rules"] = [{"type": "exit_blocked", "zones": ["fire_lane"], "dwell_seconds": 3}]
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.redis
def test_config_dir_is_mirrored_into_redis(redis_ns: RedisNamespace, tmp_path: Path, sample_clip: Path) -> None:
    client = redis.Redis.from_url(redis_ns.url, decode_responses=True)
    (tmp_path / "sample.mp4").symlink_to(sample_clip)
    (tmp_path / "a.yaml").write_text(_camera_yaml("a", Path("sample.mp4")))  # relative: resolved on publish
    (tmp_path / "b.yaml").write_text(_camera_yaml("b", sample_clip, rules=True))
    (tmp_path / "off.yaml").write_text(_camera_yaml("off", sample_clip, enabled=False))
    publisher = ConfigPublisher(DirConfigSource(tmp_path), client, redis_ns.prefix)
    workers_view = RedisConfigSource(client, redis_ns.prefix)

    assert publisher.sync() == 2
    cams = workers_view.cameras()
    assert sorted(cams) == ["a", "b"]
    assert cams["a"].detect_source == str((tmp_path / "sample.mp4").resolve())
    assert cams["b"].rules[0].type == "exit_blocked"
    assert publisher.sync() == 0  # nothing changed: nothing written, version unchanged

    (tmp_path / "a.yaml").write_text(_camera_yaml("a", sample_clip, fps=2.0))
    (tmp_path / "c.yml").write_text(_camera_yaml("c", sample_clip))
    assert publisher.sync() == 2
    cams = workers_view.cameras()
    assert cams["a"].analysis_fps == 2.0 and "c" in cams

    (tmp_path / "a.yaml").write_text("id: a\nsite: x\nanalysis_fps: -1\n")  # broken edit: last good stays
    (tmp_path / "b.yaml").unlink()
    assert publisher.sync() == 1
    cams = workers_view.cameras()
    assert sorted(cams) == ["a", "c"] and cams["a"].analysis_fps == 2.0


# ---------------------------------------------------------------------------------------------- real processes


class _Procs:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp, env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        cmd = [sys.executable, "-m", "cli.main", *args]
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{(self.tmp / f'{n}.log').read_text()[-3000:]}" for n in self.procs)

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _wait(what: str, cond: Callable[[], Any], timeout: float, procs: _Procs) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{procs.logs()}")


@pytest.fixture
def cluster(redis_ns: RedisNamespace, tmp_path: Path, sample_clip: Path) -> Iterator[dict[str, Any]]:
    from api.store.db import Store
    from api.store.keys import create_key

    cfg, data = tmp_path / "cameras", tmp_path / "data"
    cfg.mkdir()
    data.mkdir()
    for i in range(5):
        (cfg / f"cam-{i}.yaml").write_text(_camera_yaml(f"cam-{i}", sample_clip))
    (cfg / "van.yaml").write_text(_camera_yaml("van", sample_clip, fps=2.0, rules=True))
    store = Store(f"sqlite:///{data / 'safewatch.db'}")
    with store.session() as session:
        _row, key = create_key(session, role="admin", name="test")
    store.dispose()
    env = {
        **os.environ,
        "SAFEWATCH_REDIS_URL": redis_ns.url,
        "SAFEWATCH_REDIS_PREFIX": redis_ns.prefix,
        "SAFEWATCH_DATA_DIR": str(data),
        "SAFEWATCH_MODELS_DIR": str(ROOT / "models"),
        "SAFEWATCH_WEBHOOK_DISPATCHER": "false",
        "OMP_NUM_THREADS": "1",
    }
    port = free_port()
    procs = _Procs(tmp_path, env)
    procs.start("api", "api", "--config-dir", str(cfg), "--port", str(port), "--sync-interval", "0.5")
    for i in range(3):
        procs.start(f"w{i}", "worker", "--worker-id", f"w{i}", "--lease-ttl", "3", "--poll", "0.5")
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=10)
    try:
        client = redis.Redis.from_url(redis_ns.url, decode_responses=True)
        yield {
            "procs": procs,
            "http": http,
            "cfg": cfg,
            "client": client,
            "prefix": redis_ns.prefix,
            "clip": sample_clip,
        }
    finally:
        http.close()
        procs.stop_all()


def _running(client: redis.Redis, prefix: str) -> dict[str, list[str]]:
    """camera id → the workers whose heartbeat says they run it."""
    out: dict[str, list[str]] = {}
    for beat in read_heartbeats(client, prefix):
        for cam in beat.cameras:
            out.setdefault(cam, []).append(beat.id)
    return out


def _exactly_once(client: redis.Redis, prefix: str, cameras: set[str], workers: set[str]) -> bool:
    running = _running(client, prefix)
    owners = lease_owners(client, prefix)
    return set(running) == cameras and all(
        len(ws) == 1 and ws[0] in workers and owners.get(c) == ws[0] for c, ws in running.items()
    )


@pytest.mark.redis
def test_three_workers_fail_over_without_duplicate_alarms(cluster: dict[str, Any]) -> None:
    procs, http, client, prefix = cluster["procs"], cluster["http"], cluster["client"], cluster["prefix"]
    cams = {f"cam-{i}" for i in range(5)} | {"van"}
    workers = {"w0", "w1", "w2"}
    _wait("API", lambda: _get_ok(http, "/healthz"), 60, procs)
    _wait("every camera on exactly one worker", lambda: _exactly_once(client, prefix, cams, workers), 60, procs)
    assert {len(v) for v in _by_worker(client, prefix).values()} == {2}  # balanced: 6 cameras / 3 workers
    api_workers = http.get("/v1/workers").json()
    assert sorted(w["id"] for w in api_workers) == sorted(workers)

    def van_incidents() -> list[dict[str, Any]]:
        return list(http.get("/v1/incidents", params={"camera": "van", "rule": "exit_blocked"}).json()["items"])

    opened = _wait("exit_blocked incident on the van camera", van_incidents, 40, procs)[0]
    victim = lease_owners(client, prefix)["van"]
    lost = {c for c, o in lease_owners(client, prefix).items() if o == victim}
    procs.procs[victim].kill()  # kill -9: no handover, no lease release
    killed_at, killed_wall = time.monotonic(), datetime.now(UTC)
    saved = ManagerState.model_validate_json(client.get(f"{prefix}:incidents:van") or "")
    assert [i.id for i in saved.incidents] == [opened["id"]]
    victim_seq = saved.incidents[0].seq  # saved before each event left: nothing above it came from the victim
    survivors = workers - {victim}
    _wait("van lease taken over", lambda: lease_owners(client, prefix).get("van", victim) != victim, 20, procs)
    lease_s = time.monotonic() - killed_at
    _wait("cameras running on survivors", lambda: _exactly_once(client, prefix, cams, survivors), 20, procs)
    running_s = time.monotonic() - killed_at
    print(f"\ntakeover after kill -9 (lease TTL 3 s): lease {lease_s:.2f} s, all {len(lost)} cameras running "
          f"on survivors {running_s:.2f} s")  # fmt: skip

    # the new owner sees the van again (after its rule's dwell) and counts it on the SAME incident: the state it saves
    # (lease-fenced, so only the owner can write it) has the same id with a last-seen time after the kill
    def continued(since: datetime) -> Callable[[], bool]:
        def check() -> bool:
            state = ManagerState.model_validate_json(client.get(f"{prefix}:incidents:van") or "")
            return [i.id for i in state.incidents] == [opened["id"]] and state.incidents[0].last_seen_at > since

        return check

    _wait("the new owner continuing the van incident", continued(killed_wall), 30, procs)
    time.sleep(1.0)  # a duplicate `opened` would have left together with that first sighting
    assert len(van_incidents()) == 1

    # SIGTERM the new owner: a clean handover (lease released at once, incident left open) to the last worker
    second = lease_owners(client, prefix)["van"]
    procs.procs[second].send_signal(signal.SIGTERM)
    termed_at, termed_wall = time.monotonic(), datetime.now(UTC)
    survivors -= {second}
    _wait("van handed over", lambda: lease_owners(client, prefix).get("van") in survivors, 20, procs)
    handover_s = time.monotonic() - termed_at
    assert procs.procs[second].wait(timeout=20) == 0
    _wait("cameras running on the last worker", lambda: _exactly_once(client, prefix, cams, survivors), 20, procs)
    print(f"handover after SIGTERM: lease {handover_s:.2f} s, all cameras running {time.monotonic() - termed_at:.2f} s")
    _wait("the last worker continuing the van incident", continued(termed_wall), 30, procs)
    time.sleep(1.0)
    assert len(van_incidents()) == 1

    # add via the API, disable one by editing its file, remove the van via the API: the workers follow
    body = yaml.safe_load(_camera_yaml("cam-new", cluster["clip"]))
    assert http.put("/v1/cameras/cam-new", json=body).status_code in (200, 201)
    cam1 = cluster["cfg"] / "cam-1.yaml"
    cam1.write_text(_camera_yaml("cam-1", cluster["clip"], enabled=False))
    assert http.delete("/v1/cameras/van").status_code == 204
    followed = (cams | {"cam-new"}) - {"cam-1", "van"}
    _wait("workers following config changes", lambda: _exactly_once(client, prefix, followed, survivors), 20, procs)

    # the van's incident: one incident, one `opened`, continued twice and finally closed by the last owner
    closed = _wait("van incident closed", lambda: [i for i in van_incidents() if i["status"] == "closed"], 20, procs)
    assert len(van_incidents()) == 1 and closed[0]["id"] == opened["id"]
    events = http.get(f"/v1/incidents/{opened['id']}").json()["events"]
    types = [e["type"] for e in events]
    assert types.count("opened") == 1 and types[-1] == "closed"
    assert events[-1]["seq"] > victim_seq  # the close came from the new owner, continuing the sequence
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert client.get(f"{prefix}:incidents:van") is None  # removed camera: its state is gone

    procs.stop_all()  # SIGTERM: clean stop releases every lease at once
    assert lease_owners(client, prefix) == {}
    assert read_heartbeats(client, prefix) == []


def _get_ok(http: httpx.Client, path: str) -> bool:
    try:
        return http.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def _by_worker(client: redis.Redis, prefix: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cam, owner in lease_owners(client, prefix).items():
        out.setdefault(owner, []).append(cam)
    return out


@pytest.mark.parametrize("command", ["worker", "api"])
def test_cli_requires_redis(command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    monkeypatch.delenv("SAFEWATCH_REDIS_URL", raising=False)
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert "SAFEWATCH_REDIS_URL" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["worker", "--lease-ttl", "0"], "--lease-ttl"),
        (["worker", "--max-cameras", "-1"], "--max-cameras"),
        (["worker", "--worker-id", "a/b"], "--worker-id"),
        (["api", "--config-dir", "/nonexistent/cameras"], "no such directory"),
    ],
)
def test_cli_rejects_bad_options(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    monkeypatch.setenv("SAFEWATCH_REDIS_URL", "redis://127.0.0.1:1/0")  # never reached: options fail first
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_heartbeat_json_matches_the_workers_contract() -> None:
    from api.workers import WorkerInfo
    from pipelines.distributed.leases import Heartbeat

    beat = Heartbeat(id="w1", host="h", cameras=["a"], fps=2.0, lag_s=0.1, last_seen=BASE, max_cameras=4)
    info = WorkerInfo(**beat.model_dump(include=set(WorkerInfo.model_fields)))
    assert json.loads(info.model_dump_json())["cameras"] == ["a"]
