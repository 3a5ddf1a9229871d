"""The store on SQLite and PostgreSQL: migrations, idempotent/out-of-order apply_event, outbox, pagination, stats."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from api.store.db import Store
from api.store.handling import Action, Actor, InvalidTransition, handle
from api.store.incidents import BadCursor, IncidentFilter, apply_event, decode_cursor, list_incidents
from api.store.models import Base, Incident, IncidentEventRow, WebhookDelivery
from api.store.outbox import create_webhook
from api.store.stats import incident_stats
from tests.api.conftest import T0, make_event

ANN = Actor("ann", key_id="k1", key_name="ann's key")


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url)
    yield s
    s.dispose()


def _state(store: Store) -> list[dict[str, Any]]:
    with store.session() as s:
        rows = s.scalars(select(Incident).order_by(Incident.id)).all()
        cols = [c.key for c in inspect(Incident).mapper.column_attrs if c.key != "created_at"]
        return [{c: getattr(r, c) for c in cols} for r in rows]


def _count(store: Store, model: type[Base]) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_migrations_match_models_and_rerun_is_noop(db_url: str) -> None:
    Store(db_url).dispose()
    store = Store(db_url)  # second start: upgrade head is a no-op
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
        assert diff == []
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0009"
    store.dispose()


def test_replaying_events_twice_changes_nothing(store: Store) -> None:
    events = [make_event("a", s) for s in range(3)] + [make_event("a", 3, type="closed", ended_at=T0)]
    events += [make_event("b", 0, camera_id="gate-4")]
    results = [apply_event(store, e) for e in events]
    assert all(r.applied for r in results)
    numbers = [r.number for r in results]
    assert numbers == sorted(numbers) and len(set(numbers)) == 5
    before = _state(store)
    again = [apply_event(store, e) for e in events]
    assert not any(r.applied for r in again)
    assert [r.number for r in again] == numbers
    assert _state(store) == before
    assert _count(store, IncidentEventRow) == 5
    a = next(s for s in before if s["id"] == "a")
    assert (a["status"], a["last_seq"], a["handling"], a["ended_at"]) == ("closed", 3, "new", T0)


def test_older_seq_never_overwrites_newer_state(store: Store) -> None:
    apply_event(store, make_event("a", 2, confidence=0.95, snapshot_url="a/2.jpg"))
    late = apply_event(store, make_event("a", 1, confidence=0.1, snapshot_url="a/1.jpg"))
    assert late.applied and not late.state_changed
    first = apply_event(store, make_event("a", 0, confidence=0.2))
    assert first.applied and not first.state_changed
    (a,) = _state(store)
    assert (a["last_seq"], a["confidence"], a["snapshot_path"]) == (2, 0.95, "a/2.jpg")
    assert _count(store, IncidentEventRow) == 3


def test_outbox_rows_follow_filters_in_the_same_transaction(store: Store) -> None:
    with store.session() as s:
        create_webhook(s, url="http://127.0.0.1:9/a", secret="x" * 8, fmt="json", filters={})
        create_webhook(s, url="http://127.0.0.1:9/b", secret="x" * 8, fmt="json", filters={"sites": ["other"]})
        create_webhook(s, url="http://127.0.0.1:9/c", secret="x" * 8, fmt="json", filters={"rules": ["exit_blocked"]})
    assert apply_event(store, make_event("a", 0)).deliveries == 2
    assert apply_event(store, make_event("a", 0)).deliveries == 0  # replay: no new outbox rows
    assert apply_event(store, make_event("b", 0, rule="intrusion")).deliveries == 1
    assert _count(store, WebhookDelivery) == 3


def test_concurrent_duplicate_writers_store_one_event(store: Store) -> None:
    event = make_event("race", 0)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(apply_event(store, event).applied)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert _count(store, IncidentEventRow) == 1


def test_cursor_pagination_is_stable_with_ties_and_filters(store: Store) -> None:
    for i in range(7):  # pairs share started_at: ordering falls back to id
        apply_event(store, make_event(f"inc-{i}", 0, started_at=T0 + timedelta(minutes=i // 2)))
    apply_event(store, make_event("other", 0, camera_id="cam-x"))
    seen: list[str] = []
    cursor: str | None = None
    with store.session() as s:
        while True:
            rows, cursor = list_incidents(s, IncidentFilter(camera="gate-3"), cursor=cursor, limit=3)
            seen += [r.id for r in rows]
            if cursor is None:
                break
    assert seen == ["inc-6", "inc-5", "inc-4", "inc-3", "inc-2", "inc-1", "inc-0"]
    with store.session() as s:
        rows, _ = list_incidents(s, IncidentFilter(since=T0 + timedelta(minutes=2)), cursor=None, limit=50)
        assert {r.id for r in rows} == {"inc-4", "inc-5", "inc-6"}
        rows, _ = list_incidents(s, IncidentFilter(status="closed"), cursor=None, limit=50)
        assert rows == []


@pytest.mark.parametrize("cursor", ["", "%%%", "bm90IGpzb24", "WzEsMl0", "WyIyMDI1LTAzLTAxIiwieCJd"])
def test_bad_cursors_are_rejected(cursor: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(cursor)


def test_handling_transitions_and_stats(store: Store) -> None:
    apply_event(store, make_event("a", 0))
    apply_event(store, make_event("b", 0, site="other", started_at=T0 + timedelta(days=1)))
    with store.session() as s:
        handle(s, "a", Action.ack, actor=ANN, note="on it")
        handle(s, "a", Action.resolve, actor=ANN, note=None)
    with pytest.raises(InvalidTransition, match="resolved"), store.session() as s:
        handle(s, "a", Action.false_positive, actor=Actor("bob", None, None), note=None)
    with store.session() as s:
        stats = incident_stats(s, since=None, until=None)
        scoped = incident_stats(s, since=None, until=None, sites=frozenset({"other"}))
    assert stats["total"] == {"all": 2}
    assert stats["site"] == {"other": 1, "sip-plot-12": 1}
    assert stats["handling"] == {"new": 1, "resolved": 1}
    assert stats["day"] == {"2025-03-01": 1, "2025-03-02": 1}
    assert (scoped["total"], scoped["site"], scoped["handling"]) == ({"all": 1}, {"other": 1}, {"new": 1})
