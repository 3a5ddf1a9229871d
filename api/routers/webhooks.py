"""Webhook subscriptions (admin): create, list, delete, deliveries (incl. dead letters), re-drive.

A site-scoped admin key works only with subscriptions whose `filters.sites` lie within its sites: it must give such a
filter when it creates one (403 otherwise), and any other subscription is 404 to it and missing from its list.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from api.deps import AdminKey, CtxDep, Principal, StoreDep
from api.jsontypes import Responses
from api.schemas import Problem
from api.settings import Settings
from api.store import outbox
from api.store.models import Webhook, WebhookDelivery
from api.webhooks.formats import WebhookFormat
from api.webhooks.guard import RefusedUrl, UnresolvedHost, WebhookGuard
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


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    secret: str = Field(min_length=8, max_length=512, description="HMAC key; stored, never returned")
    format: WebhookFormat = WebhookFormat.json
    filters: WebhookFilters = Field(default_factory=WebhookFilters)


class WebhookOut(BaseModel):
    id: str
    url: str = Field(description="Credentials, token-like query values and path tokens (`/hook/***`) are redacted")
    format: str
    filters: WebhookFilters
    created_at: datetime

    @classmethod
    def of(cls, row: Webhook) -> WebhookOut:
        return cls(
            id=row.id,
            url=redact_url(row.url),
            format=row.format,
            filters=WebhookFilters(**row.filters),
            created_at=row.created_at,
        )


class DeliveryOut(BaseModel):
    id: int
    event_key: str
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


def _check_scope(body: WebhookCreate, key: Principal) -> None:
    if key.sites is not None and not key.covers(body.filters.sites):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"key {key.name!r} is scoped to {', '.join(sorted(key.sites))}: a webhook it creates needs "
            "filters.sites, within those sites",
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
    _check_scope(body, key)
    _check_reachable(str(body.url), ctx.settings)
    with store.session() as session:
        row = outbox.create_webhook(
            session,
            url=str(body.url),
            secret=body.secret,
            fmt=body.format.value,
            filters=body.filters.model_dump(),
        )
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
