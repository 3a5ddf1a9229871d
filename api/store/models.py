"""ORM models (SQLAlchemy 2, typed). The schema itself is owned by the Alembic migrations in `migrations/versions/`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.jsontypes import EventJSON, FilterLists


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text; we store and return UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class IncidentStatus(StrEnum):
    open = "open"
    closed = "closed"


class Handling(StrEnum):
    new = "new"
    acknowledged = "acknowledged"
    resolved = "resolved"
    false_positive = "false_positive"


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    dead = "dead"


class Base(DeclarativeBase):
    # Read by SQLAlchemy only (annotation → column type), so `object` both ways is all this code needs to know.
    type_annotation_map: ClassVar[dict[object, object]] = {
        datetime: UTCDateTime(),
        EventJSON: JSON,
        FilterLists: JSON,
        list[str]: JSON,
        list[int]: JSON,
    }


class Incident(Base):
    """Current state of one incident (the latest seq wins)."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_started", "started_at", "id"),
        Index("ix_incidents_camera_started", "camera_id", "started_at"),
        Index("ix_incidents_site_started", "site", "started_at"),
        Index("ix_incidents_rule_started", "rule", "started_at"),
        Index("ix_incidents_handling_started", "handling", "started_at"),
        Index("ix_incidents_status", "status"),
        Index("ix_incidents_status_ended", "status", "ended_at"),  # retention's search (migration 0004)
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(128))
    site: Mapped[str] = mapped_column(String(128))
    rule: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str | None] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=IncidentStatus.open)
    handling: Mapped[str] = mapped_column(String(16), default=Handling.new)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    last_seq: Mapped[int] = mapped_column(Integer)
    offset_s: Mapped[float]
    labels: Mapped[list[str]]
    track_ids: Mapped[list[int]]
    confidence: Mapped[float]
    snapshot_path: Mapped[str | None] = mapped_column(Text)
    clip_path: Mapped[str | None] = mapped_column(Text)
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    keep: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CameraFence(Base):
    """The newest lease fencing token the store has seen per camera (distributed mode, migration 0003): events of the
    camera with an older token come from a former owner and are refused (pipelines/distributed/fencing.py)."""

    __tablename__ = "camera_fences"

    camera_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    token: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)  # when the token last grew


class IncidentEventRow(Base):
    """Every event ever applied; `number` is the store's monotonically increasing event number (SSE ids)."""

    __tablename__ = "incident_events"
    __table_args__ = (UniqueConstraint("incident_id", "seq", name="uq_incident_events_incident_seq"),)

    number: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    payload: Mapped[EventJSON]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class HandlingAction(Base):
    """Audit trail of the handling workflow."""

    __tablename__ = "handling_actions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))  # what the client said (default: the key's name)
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # The key that acted (not client-supplied). Null for actions recorded before migration 0002. Not a foreign key:
    # the trail must outlive a revoked key.
    key_id: Mapped[str | None] = mapped_column(String(32))
    key_name: Mapped[str | None] = mapped_column(String(128))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The sites the key may see, sorted; SQL NULL (not JSON null: `none_as_null`) = every site.
    sites: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    filters: Mapped[FilterLists]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """The outbox: one row per subscription × event, written in the same transaction as the event."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_number", name="uq_webhook_deliveries_webhook_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
        Index("ix_webhook_deliveries_event", "event_number"),  # deleting events (retention, migration 0004)
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_number: Mapped[int] = mapped_column(ForeignKey("incident_events.number", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(160))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    response_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class EvidenceCheckpoint(Base):
    """A signed head of an evidence chain, copied from its log (migration 0005, `api/store/checkpoints.py`)."""

    __tablename__ = "evidence_checkpoints"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_evidence_checkpoints_chain_seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_sha256: Mapped[str] = mapped_column(String(64))
    entry: Mapped[EventJSON]  # the log's entry as written: signed by the process that wrote the chain
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
