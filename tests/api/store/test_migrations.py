"""Migrations 0002 to 0005 over a database the previous release filled (fixtures/prev_release_0001.db, see
fixtures/README.md).

Rows are read by reflection, not through today's ORM models, so the comparison sees what is stored. Every row of every
table must survive the upgrade with the same values; the new columns are NULL (keys for every site, actions whose key
is unknown); stored webhook response bodies are gone; the new `camera_fences` table (0003) is empty, so no stored or
replayed event of before is fenced; 0004 adds retention's indexes and nothing else; 0005 adds the empty
`evidence_checkpoints` table. The same upgrade (and the
downgrade) runs on PostgreSQL over the same rows, loaded at revision 0001.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, inspect, select, text

from api.app import create_app
from api.settings import Settings
from api.store.db import MIGRATIONS_DIR, Store, make_engine, migrate
from api.store.incidents import apply_event, camera_fence
from api.store.models import Incident, IncidentEventRow
from pipelines.events import EventType, IncidentEvent
from tests.api.conftest import auth, pg_schema

FIXTURES = Path(__file__).parent / "fixtures"
PREVIOUS = FIXTURES / "prev_release_0001.db"
KEYS: dict[str, str] = json.loads((FIXTURES / "prev_release_0001.json").read_text(encoding="utf-8"))["keys"]
TABLES = ("incidents", "incident_events", "handling_actions", "api_keys", "webhooks", "webhook_deliveries")  # FK order
NEW_COLUMNS = {"api_keys": {"sites"}, "handling_actions": {"key_id", "key_name"}}
NEW_DEFAULTS: dict[str, dict[str, Any]] = {
    "incidents": {"shadow": False, "candidate": None},  # 0008
    "incident_events": {"shadow": False},  # 0008
    # 0006: existing subscriptions unpaced, Chinese texts, incidents only; existing deliveries are incident rows
    "webhooks": {
        "min_interval_s": 0,
        "rate_limit_per_min": 0,
        "language": "zh-CN",
        "events": ["incident"],
        "lease_owner": None,
        "lease_until": None,
    },
    "webhook_deliveries": {"kind": "incident", "payload": None, "group_key": None, "digest_id": None},
}
NEW_TABLES: tuple[str, ...] = ("camera_fences", "evidence_checkpoints", "site_maps", "site_map_markers")
NEW_TABLES += ("report_subscriptions",)  # 0009
NEW_INDEXES = {"webhook_deliveries": "ix_webhook_deliveries_event", "incidents": "ix_incidents_status_ended"}
HEAD = "0009"
Rows = dict[str, list[dict[str, Any]]]


def _plain(value: Any) -> Any:
    """Aware datetimes (PostgreSQL) as naive UTC, as SQLite stores them."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _rows(engine: Engine) -> Rows:
    meta = MetaData()
    meta.reflect(engine, only=TABLES)
    out: Rows = {}
    with engine.connect() as conn:
        for name in TABLES:
            table = meta.tables[name]
            query = select(table).order_by(*table.primary_key.columns)
            out[name] = [{k: _plain(v) for k, v in row._mapping.items()} for row in conn.execute(query)]
    return out


def _version(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())


def _alembic(engine: Engine, action: Callable[[Config, str], None], revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        action(cfg, revision)


def _error_class(row: dict[str, Any]) -> str | None:
    """What 0002 makes of an old `last_error` (free text that may quote the receiver's response)."""
    if row["last_error"] is None:
        return None
    if row["last_error"].startswith("HTTP ") and row["response_code"] is not None:
        return f"http_{row['response_code']}"
    return "request_error"


def _assert_upgraded(before: Rows, after: Rows) -> None:
    for table in TABLES:
        new = NEW_COLUMNS.get(table, set())
        defaults = NEW_DEFAULTS.get(table, {})
        assert len(after[table]) == len(before[table]), table
        for old, row in zip(before[table], after[table], strict=True):
            assert {c: row[c] for c in new} == dict.fromkeys(new), (table, row)
            assert {c: row[c] for c in defaults} == defaults, (table, row)  # existing rows: production's
            kept = {k: v for k, v in row.items() if k not in new and k not in defaults}
            expected = {**old, "last_error": _error_class(old)} if table == "webhook_deliveries" else old
            assert kept == expected, table


def _new_tables(engine: Engine) -> dict[str, int]:
    """Row counts of the tables added since revision 0001 that exist (absent ones are left out)."""
    present = set(inspect(engine).get_table_names()) & set(NEW_TABLES)
    with engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() or 0) for t in sorted(present)}


def _indexes(engine: Engine) -> set[str]:
    """Which of the indexes migration 0004 adds are present."""
    found = {t: {i["name"] for i in inspect(engine).get_indexes(t)} for t in NEW_INDEXES}
    return {name for table, name in NEW_INDEXES.items() if name in found[table]}


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Rows:
    """The fixture's rows (read from a copy: opening a SQLite file can write to it), and a check that it holds what
    the test is about."""
    copy = tmp_path_factory.mktemp("previous") / "store.db"
    shutil.copyfile(PREVIOUS, copy)
    engine = make_engine(f"sqlite:///{copy.as_posix()}")
    assert _version(engine) == "0001"
    rows = _rows(engine)
    engine.dispose()
    assert len(rows["incidents"]) >= 3 and len(rows["incident_events"]) > len(rows["incidents"])
    assert {a["action"] for a in rows["handling_actions"]} == {"ack", "resolve", "false-positive"}
    assert {k["role"] for k in rows["api_keys"]} == {"admin", "viewer"} and len(rows["webhooks"]) == 2
    errors = [d["last_error"] or "" for d in rows["webhook_deliveries"]]
    assert any(e.startswith("HTTP 500: internal receiver error") for e in errors)
    assert any(e and not e.startswith("HTTP") for e in errors)
    return rows


@pytest.fixture
def upgraded_sqlite(tmp_path: Path) -> Iterator[str]:
    db = tmp_path / "store.db"
    shutil.copyfile(PREVIOUS, db)
    yield f"sqlite:///{db.as_posix()}"


def test_sqlite_upgrade_keeps_every_row(previous: Rows, upgraded_sqlite: str) -> None:
    engine = make_engine(upgraded_sqlite)
    migrate(engine)  # what every start does: alembic upgrade head
    assert _version(engine) == HEAD
    after = _rows(engine)
    _assert_upgraded(previous, after)
    assert "hunter2" not in json.dumps([d["last_error"] for d in after["webhook_deliveries"]])
    assert _new_tables(engine) == dict.fromkeys(NEW_TABLES, 0)
    assert _indexes(engine) == set(NEW_INDEXES.values())
    after = {
        t: [{k: v for k, v in r.items() if k not in NEW_DEFAULTS.get(t, {})} for r in rs] for t, rs in after.items()
    }
    _alembic(engine, command.downgrade, "0004")
    assert _new_tables(engine) == {"camera_fences": 0} and _rows(engine) == after  # 0005 down: only checkpoints go
    _alembic(engine, command.downgrade, "0003")
    assert _indexes(engine) == set() and _rows(engine) == after  # 0004 down: only the indexes go
    _alembic(engine, command.downgrade, "0002")
    assert _new_tables(engine) == {} and _rows(engine) == after  # 0003 down: only the fences go
    _alembic(engine, command.downgrade, "0001")
    columns = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in NEW_COLUMNS}
    assert not any(NEW_COLUMNS[t] & columns[t] for t in NEW_COLUMNS)
    assert {t: len(r) for t, r in _rows(engine).items()} == {t: len(r) for t, r in previous.items()}
    engine.dispose()


def test_old_keys_still_work_unscoped(previous: Rows, upgraded_sqlite: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=upgraded_sqlite, webhook_dispatcher=False)
    with TestClient(create_app(settings)) as client:
        keys = client.get("/v1/keys", headers=auth(KEYS["admin"]))
        assert keys.status_code == 200
        assert {(k["role"], k["sites"]) for k in keys.json()} == {("admin", None), ("viewer", None)}
        viewer = auth(KEYS["viewer"])
        listed = client.get("/v1/incidents", params={"limit": 500}, headers=viewer).json()["items"]
        assert len(listed) == len(previous["incidents"])
        handled = previous["handling_actions"][0]["incident_id"]
        actions = client.get(f"/v1/incidents/{handled}", headers=viewer).json()["actions"]
        assert actions[0]["actor"] == "ann" and (actions[0]["key_id"], actions[0]["key_name"]) == (None, None)
        fresh = next(i["id"] for i in listed if i["handling"] == "new")
        r = client.post(f"/v1/incidents/{fresh}/ack", headers=auth(KEYS["admin"]))
        admin_id = next(k["id"] for k in keys.json() if k["role"] == "admin")
        assert r.json()["actions"][-1]["key_id"] == admin_id


def test_fencing_on_an_upgraded_database(previous: Rows, upgraded_sqlite: str) -> None:
    """Stored events of before (no token) still read and de-duplicate; a camera's first token starts its fence."""
    store = Store(upgraded_sqlite)  # migrates to head
    old = [IncidentEvent.model_validate(e["payload"]) for e in previous["incident_events"]]
    assert all(e.fence is None for e in old)
    assert not any(apply_event(store, e).applied for e in old[:5])  # a replay of before: duplicates, not fenced
    camera = old[0].camera_id
    new = old[0].model_copy(update={"id": "after-0003", "seq": 0, "type": EventType.opened, "fence": 7})
    assert apply_event(store, new).applied
    stale = new.model_copy(update={"seq": 1, "type": EventType.closed, "fence": 6})
    assert apply_event(store, stale).fenced
    with store.read() as session:
        assert camera_fence(session, camera) == 7
        assert session.query(Incident).count() == len(previous["incidents"]) + 1
    store.dispose()


def test_site_maps_upgrade_and_downgrade(upgraded_sqlite: str) -> None:
    """0007 adds `site_maps` and `site_map_markers` (empty); its downgrade drops them with their rows, no other row."""
    engine = make_engine(upgraded_sqlite)
    migrate(engine)
    before = {t: len(r) for t, r in _rows(engine).items()}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO site_maps (site, image, image_sha256, content_type, width, height, updated_at) "
                "VALUES ('s', :image, 'ab', 'image/png', 2, 1, '2026-12-02 04:00:00')"
            ),
            {"image": b"png"},
        )
        conn.execute(text("INSERT INTO site_map_markers (site, camera_id, x, y) VALUES ('s', 'cam-1', 0.25, 0.5)"))
    _alembic(engine, command.downgrade, "0006")
    assert not {"site_maps", "site_map_markers"} & set(inspect(engine).get_table_names())
    assert {t: len(r) for t, r in _rows(engine).items()} == before  # later revisions' columns may go, no row does
    migrate(engine)  # and up again: empty
    assert {t: n for t, n in _new_tables(engine).items() if t.startswith("site_map")} == {
        "site_map_markers": 0,
        "site_maps": 0,
    }
    engine.dispose()


def test_shadow_columns_upgrade_and_downgrade(upgraded_sqlite: str) -> None:
    """0008 adds `incidents.shadow`/`candidate` and `incident_events.shadow` (old rows: production's); a shadow
    event stored on the upgraded store keeps its flag and gets no outbox row; the downgrade drops the columns and
    no row."""
    store = Store(upgraded_sqlite)  # migrates to head
    with store.read() as session:
        webhooks = session.execute(text("SELECT COUNT(*) FROM webhooks")).scalar()
        outbox = session.execute(text("SELECT COUNT(*) FROM webhook_deliveries")).scalar()
        old = session.scalars(select(IncidentEventRow.payload)).first()
    assert webhooks and old is not None
    event = IncidentEvent.model_validate(old).model_copy(
        update={"id": "shadow-0008", "seq": 0, "type": EventType.opened, "shadow": True, "candidate": "cand-1"}
    )
    assert apply_event(store, event).deliveries == 0
    with store.read() as session:
        row = session.get(Incident, "shadow-0008")
        assert row is not None and (row.shadow, row.candidate) == (True, "cand-1")
        assert session.execute(text("SELECT COUNT(*) FROM webhook_deliveries")).scalar() == outbox
    store.dispose()
    engine = make_engine(upgraded_sqlite)
    before = {t: len(r) for t, r in _rows(engine).items()}
    _alembic(engine, command.downgrade, "0007")
    columns = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in ("incidents", "incident_events")}
    assert not ({"shadow", "candidate"} & columns["incidents"]) and "shadow" not in columns["incident_events"]
    assert {t: len(r) for t, r in _rows(engine).items()} == before
    engine.dispose()


def test_webhook_delivery_control_upgrade_and_downgrade(upgraded_sqlite: str) -> None:
    """0006: a digest delivery (no event) and a send record fit the upgraded store; the downgrade drops them, the
    new columns and `webhook_sends`, and keeps every other row (event_number NOT NULL again)."""
    engine = make_engine(upgraded_sqlite)
    migrate(engine)
    before = {t: len(r) for t, r in _rows(engine).items()}
    with engine.begin() as conn:
        hook = conn.execute(text("SELECT id FROM webhooks")).scalars().first()
        conn.execute(
            text(
                "INSERT INTO webhook_deliveries (webhook_id, event_number, event_key, status, attempts,"
                " next_attempt_at, created_at, kind, payload, group_key) VALUES (:hook, NULL, 'digest:1', 'pending', 0,"
                " '2026-12-02 04:00:00', '2026-12-02 04:00:00', 'incident.digest', '{\"events\": []}', 'intrusion@c')"
            ),
            {"hook": hook},
        )
        conn.execute(
            text("INSERT INTO webhook_sends (webhook_id, group_key, at) VALUES (:hook, 'intrusion@c', '2026-12-02')"),
            {"hook": hook},
        )
    _alembic(engine, command.downgrade, "0005")
    assert "webhook_sends" not in inspect(engine).get_table_names()
    columns = {t: {c["name"]: c for c in inspect(engine).get_columns(t)} for t in ("webhooks", "webhook_deliveries")}
    assert not {"min_interval_s", "rate_limit_per_min", "language", "events", "lease_owner"} & set(columns["webhooks"])
    assert not {"kind", "payload", "group_key", "digest_id"} & set(columns["webhook_deliveries"])
    assert columns["webhook_deliveries"]["event_number"]["nullable"] is False
    assert {t: len(r) for t, r in _rows(engine).items()} == before  # the digest went, every older row stayed
    migrate(engine)  # and up again
    assert _version(engine) == HEAD
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema("t_mig") as url:
        yield url


@pytest.mark.postgres
def test_postgres_upgrade_and_downgrade_keep_every_row(previous: Rows, pg_url: str) -> None:
    engine = make_engine(pg_url)
    _alembic(engine, command.upgrade, "0001")
    meta = MetaData()
    meta.reflect(engine, only=TABLES)
    with engine.begin() as conn:
        for table in TABLES:
            if previous[table]:
                conn.execute(meta.tables[table].insert(), previous[table])
    assert _rows(engine) == previous  # the previous release's rows, as they would be on PostgreSQL
    migrate(engine)
    assert _version(engine) == HEAD
    _assert_upgraded(previous, _rows(engine))
    assert _new_tables(engine) == dict.fromkeys(NEW_TABLES, 0)
    assert _indexes(engine) == set(NEW_INDEXES.values())
    _alembic(engine, command.downgrade, "0001")
    assert _version(engine) == "0001" and _new_tables(engine) == {} and _indexes(engine) == set()
    columns = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in NEW_COLUMNS}
    assert not any(NEW_COLUMNS[t] & columns[t] for t in NEW_COLUMNS)
    migrate(engine)  # and up again
    assert _version(engine) == HEAD
    engine.dispose()


def test_0009_adds_only_the_report_subscriptions_table(upgraded_sqlite: str) -> None:
    engine = make_engine(upgraded_sqlite)
    _alembic(engine, command.upgrade, "0008")
    before = _rows(engine)
    _alembic(engine, command.upgrade, "0009")
    columns = {c["name"] for c in inspect(engine).get_columns("report_subscriptions")}
    assert columns == {
        "id", "site", "url", "secret", "format", "local_time", "timezone", "language", "last_sent_date",
        "next_attempt_at", "last_error", "created_at",
    }  # fmt: skip
    assert {i["name"] for i in inspect(engine).get_indexes("report_subscriptions")} == {"ix_report_subscriptions_site"}
    assert _rows(engine) == before
    _alembic(engine, command.downgrade, "0008")
    assert "report_subscriptions" not in inspect(engine).get_table_names() and _rows(engine) == before
    engine.dispose()
