"""Webhook subscriptions (admin): create, change, list, delete, deliveries (incl. dead letters), re-drive.

A site-scoped admin key works only with subscriptions whose `filters.sites` lie within its sites: it must give such a
filter when it creates one (403 otherwise), and any other subscription is 404 to it and missing from its list.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from api.deps import AdminKey, CtxDep, Principal, StoreDep
from api.jsontypes import Responses
from api.schemas import Problem
from api.settings import Settings
from api.store import outbox
from api.store.models import Webhook, WebhookDelivery
from api.webhooks.formats import WebhookFormat
from api.webhooks.guard import RefusedUrl, UnresolvedHost, WebhookGuard
from api.webhooks.i18n import DEFAULT_LANGUAGE, Language
from vision.redact import redact_url

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
NOT_FOUND: Responses = {404: {"model": Problem}}
UNREACHABLE: Responses = {
    422: {
        "description": "Invalid body, or a URL whose host resolves to a loopback, private, link-local, multicast or "
        "reserved address that `SAFEWATCH_WEBHOOK_ALLOW_HOSTS` does not list (`detail` says which)"
    }
}


class WebhookFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sites: list[str] = Field(default_factory=list, description="Empty = every site")
    cameras: list[str] = Field(default_factory=list, description="Empty = every camera")
    rules: list[str] = Field(default_factory=list, description="Empty = every rule")


#: Messages a minute the chat robots accept (DingTalk and WeCom group robots 20, Feishu custom bots 100): the default
#: `rate_limit_per_min` of a new subscription in that format. 0 = no limit (the generic JSON).
PLATFORM_RATE = {WebhookFormat.json: 0, WebhookFormat.dingtalk: 20, WebhookFormat.wecom: 20, WebhookFormat.feishu: 100}
EventKind = Literal["incident", "evidence.checkpoint"]


def _unique_events(value: list[EventKind] | None) -> list[EventKind] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("events must not repeat a kind")
    return value


class Delivery(BaseModel):
    """What and how fast a subscription is sent (POST and PATCH)."""

    model_config = ConfigDict(extra="forbid")

    format: WebhookFormat | None = None
    filters: WebhookFilters | None = None
    min_interval_s: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=86400,
        description="Per camera and rule: messages at least this many seconds apart; incidents within it are folded "
        "into one digest message sent when it is over. 0 (default) = every event at once",
    )
    rate_limit_per_min: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=6000,
        description="Most messages a minute; more wait in the queue (never dropped). Default: the platform's limit "
        "(dingtalk and wecom 20, feishu 100), 0 for json; 0 = no limit",
    )
    language: Language | None = Field(default=None, description="Chat formats' language: zh-CN (default) or en")
    events: list[EventKind] | None = Field(
        default=None,
        min_length=1,
        description="What to send: `incident` (default) and/or `evidence.checkpoint` (signed evidence chain heads)",
    )

    _events = field_validator("events")(_unique_events)


class WebhookCreate(Delivery):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example/robot/send?access_token=…",
                    "secret": "a-long-random-secret",
                    "format": "dingtalk",
                    "filters": {"sites": ["north"], "rules": ["intrusion"]},
                    "min_interval_s": 300,
                    "rate_limit_per_min": 20,
                    "language": "zh-CN",
                    "events": ["incident", "evidence.checkpoint"],
                }
            ]
        },
    )

    url: AnyHttpUrl
    secret: str = Field(min_length=8, max_length=512, description="HMAC key; stored, never returned")

    def options(self) -> dict[str, Any]:
        """The stored settings of a new subscription, defaults filled in."""
        fmt = self.format or WebhookFormat.json
        rate = PLATFORM_RATE[fmt] if self.rate_limit_per_min is None else self.rate_limit_per_min
        return {
            "min_interval_s": self.min_interval_s or 0,
            "rate_limit_per_min": rate,
            "language": (self.language or DEFAULT_LANGUAGE).value,
            "events": list(self.events or ["incident"]),
        }


class WebhookPatch(Delivery):
    """Fields to change; the others keep their values (URL and secret: delete and subscribe again)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"min_interval_s": 600, "language": "en"}]}
    )

    def changes(self) -> dict[str, Any]:
        out = self.model_dump(exclude_unset=True, exclude_none=True, mode="json")
        return out


class WebhookOut(BaseModel):
    id: str
    url: str = Field(description="Credentials, token-like query values and path tokens (`/hook/***`) are redacted")
    format: str
    filters: WebhookFilters
    min_interval_s: int
    rate_limit_per_min: int
    language: str
    events: list[str]
    created_at: datetime

    @classmethod
    def of(cls, row: Webhook) -> WebhookOut:
        return cls(
            id=row.id,
            url=redact_url(row.url),
            format=row.format,
            filters=WebhookFilters(**row.filters),
            min_interval_s=row.min_interval_s,
            rate_limit_per_min=row.rate_limit_per_min,
            language=row.language,
            events=list(row.events or ["incident"]),
            created_at=row.created_at,
        )


class DeliveryOut(BaseModel):
    id: int
    event_key: str
    kind: str = Field(description="incident | incident.digest | evidence.checkpoint")
    digest_id: int | None = Field(description="The digest delivery this incident was folded into (push rate control)")
    status: str = Field(description="pending | delivered | dead (dead letter)")
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = Field(
        description="Error class of the last failed attempt (`http_503`, `timeout`, `connect_error`, `dns_error`, "
        "`forbidden_address`, …); never the receiver's response"
    )
    response_code: int | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=row.id,
            event_key=row.event_key,
            kind=row.kind,
            digest_id=row.digest_id,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=_error_class(row),
            response_code=row.response_code,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )


_ERROR_CLASS = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _error_class(row: WebhookDelivery) -> str | None:
    """The stored error class. Older releases stored free text that could quote the receiver's response: such a
    row shows only its class."""
    error = row.last_error
    if error is None or _ERROR_CLASS.fullmatch(error):
        return error
    return f"http_{row.response_code}" if row.response_code is not None else "request_error"


class Redriven(BaseModel):
    redriven: int


def _visible(row: Webhook, key: Principal) -> bool:
    """A scoped key sees a subscription only when its site filter lies within the key's sites."""
    return key.covers(row.filters.get("sites") or [])


def _require(store: StoreDep, webhook_id: str, key: Principal) -> None:
    with store.read() as session:
        row = session.get(Webhook, webhook_id)
        if row is None or not _visible(row, key):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"webhook {webhook_id!r} not found")


def _check_scope(filters: WebhookFilters | None, events: list[EventKind] | None, key: Principal) -> None:
    if key.sites is None:
        return
    if filters is not None and not key.covers(filters.sites):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"key {key.name!r} is scoped to {', '.join(sorted(key.sites))}: a webhook it creates needs "
            "filters.sites, within those sites",
        )
    if events is not None and "evidence.checkpoint" in events:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"key {key.name!r} is scoped to sites: evidence checkpoints name incidents of every site (a key for all "
            "sites subscribes to them)",
        )


def _check_reachable(url: str, settings: Settings) -> None:
    """422 when the URL's host resolves to an address webhooks may not reach. A name that does not resolve (yet) is
    accepted: every delivery resolves and checks again, and records `dns_error` until it resolves."""
    try:
        WebhookGuard(settings.webhook_allow).check(url)
    except RefusedUrl as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except UnresolvedHost:
        pass


@router.post("", response_model=WebhookOut, status_code=status.HTTP_201_CREATED, responses=UNREACHABLE)
def create(body: WebhookCreate, key: AdminKey, store: StoreDep, ctx: CtxDep) -> WebhookOut:
    """Subscribe. Only events stored after this call are delivered."""
    filters = body.filters or WebhookFilters()
    _check_scope(filters, body.events, key)
    _check_reachable(str(body.url), ctx.settings)
    with store.session() as session:
        row = outbox.create_webhook(
            session,
            url=str(body.url),
            secret=body.secret,
            fmt=(body.format or WebhookFormat.json).value,
            filters=filters.model_dump(),
            **body.options(),
        )
        return WebhookOut.of(row)


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=NOT_FOUND)
def update(webhook_id: str, body: WebhookPatch, key: AdminKey, store: StoreDep) -> WebhookOut:
    """Change a subscription's format, filters, pacing, language or event kinds; what is left out keeps its value.
    Deliveries already queued keep their kind; the new pacing applies to what is sent from now on."""
    _require(store, webhook_id, key)
    _check_scope(body.filters, body.events, key)
    with store.session() as session:
        row = outbox.update_webhook(session, webhook_id, **body.changes())
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"webhook {webhook_id!r} not found")
        return WebhookOut.of(row)


@router.get("", response_model=list[WebhookOut])
def list_(key: AdminKey, store: StoreDep) -> list[WebhookOut]:
    with store.read() as session:
        return [WebhookOut.of(r) for r in outbox.list_webhooks(session) if _visible(r, key)]


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete(webhook_id: str, key: AdminKey, store: StoreDep) -> Response:
    _require(store, webhook_id, key)
    with store.session() as session:
        if not outbox.delete_webhook(session, webhook_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"webhook {webhook_id!r} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut], responses=NOT_FOUND)
def deliveries(
    webhook_id: str,
    key: AdminKey,
    store: StoreDep,
    status_: Annotated[Literal["pending", "delivered", "dead"] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """Newest first; `?status=dead` lists the dead letters."""
    _require(store, webhook_id, key)
    with store.read() as session:
        return [DeliveryOut.of(r) for r in outbox.list_deliveries(session, webhook_id, status=status_, limit=limit)]


def _redrive(store: StoreDep, ctx: CtxDep, key: Principal, webhook_id: str, delivery_id: int | None) -> Redriven:
    _require(store, webhook_id, key)
    with store.session() as session:
        count = outbox.redrive(session, webhook_id, delivery_id)
    if delivery_id is not None and count == 0:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead delivery {delivery_id} for webhook {webhook_id!r}")
    if count and ctx.dispatcher is not None:
        ctx.dispatcher.wake()
    return Redriven(redriven=count)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redrive", response_model=Redriven, responses=NOT_FOUND)
def redrive_one(webhook_id: str, delivery_id: int, key: AdminKey, store: StoreDep, ctx: CtxDep) -> Redriven:
    """Put one dead letter back in the queue (attempts reset)."""
    return _redrive(store, ctx, key, webhook_id, delivery_id)


@router.post("/{webhook_id}/redrive", response_model=Redriven, responses=NOT_FOUND)
def redrive_all(webhook_id: str, key: AdminKey, store: StoreDep, ctx: CtxDep) -> Redriven:
    """Put every dead letter of this subscription back in the queue."""
    return _redrive(store, ctx, key, webhook_id, None)
