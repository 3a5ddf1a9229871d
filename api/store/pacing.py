"""Push rate control for webhook subscriptions: digests per (camera, rule) and a rate limit, kept in the store.

A subscription is paced when it sets `min_interval_s` (per camera and rule) or `rate_limit_per_min`:

- **Interval.** Two messages about one camera's incidents of one rule (its `group_key`) are at least
  `min_interval_s` apart. The first incident goes out at once; what comes within the interval waits, and when it is
  over everything that waited is folded into one digest delivery ("3 起区域入侵（1号门，最近 5 分钟）") that lists
  each event with its links. A lone waiting event goes as itself. The folded rows point at their digest
  (`digest_id`) and take its outcome; the digest has its own stable id (`digest:<first folded row>`), so a retried
  digest is the same message.
- **Rate.** At most `rate_limit_per_min` messages (digests, checkpoints and retries included) in any window of
  `window_s` (60 s; tests shorten it). What does not fit waits in the outbox, in order: nothing is dropped.

Both limits count `webhook_sends`, one row per message sent, dated when its attempt ended (so a slow POST never
lets the next one come early); rows older than both limits are deleted as the dispatcher goes. One dispatcher at a
time sends a paced subscription: it holds the subscription's lease (`webhooks.lease_owner/lease_until`), renewed every
round, so two API processes never exceed a limit together.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session

from api.jsontypes import EventJSON
from api.store.models import DeliveryStatus, IncidentEventRow, Webhook, WebhookDelivery, WebhookSend, utcnow
from api.store.outbox import DIGEST, INCIDENT, PACED, Claimed, claimed_of, due_rows, lease

#: Most due rows of one subscription looked at per round (and so folded into one digest at most).
FOLD_MAX = 1000


@dataclass(frozen=True)
class Limits:
    lease_s: float
    batch: int
    window_s: float = 60.0


def claim_paced(session: Session, owner: str, limits: Limits, now: datetime | None = None) -> list[Claimed]:
    """Claim what paced subscriptions may send now: at most one message per (camera, rule) whose interval is over
    (a digest when several waited), within each subscription's rate; up to `limits.batch` in all."""
    now = now or utcnow()
    pending = exists().where(WebhookDelivery.webhook_id == Webhook.id, due_rows(now))
    hooks = session.scalars(select(Webhook).where(PACED, pending).order_by(Webhook.id)).all()
    claimed: list[Claimed] = []
    for hook in hooks:
        if len(claimed) >= limits.batch or not _hold(session, hook.id, owner, now, limits.lease_s):
            continue
        claimed += _plan(session, hook, owner, now, limits, limits.batch - len(claimed))
    return claimed


def release(session: Session, owner: str) -> None:
    """Give up the subscriptions this dispatcher holds (it stops): another may send them at once."""
    session.execute(update(Webhook).where(Webhook.lease_owner == owner).values(lease_owner=None, lease_until=None))


def _hold(session: Session, webhook_id: str, owner: str, now: datetime, lease_s: float) -> bool:
    """Take or renew the subscription's lease (compare-and-set)."""
    res = session.execute(
        update(Webhook)
        .where(
            Webhook.id == webhook_id,
            or_(Webhook.lease_until.is_(None), Webhook.lease_until < now, Webhook.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return bool(res.rowcount == 1)  # type: ignore[attr-defined]


def _sends(session: Session, hook: Webhook, now: datetime, window_s: float) -> tuple[int, dict[str, datetime]]:
    """Messages sent within the window, and the last message of each group; forgets what no limit needs."""
    horizon = max(window_s if hook.rate_limit_per_min else 0.0, float(hook.min_interval_s))
    session.execute(
        delete(WebhookSend).where(WebhookSend.webhook_id == hook.id, WebhookSend.at < now - timedelta(seconds=horizon))
    )
    rows = session.execute(select(WebhookSend.group_key, WebhookSend.at).where(WebhookSend.webhook_id == hook.id)).all()
    since = now - timedelta(seconds=window_s)
    last: dict[str, datetime] = {}
    for key, at in rows:
        if key is not None and (key not in last or at > last[key]):
            last[key] = at
    return sum(1 for _key, at in rows if at > since), last


def _plan(session: Session, hook: Webhook, owner: str, now: datetime, limits: Limits, room: int) -> list[Claimed]:
    in_window, last = _sends(session, hook, now, limits.window_s)
    budget = min(room, hook.rate_limit_per_min - in_window) if hook.rate_limit_per_min else room
    if budget <= 0:
        return []
    rows: list[tuple[WebhookDelivery, EventJSON | None]] = [
        (d, p)
        for d, p in session.execute(
            select(WebhookDelivery, IncidentEventRow.payload)
            .outerjoin(IncidentEventRow, IncidentEventRow.number == WebhookDelivery.event_number)
            .where(WebhookDelivery.webhook_id == hook.id, due_rows(now))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(FOLD_MAX)
        ).all()
    ]
    interval = timedelta(seconds=hook.min_interval_s)
    groups: dict[str, list[tuple[WebhookDelivery, EventJSON | None]]] = defaultdict(list)
    for row in rows:
        if row[0].group_key is not None:
            groups[row[0].group_key].append(row)
    chosen: list[tuple[WebhookDelivery, EventJSON | None]] = []
    seen: set[str] = set()
    for delivery, payload in rows:
        if len(chosen) >= budget:
            break
        key = delivery.group_key if interval else None
        if key is None:
            chosen.append((delivery, payload))
            continue
        if key in seen:
            continue
        seen.add(key)
        if key in last and now < last[key] + interval:
            continue  # within the interval: waits, and is folded when it is over
        fresh = [(d, p) for d, p in groups[key] if d.kind == INCIDENT and not d.attempts and p is not None]
        if delivery.attempts or delivery.kind != INCIDENT or len(fresh) < 2:
            chosen.append((delivery, payload))  # a retry (or a digest's) goes first and alone; a lone event as itself
        else:
            chosen.append(_fold(session, hook, key, fresh, last.get(key), now))
    return _claim(session, hook, owner, now, limits.lease_s, chosen)


def _fold(
    session: Session,
    hook: Webhook,
    key: str,
    rows: list[tuple[WebhookDelivery, EventJSON]],
    previous: datetime | None,
    now: datetime,
) -> tuple[WebhookDelivery, EventJSON | None]:
    """One digest delivery for `rows` (fresh incident rows of one group); they point at it from now on."""
    events = [p for _d, p in rows]
    first = events[0]
    since = previous or min(d.created_at for d, _p in rows)
    event_key = f"digest:{rows[0][0].id}"
    payload: dict[str, Any] = {
        "kind": DIGEST,
        "id": event_key,
        "camera_id": first.get("camera_id"),
        "site": first.get("site"),
        "rule": first.get("rule"),
        "since": since.isoformat(),
        "until": now.isoformat(),
        "count": len({e.get("id") for e in events}),
        "events": events,
    }
    digest = WebhookDelivery(
        webhook_id=hook.id,
        event_number=None,
        event_key=event_key,
        kind=DIGEST,
        payload=payload,
        group_key=key,
        status=DeliveryStatus.pending,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(digest)
    session.flush()
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_([d.id for d, _p in rows]))
        .values(digest_id=digest.id)
        .execution_options(synchronize_session=False)
    )
    return digest, None


def _claim(
    session: Session,
    hook: Webhook,
    owner: str,
    now: datetime,
    lease_s: float,
    chosen: list[tuple[WebhookDelivery, EventJSON | None]],
) -> list[Claimed]:
    until = now + timedelta(seconds=lease_s)
    claimed: list[Claimed] = []
    for delivery, payload in chosen:
        if not lease(session, delivery, owner, now, until):
            continue
        send = WebhookSend(webhook_id=hook.id, group_key=delivery.group_key, at=now)
        session.add(send)
        session.flush()
        claimed.append(claimed_of(delivery, payload, hook, send_id=send.id))
    return claimed
