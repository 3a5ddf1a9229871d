"""SSE over a real uvicorn server: live events, `Last-Event-ID` resume from the store, bad ids rejected, one shared
feed (not one store poll per client), stream caps (429), site-scoped streams."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.auth import Role
from api.store.incidents import apply_event
from api.store.keys import create_key
from tests.api.conftest import add_keys, make_event, make_settings, store_of

pytestmark = pytest.mark.timeout(60)


def _serve(app: FastAPI) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def served(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[FastAPI, str, str]]:
    app = create_app(make_settings(tmp_path, sqlite_url, webhook_dispatcher=False))
    key = add_keys(store_of(app))[Role.platform]
    for base in _serve(app):
        yield app, base, key


@pytest.fixture
def capped(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(make_settings(tmp_path, sqlite_url, webhook_dispatcher=False, sse_max_per_key=2, sse_max_total=3))
    for base in _serve(app):
        yield app, base


def _key(app: FastAPI, name: str, sites: tuple[str, ...] | None = None) -> str:
    with store_of(app).session() as session:
        return create_key(session, role=Role.platform.value, name=name, sites=sites)[1]


def _open(stack: ExitStack, base: str, key: str) -> httpx.Response:
    return stack.enter_context(httpx.stream("GET", f"{base}/v1/events", headers={"X-API-Key": key}, timeout=20))


def _next_events(resp: httpx.Response, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in resp.iter_lines():
        if not line:
            if "data" in current:
                out.append(json.loads(current["data"]))
                if len(out) == n:
                    return out
            current = {}
            continue
        field, _, value = line.partition(":")
        if field:
            current[field] = value.strip()
    return out


def _read_events(base: str, key: str, n: int, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Connect, read `n` SSE events (ignoring pings), disconnect."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with httpx.stream("GET", f"{base}/v1/events", headers={"X-API-Key": key, **(headers or {})}, timeout=20) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if not line:
                if "data" in current:
                    out.append(current)
                    if len(out) == n:
                        return out
                current = {}
                continue
            field, _, value = line.partition(":")
            if field:
                current[field] = value.strip()
    return out


def test_stream_delivers_new_events_and_resumes(served: tuple[FastAPI, str, str]) -> None:
    app, base, key = served
    store = store_of(app)
    apply_event(store, make_event("old", 0))  # before connecting: not part of a fresh stream

    def produce() -> None:
        _wait_streams(app, 1)  # a fresh stream starts at the newest event when it connects: write after that
        for seq in range(3):
            apply_event(store, make_event("live", seq))

    threading.Thread(target=produce).start()
    live = _read_events(base, key, 3)
    assert [e["event"] for e in live] == ["opened", "updated", "updated"]
    ids = [int(e["id"]) for e in live]
    assert ids == sorted(ids) and ids[0] > 1
    assert [json.loads(e["data"])["seq"] for e in live] == [0, 1, 2]
    assert all(json.loads(e["data"])["id"] == "live" for e in live)

    apply_event(store, make_event("live", 3, type="closed"))
    resumed = _read_events(base, key, 2, headers={"Last-Event-ID": str(ids[0])})
    assert [(json.loads(e["data"])["id"], json.loads(e["data"])["seq"]) for e in resumed] == [("live", 1), ("live", 2)]
    everything = _read_events(base, key, 5, headers={"Last-Event-ID": "0"})
    assert [json.loads(e["data"])["id"] for e in everything] == ["old", "live", "live", "live", "live"]
    assert everything[-1]["event"] == "closed"


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5"])
def test_bad_last_event_id_is_rejected(served: tuple[FastAPI, str, str], bad: str) -> None:
    _app, base, key = served
    r = httpx.get(f"{base}/v1/events", headers={"X-API-Key": key, "Last-Event-ID": bad}, timeout=5)
    assert r.status_code == 400 and "Last-Event-ID" in r.json()["detail"]


def _wait_streams(app: FastAPI, n: int) -> None:
    deadline = time.monotonic() + 10
    while app.state.ctx.feed.streams != n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app.state.ctx.feed.streams == n


def test_one_feed_polls_the_store_for_every_client(served: tuple[FastAPI, str, str]) -> None:
    app, base, _ = served
    store = store_of(app)
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "incident_events" in statement:
            reads.append(statement)

    keys = [_key(app, f"client-{i}") for i in range(6)]
    with ExitStack() as stack:
        streams = [_open(stack, base, k) for k in keys]
        _wait_streams(app, 6)
        sqlalchemy.event.listen(store.engine, "before_cursor_execute", count)
        try:
            time.sleep(1.0)  # idle: at sse_poll_interval_s = 0.1 one feed reads ~10 times; 6 pollers would read ~60
        finally:
            sqlalchemy.event.remove(store.engine, "before_cursor_execute", count)
        assert 1 <= len(reads) <= 20, len(reads)
        for seq in range(3):
            apply_event(store, make_event("shared", seq))
        for resp in streams:
            assert [(e["id"], e["seq"]) for e in _next_events(resp, 3)] == [("shared", 0), ("shared", 1), ("shared", 2)]


def test_streams_are_capped_per_key_and_in_total(capped: tuple[FastAPI, str]) -> None:
    app, base = capped
    first, second = _key(app, "first"), _key(app, "second")
    with ExitStack() as outer:
        with ExitStack() as stack:
            for _ in range(2):
                assert _open(stack, base, first).status_code == 200
            over = httpx.get(f"{base}/v1/events", headers={"X-API-Key": first}, timeout=5)
            assert over.status_code == 429 and over.headers["retry-after"] == "5"
            assert "this key" in over.json()["detail"]
            assert _open(outer, base, second).status_code == 200
            total = httpx.get(f"{base}/v1/events", headers={"X-API-Key": second}, timeout=5)
            assert total.status_code == 429 and "the server" in total.json()["detail"]
        _wait_streams(app, 1)  # the first key's clients left: their slots are free
        assert _open(outer, base, first).status_code == 200
        _wait_streams(app, 2)


def test_scoped_stream_sees_only_its_sites(served: tuple[FastAPI, str, str]) -> None:
    app, base, everything = served
    north = _key(app, "north-only", ("north",))
    store = store_of(app)
    with ExitStack() as stack:
        scoped, unscoped = _open(stack, base, north), _open(stack, base, everything)
        _wait_streams(app, 2)
        apply_event(store, make_event("south-1", 0, site="south"))
        apply_event(store, make_event("north-1", 0, site="north"))
        assert [e["id"] for e in _next_events(scoped, 1)] == ["north-1"]
        assert [e["id"] for e in _next_events(unscoped, 2)] == ["south-1", "north-1"]
    resumed = _read_events(base, north, 1, headers={"Last-Event-ID": "0"})
    assert [json.loads(e["data"])["id"] for e in resumed] == ["north-1"]
