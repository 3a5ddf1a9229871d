"""Database retention on SQLite and PostgreSQL: closed, not kept incidents that ended before the cut-off go with their
events, handling actions and webhook deliveries, in batches; open, kept and recent ones stay; delivered and dead
outbox rows past their cut-off are pruned, pending ones never."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import ColumnElement, func, select, update

from api.store.db import Store
from api.store.handling import Action, Actor, handle
from api.store.incidents import apply_event
from api.store.models import (
    Base,
    DeliveryStatus,
    HandlingAction,
    Incident,
    IncidentEventRow,
    WebhookDelivery,
)
from api.store.outbox import create_webhook
from api.store.retention import prune_outbox, purge_incidents
from tests.api.conftest import T0, make_event

NOW = T0 + timedelta(days=400)
CUTOFF = NOW - timedelta(days=365)
ANN = Actor("ann", key_id="k1", key_name="ann's key")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    with s.session() as session:  # every event below gets one outbox row
        create_webhook(session, url="https://hooks.example/in", secret="s", fmt="json", filters={})
    yield s
    s.dispose()


def _incident(store: Store, incident_id: str, ended: datetime | None, updates: int = 1) -> None:
    """An incident opened at `ended` - 1 min with `updates` updates, closed at `ended` (open when None)."""
    started = (ended or NOW) - timedelta(minutes=1)
    for seq in range(updates + 1):
        apply_event(store, make_event(incident_id, seq, started_at=started))
    if ended is not None:
        closed = make_event(incident_id, updates + 1, started_at=started, type="closed", ended_at=ended)
        apply_event(store, closed)


def _count(store: Store, model: type[Base], *where: ColumnElement[bool]) -> int:
    with store.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _ids(store: Store) -> set[str]:
    with store.read() as s:
        return set(s.scalars(select(Incident.id)))


def test_old_closed_incidents_go_with_their_rows_in_batches(store: Store) -> None:
    old = [f"old-{i}" for i in range(5)]
    for inc in old:
        _incident(store, inc, T0)  # 3 events each: opened, updated, closed
    _incident(store, "old-acked", T0)
    _incident(store, "old-kept", T0)
    _incident(store, "old-open", None)  # opened 400 days ago and never closed
    _incident(store, "recent", NOW - timedelta(days=10))
    _incident(store, "at-cutoff", CUTOFF)  # ended exactly at the cut-off: not older than it
    with store.session() as session:
        handle(session, "old-acked", Action.ack, actor=ANN, note="seen")
        handle(session, "old-kept", Action.false_positive, actor=ANN, note="a shadow")  # marks it keep
    batches: list[list[str]] = []

    purged = purge_incidents(store, CUTOFF, batch=2, on_batch=lambda ids: batches.append(list(ids)))

    deleted = set(old) | {"old-acked"}
    assert set(purged.incident_ids) == deleted and len(purged.incident_ids) == 6
    assert [len(b) for b in batches] == [2, 2, 2]
    assert purged.rows == {"incidents": 6, "incident_events": 18, "handling_actions": 1, "webhook_deliveries": 18}
    assert _ids(store) == {"old-kept", "old-open", "recent", "at-cutoff"}
    assert _count(store, IncidentEventRow) == 3 + 2 + 3 + 3  # the open one has no `closed` event
    assert _count(store, WebhookDelivery) == _count(store, IncidentEventRow)
    assert _count(store, HandlingAction) == 1  # old-kept's false positive
    assert _count(store, IncidentEventRow, IncidentEventRow.incident_id.in_(deleted)) == 0

    again = purge_incidents(store, CUTOFF, batch=2)  # nothing left to do
    assert again.incident_ids == [] and again.rows == {}


def test_a_stopped_purge_deletes_nothing_more(store: Store) -> None:
    _incident(store, "old", T0)
    stop = threading.Event()
    stop.set()
    assert purge_incidents(store, CUTOFF, stop=stop).incident_ids == []
    assert _ids(store) == {"old"}


def test_outbox_prunes_delivered_and_dead_rows_past_the_cutoff(store: Store) -> None:
    _incident(store, "inc", NOW - timedelta(days=1), updates=4)  # 6 events: 6 deliveries
    with store.read() as s:
        d = list(s.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id)))
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=5)
    states = [
        (d[0], DeliveryStatus.delivered, old, old),  # pruned
        (d[1], DeliveryStatus.delivered, recent, recent),
        (d[2], DeliveryStatus.dead, old, None),  # pruned: last attempted 40 days ago
        (d[3], DeliveryStatus.dead, recent, None),
        (d[4], DeliveryStatus.pending, old, None),  # pending: never pruned, however old
    ]
    with store.session() as s:
        for delivery_id, status, attempt_at, delivered_at in states:
            s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(status=status, next_attempt_at=attempt_at, delivered_at=delivered_at)
            )

    assert prune_outbox(store, NOW - timedelta(days=30), batch=1) == 2
    with store.read() as s:
        left = set(s.scalars(select(WebhookDelivery.id)))
    assert left == {d[1], d[3], d[4], d[5]}
    assert prune_outbox(store, NOW - timedelta(days=30)) == 0
    assert _count(store, IncidentEventRow) == 6  # the events stay: only the incident purge deletes them
