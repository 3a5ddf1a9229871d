"""API test fixtures: a temp data dir, the store on SQLite and (when reachable) PostgreSQL, keys per role."""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.app import create_app
from api.auth import Role
from api.settings import Settings
from api.store.db import Store
from api.store.keys import create_key
from pipelines.events import IncidentEvent

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _pg_reachable() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            pass
    except OSError as exc:
        return f"PostgreSQL not reachable on 127.0.0.1:5432 ({exc})"
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL database `test` unusable: {type(exc).__name__}"
    return None


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a unique PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
        return
    with pg_schema("t") as url:
        yield url


@contextlib.contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """A URL of the test PostgreSQL database on a unique, empty schema, dropped afterwards."""
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    schema = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'store.db').as_posix()}"


def make_settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "config_dir": tmp_path / "cameras",
        "database_url": url,
        "public_base_url": "http://safewatch.test",
        "webhook_backoff_base_s": 0.05,
        "webhook_backoff_max_s": 0.2,
        "webhook_poll_interval_s": 0.05,
        "webhook_max_attempts": 3,
        "webhook_timeout_s": 2.0,
        "webhook_lease_s": 5.0,
        "sse_poll_interval_s": 0.1,
        "sse_ping_s": 5,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path, sqlite_url)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def store_of(app: FastAPI) -> Store:
    store: Store = app.state.ctx.store
    return store


def add_keys(store: Store) -> dict[Role, str]:
    out: dict[Role, str] = {}
    with store.session() as session:
        for role in Role:
            _row, plain = create_key(session, role=role.value, name=f"{role.value}-key")
            out[role] = plain
    return out


@pytest.fixture
def keys(app: FastAPI) -> dict[Role, str]:
    return add_keys(store_of(app))


def auth(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


EventFactory = Callable[..., IncidentEvent]


def make_event(incident: str = "inc-1", seq: int = 0, **fields: Any) -> IncidentEvent:
    """A realistic IncidentEvent; `type` follows seq (0 opened, else updated) unless given."""
    started = fields.pop("started_at", T0)
    values: dict[str, Any] = {
        "id": incident,
        "type": "opened" if seq == 0 else "updated",
        "camera_id": "gate-3",
        "site": "sip-plot-12",
        "rule": "exit_blocked",
        "zone": "fire_lane",
        "severity": "critical",
        "started_at": started,
        "updated_at": started + timedelta(seconds=5 * seq),
        "offset_s": 12.5 + 5 * seq,
        "track_ids": [3, 7],
        "labels": ["person"],
        "confidence": 0.8 + 0.01 * seq,
        "seq": seq,
    }
    values.update(fields)
    return IncidentEvent(**values)
