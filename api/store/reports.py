"""Daily digest subscriptions (`report_subscriptions`, migration 0009): create, list, delete, and the claim /
outcome of one digest, used by the scheduler (`api/reports/scheduler.py`).

A digest is claimed with a compare-and-set on the row (`claim_digest`): it is due when `last_sent_date` is before
the due date and no lease (`next_attempt_at` in the future) holds it, so two API processes on one store never send
the same day's digest at the same time. Success records the due date in `last_sent_date` (a restart never sends
it again); a failure records an error class and a retry time.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence, Set
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from api.store.models import ReportSubscription, utcnow


def create_subscription(
    session: Session,
    *,
    site: str,
    url: str,
    secret: str,
    fmt: str,
    local_time: str,
    timezone: str,
    language: str,
    last_sent_date: str | None,
) -> ReportSubscription:
    row = ReportSubscription(
        id=secrets.token_hex(8),
        site=site,
        url=url,
        secret=secret,
        format=fmt,
        local_time=local_time,
        timezone=timezone,
        language=language,
        last_sent_date=last_sent_date,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def list_subscriptions(session: Session, sites: Set[str] | None = None) -> Sequence[ReportSubscription]:
    """Every subscription, or those of `sites` (a key's scope)."""
    query = select(ReportSubscription).order_by(ReportSubscription.created_at, ReportSubscription.id)
    if sites is not None:
        query = query.where(ReportSubscription.site.in_(sorted(sites)))
    return session.scalars(query).all()


def delete_subscription(session: Session, subscription_id: str, sites: Set[str] | None = None) -> bool:
    """Delete it; False when it does not exist or lies outside `sites`."""
    cond = [ReportSubscription.id == subscription_id]
    if sites is not None:
        cond.append(ReportSubscription.site.in_(sorted(sites)))
    result = session.execute(delete(ReportSubscription).where(*cond).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_digest(session: Session, subscription_id: str, due: str, now: datetime, lease_s: float) -> bool:
    """Take the digest of local date `due` for sending (True), unless it was sent or another process holds it."""
    result = session.execute(
        update(ReportSubscription)
        .where(
            ReportSubscription.id == subscription_id,
            or_(ReportSubscription.last_sent_date.is_(None), ReportSubscription.last_sent_date < due),
            or_(ReportSubscription.next_attempt_at.is_(None), ReportSubscription.next_attempt_at <= now),
        )
        .values(next_attempt_at=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_digest(session: Session, subscription_id: str, due: str, *, error: str | None, retry_at: datetime) -> None:
    """The outcome of a claimed digest: sent (`error` None: `last_sent_date` = `due`) or failed (retry at
    `retry_at`)."""
    values: dict[str, object] = (
        {"last_sent_date": due, "next_attempt_at": None, "last_error": None}
        if error is None
        else {"next_attempt_at": retry_at, "last_error": error[:64]}
    )
    session.execute(
        update(ReportSubscription)
        .where(ReportSubscription.id == subscription_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
