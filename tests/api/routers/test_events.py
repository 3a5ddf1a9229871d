"""SSE over a real uvicorn server: live events, `Last-Event-ID` resume from the store, bad ids rejected."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.auth import Role
from api.store.incidents import apply_event
from tests.api.conftest import add_keys, make_event, make_settings, store_of

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def served(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[FastAPI, str, str]]:
    app = create_app(make_settings(tmp_path, sqlite_url, webhook_dispatcher=False))
    key = add_keys(store_of(app))[Role.platform]
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
    yield app, f"http://127.0.0.1:{port}", key
    server.should_exit = True
    thread.join(timeout=10)


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
        time.sleep(0.3)
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
