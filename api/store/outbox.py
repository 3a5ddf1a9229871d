"""Webhook subscriptions and the delivery outbox (claims with a lease, retries, dead letters, re-drive).

A delivery row carries one incident event (`event_number`), a digest that folded several (`kind` `incident.digest`,
its own `payload`; the rows it folded point at it with `digest_id` and follow its outcome), or an evidence
checkpoint (`evidence.checkpoint`, its own `payload`). Rows of subscriptions without push rate control are claimed
here, each on its own; paced subscriptions (`min_interval_s` or `rate_limit_per_min`) are claimed by
`api.store.pacing`, which folds and spaces them.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from api.jsontypes import EventJSON, FilterLists
from api.store.models import (
    DeliveryStatus,
    EvidenceCheckpoint,
    IncidentEventRow,
    Webhook,
    WebhookDelivery,
    WebhookSend,
    utcnow,
)
from pipelines.events import IncidentEvent

INCIDENT = "incident"
DIGEST = "incident.digest"
CHECKPOINT = "evidence.checkpoint"
EVENT_KINDS = (INCIDENT, CHECKPOINT)  # what a subscription may ask for (`events`); digests are incident messages


def matches(filters: FilterLists, event: IncidentEvent) -> bool:
    """Empty/missing filter lists match everything; otherwise the event's value must be listed."""
    for key, value in (("sites", event.site), ("cameras", event.camera_id), ("rules", event.rule)):
        allowed = filters.get(key) or []
        if allowed and value not in allowed:
            return False
    return True


def group_key(event: IncidentEvent) -> str:
    """What a digest folds: one camera's incidents of one rule (rule names hold no `@`)."""
    return f"{event.rule}@{event.camera_id}"


def wants(hook: Webhook, kind: str) -> bool:
    return kind in (hook.events or [INCIDENT])


def enqueue_deliveries(session: Session, event: IncidentEvent, number: int) -> int:
    """Outbox rows for every matching subscription (inside the caller's transaction)."""
    now = utcnow()
    count = 0
    for hook in session.scalars(select(Webhook)):
        if wants(hook, INCIDENT) and matches(hook.filters, event):
            session.add(
                WebhookDelivery(
                    webhook_id=hook.id,
                    event_number=number,
                    event_key=event.event_key,
                    kind=INCIDENT,
                    group_key=group_key(event),
                    status=DeliveryStatus.pending,
                    attempts=0,
                    next_attempt_at=now,
                )
            )
            count += 1
    return count


def checkpoint_payload(row: EvidenceCheckpoint) -> EventJSON:
    """The JSON of an `evidence.checkpoint` delivery (README, "Evidence checkpoints")."""
    return {
        "kind": CHECKPOINT,
        "id": f"checkpoint:{row.chain}:{row.seq}",
        "chain": row.chain,
        "seq": row.seq,
        "entry_sha256": row.entry_sha256,
        "entry": dict(row.entry),
        "recorded_at": row.created_at.isoformat(),
    }


def enqueue_checkpoint(session: Session, row: EvidenceCheckpoint) -> int:
    """Outbox rows of a new checkpoint for every subscription that asked for `evidence.checkpoint` (inside the
    transaction that stores the checkpoint)."""
    payload = checkpoint_payload(row)
    count = 0
    for hook in session.scalars(select(Webhook)):
        if wants(hook, CHECKPOINT):
            session.add(
                WebhookDelivery(
                    webhook_id=hook.id,
                    event_number=None,
                    event_key=str(payload["id"]),
                    kind=CHECKPOINT,
                    payload=payload,
                    status=DeliveryStatus.pending,
                    attempts=0,
                    next_attempt_at=row.created_at,
                )
            )
            count += 1
    return count


def create_webhook(
    session: Session, *, url: str, secret: str, fmt: str, filters: FilterLists, **options: Any
) -> Webhook:
    """`options`: min_interval_s, rate_limit_per_min, language, events (the columns' defaults when left out)."""
    hook = Webhook(
        id=secrets.token_hex(8), url=url, secret=secret, format=fmt, filters=filters, created_at=utcnow(), **options
    )
    session.add(hook)
    session.flush()
    return hook


def update_webhook(session: Session, webhook_id: str, **changes: Any) -> Webhook | None:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        return None
    for name, value in changes.items():
        setattr(hook, name, value)
    session.flush()
    return hook


def list_webhooks(session: Session) -> Sequence[Webhook]:
    return session.scalars(select(Webhook).order_by(Webhook.created_at, Webhook.id)).all()


def delete_webhook(session: Session, webhook_id: str) -> bool:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        return False
    session.execute(delete(WebhookSend).where(WebhookSend.webhook_id == webhook_id))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    session.delete(hook)
    return True


def list_deliveries(session: Session, webhook_id: str, *, status: str | None, limit: int) -> Sequence[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)).all()


def redrive(session: Session, webhook_id: str, delivery_id: int | None) -> int:
    """Put dead deliveries (one, or all of the subscription's) back in the queue with fresh attempts. Rows folded
    into a digest follow their digest: re-drive the digest."""
    query = (
        update(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.status == DeliveryStatus.dead,
            WebhookDelivery.digest_id.is_(None),
        )
        .values(status=DeliveryStatus.pending, attempts=0, next_attempt_at=utcnow(), lease_until=None)
        .execution_options(synchronize_session=False)
    )
    if delivery_id is not None:
        query = query.where(WebhookDelivery.id == delivery_id)
    return int(session.execute(query).rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    attempts: int
    event_key: str
    payload: EventJSON
    url: str
    secret: str
    format: str
    kind: str = INCIDENT
    language: str = "zh-CN"
    send_id: int | None = None  # the paced subscription's send record (`api.store.pacing`), dated when done


PACED = or_(Webhook.min_interval_s > 0, Webhook.rate_limit_per_min > 0)


def due_rows(now: datetime) -> ColumnElement[bool]:
    """Pending rows whose time has come, not leased, not folded into a digest."""
    return and_(
        WebhookDelivery.status == DeliveryStatus.pending,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
        WebhookDelivery.digest_id.is_(None),
    )


def lease(session: Session, delivery: WebhookDelivery, owner: str, now: datetime, until: datetime) -> bool:
    """Compare-and-set lease of one row: portable, no double send."""
    res = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.status == DeliveryStatus.pending,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(res.rowcount == 1)  # type: ignore[attr-defined]


def claimed_of(delivery: WebhookDelivery, event_payload: EventJSON | None, hook: Webhook, **extra: Any) -> Claimed:
    payload = delivery.payload if delivery.payload is not None else event_payload
    return Claimed(
        delivery.id,
        delivery.attempts,
        delivery.event_key,
        payload or {},
        hook.url,
        hook.secret,
        hook.format,
        kind=delivery.kind,
        language=hook.language,
        **extra,
    )


def claim_due(session: Session, owner: str, *, lease_s: float, batch: int) -> list[Claimed]:
    """Claim up to `batch` due deliveries of subscriptions without push rate control, each with a lease."""
    now = utcnow()
    rows = session.execute(
        select(WebhookDelivery, IncidentEventRow.payload, Webhook)
        .outerjoin(IncidentEventRow, IncidentEventRow.number == WebhookDelivery.event_number)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(due_rows(now), ~PACED)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(batch)
    ).all()
    until = now + timedelta(seconds=lease_s)
    return [claimed_of(d, p, h) for d, p, h in rows if lease(session, d, owner, now, until)]


@dataclass(frozen=True)
class Outcome:
    """One attempt: `error` is a short class (`http_503`, `timeout`, …), never the receiver's response."""

    ok: bool
    response_code: int | None
    error: str | None


def record_outcome(
    session: Session, claimed: Claimed, owner: str, outcome: Outcome, *, max_attempts: int, backoff: BackoffFn
) -> str:
    """Store an attempt's outcome; returns the new status (delivered, pending = retry later, dead). The rows a
    digest folded take its final status; a paced subscription's send record is dated now (the attempt's end)."""
    now = utcnow()
    attempts = claimed.attempts + 1
    values: dict[str, object] = {"attempts": attempts, "lease_owner": None, "lease_until": None}
    values["response_code"] = outcome.response_code
    if outcome.ok:
        values.update(status=DeliveryStatus.delivered, delivered_at=now, last_error=None)
    elif attempts >= max_attempts:
        values.update(status=DeliveryStatus.dead, last_error=outcome.error)
    else:
        values.update(next_attempt_at=now + timedelta(seconds=backoff(attempts)), last_error=outcome.error)
    done = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == claimed.delivery_id, WebhookDelivery.lease_owner == owner)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    status = str(values.get("status", DeliveryStatus.pending))
    if done.rowcount == 1 and claimed.kind == DIGEST and status != DeliveryStatus.pending:  # type: ignore[attr-defined]
        final = {k: v for k, v in values.items() if k in ("status", "delivered_at", "last_error", "response_code")}
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.digest_id == claimed.delivery_id)
            .values(**final)
            .execution_options(synchronize_session=False)
        )
    if claimed.send_id is not None:
        session.execute(update(WebhookSend).where(WebhookSend.id == claimed.send_id).values(at=now))
    return status


class BackoffFn:
    """Exponential backoff: base · 2^(attempt-1), capped."""

    def __init__(self, base_s: float, max_s: float) -> None:
        self.base_s = base_s
        self.max_s = max_s

    def __call__(self, attempt: int) -> float:
        return float(min(self.base_s * 2 ** max(attempt - 1, 0), self.max_s))
