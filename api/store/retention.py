"""Database retention: closed incidents past their age, with everything that hangs off them, and finished outbox rows.

- `purge_incidents`: incidents that are `closed`, not marked `keep` and ended (`ended_at`; `updated_at` when a closed
  incident has none) before a cut-off are deleted with their events, handling actions and the outbox rows of those
  events. Dependent rows are found from the foreign keys of the schema (`Base.metadata`) and deleted explicitly,
  children first, so a table added later that references incidents or events is covered without relying on
  `ON DELETE CASCADE`.
- `prune_outbox`: `delivered` deliveries whose `delivered_at`, and `dead` ones whose last attempt (`next_attempt_at`),
  is before a cut-off. Pending deliveries are never pruned.

Both work in batches of at most `batch` rows: found in a read transaction, deleted in one short write transaction
each, sized so that it holds the store for about `TARGET_HOLD_S` at most, with a pause between batches as long as the
last one took: a years-long backlog never holds the write lock long, and on SQLite, whose writers wait for each
other, the API's writers (the store consumer, handling actions) get in between two batches.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from api.store.db import Store
from api.store.models import Base, DeliveryStatus, Incident, IncidentStatus, WebhookDelivery

BATCH = 500  # most rows one write transaction deletes (incidents: with their events, actions and deliveries)
FIRST_BATCH = 10  # the first batch of a run: grown while fast, halved while slow (`_next_size`)
TARGET_HOLD_S = 0.5
MIN_PAUSE_S = 0.05


@dataclass
class Purged:
    """What a purge deleted: incident ids in order, and rows per table (the incidents table included)."""

    incident_ids: list[str] = field(default_factory=list)
    rows: Counter[str] = field(default_factory=Counter)


def purge_incidents(
    store: Store,
    before: datetime,
    *,
    batch: int = BATCH,
    on_batch: Callable[[Sequence[str]], None] | None = None,
    stop: threading.Event | None = None,
) -> Purged:
    """Delete closed, not kept incidents that ended before `before`, with their dependent rows.

    `on_batch(ids)` runs after each committed batch (the caller deletes the evidence of those incidents); `stop`
    ends the purge between two batches.
    """
    incidents = Incident.__table__
    assert isinstance(incidents, Table)
    ended = func.coalesce(Incident.ended_at, Incident.updated_at)
    due = and_(Incident.status == IncidentStatus.closed, Incident.keep.is_(False), ended < before)
    out = Purged()

    def work(session: Session, ids: list[Any]) -> None:
        out.rows.update(_delete_tree(session, incidents, incidents.c.id.in_(ids)))

    def after(ids: list[Any]) -> None:
        out.incident_ids.extend(ids)
        if on_batch is not None:
            on_batch(ids)

    _in_batches(store, Incident.id, due, work, after=after, batch=batch, stop=stop)
    return out


def prune_outbox(store: Store, before: datetime, *, batch: int = BATCH, stop: threading.Event | None = None) -> int:
    """Delete deliveries delivered before `before` and dead ones last attempted before it; returns how many."""
    done = or_(
        and_(
            WebhookDelivery.status == DeliveryStatus.delivered,
            func.coalesce(WebhookDelivery.delivered_at, WebhookDelivery.next_attempt_at) < before,
        ),
        and_(WebhookDelivery.status == DeliveryStatus.dead, WebhookDelivery.next_attempt_at < before),
    )

    def work(session: Session, ids: list[Any]) -> None:
        session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).execution_options(synchronize_session=False)
        )

    return _in_batches(store, WebhookDelivery.id, done, work, batch=batch, stop=stop)


def _in_batches(
    store: Store,
    key: InstrumentedAttribute[Any],
    due: ColumnElement[bool],
    work: Callable[[Session, list[Any]], None],
    *,
    after: Callable[[list[Any]], None] | None = None,
    batch: int,
    stop: threading.Event | None,
) -> int:
    """`work(session, keys)` on the rows matching `due`, `batch` at a time; returns how many rows it was given.

    The search runs in a read transaction (on SQLite it takes no write lock, however long it scans); the write
    transaction re-checks `due` on the keys found, so a row marked keep or re-driven meanwhile is spared, and on
    PostgreSQL skips rows another writer holds right now (they wait for the next run). `after(keys)` runs after the
    commit.
    """
    total, size = 0, min(batch, FIRST_BATCH)
    while stop is None or not stop.is_set():
        with store.read() as session:
            found = list(session.scalars(select(key).where(due).limit(size)))
        if not found:
            break
        started = time.monotonic()
        with store.session() as session:
            keys = list(session.scalars(select(key).where(key.in_(found), due).with_for_update(skip_locked=True)))
            if keys:
                work(session, keys)
        held = time.monotonic() - started
        total += len(keys)
        if keys and after is not None:
            after(keys)
        if len(found) < size or not keys:
            break
        size = _next_size(size, held, batch)
        _pause(held, stop)
    return total


def _next_size(size: int, held: float, batch: int) -> int:
    """Halve the batch when its write transaction held the store longer than TARGET_HOLD_S, double it (up to
    `batch`) when it took less than half of that: slow deletes (a big table without the index a foreign key check
    needs) hold the lock for about TARGET_HOLD_S, not for minutes."""
    if held > TARGET_HOLD_S:
        return max(1, size // 2)
    return min(batch, size * 2) if held < TARGET_HOLD_S / 2 else size


def _delete_tree(session: Session, table: Table, where: ColumnElement[bool]) -> Counter[str]:
    """Delete the rows of `table` matching `where` and, first, every row that references them (recursively)."""
    counts: Counter[str] = Counter()
    for child in Base.metadata.sorted_tables:
        for fk in child.foreign_keys:
            if fk.column.table is table and child is not table:
                counts.update(_delete_tree(session, child, fk.parent.in_(select(fk.column).where(where))))
    result = session.execute(delete(table).where(where).execution_options(synchronize_session=False))
    counts[table.name] += int(result.rowcount)  # type: ignore[attr-defined]
    return counts


def _pause(held: float, stop: threading.Event | None) -> None:
    """Wait as long as the last write transaction took (at least MIN_PAUSE_S): the store is ours at most half of
    the time."""
    wait = max(MIN_PAUSE_S, held)
    if stop is not None:
        stop.wait(wait)
    else:
        time.sleep(wait)
