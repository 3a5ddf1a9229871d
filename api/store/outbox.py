"""Webhook subscriptions and the delivery outbox (claims with a lease, retries, dead letters, re-drive)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from api.jsontypes import EventJSON, FilterLists
from api.store.models import DeliveryStatus, IncidentEventRow, Webhook, WebhookDelivery, utcnow
from pipelines.events import IncidentEvent


def matches(filters: FilterLists, event: IncidentEvent) -> bool:
    """Empty/missing filter lists match everything; otherwise the event's value must be listed."""
    for key, value in (("sites", event.site), ("cameras", event.camera_id), ("rules", event.rule)):
        allowed = filters.get(key) or []
        if allowed and value not in allowed:
            return False
    return True


def enqueue_deliveries(session: Session, event: IncidentEvent, number: int) -> int:
    """Outbox rows for every matching subscription (inside the caller's transaction)."""
    now = utcnow()
    count = 0
    for hook in session.scalars(select(Webhook)):
        if matches(hook.filters, event):
            session.add(
                WebhookDelivery(
                    webhook_id=hook.id,
                    event_number=number,
                    event_key=event.event_key,
                    status=DeliveryStatus.pending,
                    attempts=0,
                    next_attempt_at=now,
                )
            )
            count += 1
    return count


def create_webhook(session: Session, *, url: str, secret: str, fmt: str, filters: FilterLists) -> Webhook:
    hook = Webhook(id=secrets.token_hex(8), url=url, secret=secret, format=fmt, filters=filters, created_at=utcnow())
    session.add(hook)
    session.flush()
    return hook


def list_webhooks(session: Session) -> Sequence[Webhook]:
    return session.scalars(select(Webhook).order_by(Webhook.created_at, Webhook.id)).all()


def delete_webhook(session: Session, webhook_id: str) -> bool:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        return False
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    session.delete(hook)
    return True


def list_deliveries(session: Session, webhook_id: str, *, status: str | None, limit: int) -> Sequence[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)).all()


def redrive(session: Session, webhook_id: str, delivery_id: int | None) -> int:
    """Put dead deliveries (one, or all of the subscription's) back in the queue with fresh attempts."""
    query = (
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == DeliveryStatus.dead)
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


def claim_due(session: Session, owner: str, *, lease_s: float, batch: int) -> list[Claimed]:
    """Claim up to `batch` due deliveries with a lease (compare-and-set per row: portable, no double send)."""
    now = utcnow()
    rows = session.execute(
        select(WebhookDelivery, IncidentEventRow.payload, Webhook)
        .join(IncidentEventRow, IncidentEventRow.number == WebhookDelivery.event_number)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.pending,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(batch)
    ).all()
    until = now + timedelta(seconds=lease_s)
    claimed: list[Claimed] = []
    for delivery, payload, hook in rows:
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
        if res.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(
                Claimed(delivery.id, delivery.attempts, delivery.event_key, payload, hook.url, hook.secret, hook.format)
            )
    return claimed


@dataclass(frozen=True)
class Outcome:
    """One attempt: `error` is a short class (`http_503`, `timeout`, …), never the receiver's response."""

    ok: bool
    response_code: int | None
    error: str | None


def record_outcome(
    session: Session, claimed: Claimed, owner: str, outcome: Outcome, *, max_attempts: int, backoff: BackoffFn
) -> str:
    """Store an attempt's outcome; returns the new status (delivered, pending = retry later, dead)."""
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
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == claimed.delivery_id, WebhookDelivery.lease_owner == owner)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return str(values.get("status", DeliveryStatus.pending))


class BackoffFn:
    """Exponential backoff: base · 2^(attempt-1), capped."""

    def __init__(self, base_s: float, max_s: float) -> None:
        self.base_s = base_s
        self.max_s = max_s

    def __call__(self, attempt: int) -> float:
        return float(min(self.base_s * 2 ** max(attempt - 1, 0), self.max_s))
