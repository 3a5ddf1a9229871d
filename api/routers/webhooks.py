"""Webhook subscriptions (admin): create, list, delete, deliveries (incl. dead letters), re-drive."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from api.deps import AdminKey, CtxDep, StoreDep
from api.jsontypes import Responses
from api.links import redact_webhook_url
from api.schemas import Problem
from api.store import outbox
from api.store.models import Webhook, WebhookDelivery
from api.webhooks.formats import WebhookFormat
from vision.redact import redact_url

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
NOT_FOUND: Responses = {404: {"model": Problem}}


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
    url: str = Field(description="Credentials and token-like query values are redacted")
    format: str
    filters: WebhookFilters
    created_at: datetime

    @classmethod
    def of(cls, row: Webhook) -> WebhookOut:
        return cls(
            id=row.id,
            url=redact_webhook_url(row.url),
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
    last_error: str | None
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
            last_error=redact_url(row.last_error) if row.last_error else None,
            response_code=row.response_code,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )


class Redriven(BaseModel):
    redriven: int


def _require(store: StoreDep, webhook_id: str) -> None:
    with store.read() as session:
        if session.get(Webhook, webhook_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"webhook {webhook_id!r} not found")


@router.post("", response_model=WebhookOut, status_code=status.HTTP_201_CREATED)
def create(body: WebhookCreate, _key: AdminKey, store: StoreDep) -> WebhookOut:
    """Subscribe. Only events stored after this call are delivered."""
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
def list_(_key: AdminKey, store: StoreDep) -> list[WebhookOut]:
    with store.read() as session:
        return [WebhookOut.of(r) for r in outbox.list_webhooks(session)]


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete(webhook_id: str, _key: AdminKey, store: StoreDep) -> Response:
    with store.session() as session:
        if not outbox.delete_webhook(session, webhook_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"webhook {webhook_id!r} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut], responses=NOT_FOUND)
def deliveries(
    webhook_id: str,
    _key: AdminKey,
    store: StoreDep,
    status_: Annotated[Literal["pending", "delivered", "dead"] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """Newest first; `?status=dead` lists the dead letters."""
    _require(store, webhook_id)
    with store.read() as session:
        return [DeliveryOut.of(r) for r in outbox.list_deliveries(session, webhook_id, status=status_, limit=limit)]


def _redrive(store: StoreDep, ctx: CtxDep, webhook_id: str, delivery_id: int | None) -> Redriven:
    _require(store, webhook_id)
    with store.session() as session:
        count = outbox.redrive(session, webhook_id, delivery_id)
    if delivery_id is not None and count == 0:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead delivery {delivery_id} for webhook {webhook_id!r}")
    if count and ctx.dispatcher is not None:
        ctx.dispatcher.wake()
    return Redriven(redriven=count)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redrive", response_model=Redriven, responses=NOT_FOUND)
def redrive_one(webhook_id: str, delivery_id: int, _key: AdminKey, store: StoreDep, ctx: CtxDep) -> Redriven:
    """Put one dead letter back in the queue (attempts reset)."""
    return _redrive(store, ctx, webhook_id, delivery_id)


@router.post("/{webhook_id}/redrive", response_model=Redriven, responses=NOT_FOUND)
def redrive_all(webhook_id: str, _key: AdminKey, store: StoreDep, ctx: CtxDep) -> Redriven:
    """Put every dead letter of this subscription back in the queue."""
    return _redrive(store, ctx, webhook_id, None)
