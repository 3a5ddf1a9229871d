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
    false,
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
    # a shadow run's incident (migration 0008, pipelines/camera/shadow.py): compared, never pushed
    shadow: Mapped[bool] = mapped_column(default=False, server_default=false())
    candidate: Mapped[str | None] = mapped_column(String(128))  # the shadow run's candidate model


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
    shadow: Mapped[bool] = mapped_column(default=False, server_default=false())  # its incident's (migration 0008)


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
    # Push rate control and language (migration 0006, `api/store/pacing.py`): 0 = off.
    min_interval_s: Mapped[int] = mapped_column(Integer, default=0)  # per (camera, rule); later ones → one digest
    rate_limit_per_min: Mapped[int] = mapped_column(Integer, default=0)  # messages per window (0 = no limit)
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    events: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["incident"])  # incident, evidence.checkpoint
    lease_owner: Mapped[str | None] = mapped_column(String(64))  # the one dispatcher sending a paced subscription
    lease_until: Mapped[datetime | None]


class WebhookDelivery(Base):
    """The outbox: one row per subscription × event, written in the same transaction as the event."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_number", name="uq_webhook_deliveries_webhook_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
        Index("ix_webhook_deliveries_event", "event_number"),  # deleting events (retention, migration 0004)
        Index("ix_webhook_deliveries_digest", "digest_id"),  # the rows a digest folded (migration 0006)
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    # NULL for a digest or a checkpoint (`kind`, migration 0006): those carry their own `payload`.
    event_number: Mapped[int | None] = mapped_column(ForeignKey("incident_events.number", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(160))
    # incident | incident.digest | evidence.checkpoint
    kind: Mapped[str] = mapped_column(String(24), default="incident")
    payload: Mapped[EventJSON | None] = mapped_column(JSON(none_as_null=True))
    group_key: Mapped[str | None] = mapped_column(String(200))  # "<rule>@<camera>" of incident rows: what digests fold
    digest_id: Mapped[int | None] = mapped_column(Integer)  # the digest delivery this row was folded into
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    response_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WebhookSend(Base):
    """One message sent (attempted) to a paced subscription (migration 0006): the sliding window its rate limit and
    its per-(camera, rule) interval count in; rows older than both are deleted as the dispatcher goes."""

    __tablename__ = "webhook_sends"
    __table_args__ = (Index("ix_webhook_sends_webhook_at", "webhook_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    group_key: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime]


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


class SiteMap(Base):
    """A site's plan image (migration 0007, `api/store/site_maps.py`); image columns are NULL until one is uploaded."""

    __tablename__ = "site_maps"

    site: Mapped[str] = mapped_column(String(128), primary_key=True)
    # PNG or JPEG as re-encoded by the API (never the uploaded bytes); loaded only when read (deferred)
    image: Mapped[bytes | None] = mapped_column(deferred=True)
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    content_type: Mapped[str | None] = mapped_column(String(32))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(32))  # the key id that last changed the map


class SiteMapMarker(Base):
    """Where a camera sits on its site's plan: x, y normalised to 0..1 of the image (migration 0007)."""

    __tablename__ = "site_map_markers"

    site: Mapped[str] = mapped_column(ForeignKey("site_maps.site", ondelete="CASCADE"), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    x: Mapped[float]
    y: Mapped[float]


class ReportSubscription(Base):
    """A daily digest of a site pushed to a chat robot at a local time (migration 0009, `api/store/reports.py`)."""

    __tablename__ = "report_subscriptions"
    __table_args__ = (Index("ix_report_subscriptions_site", "site"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    site: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    local_time: Mapped[str] = mapped_column(String(5))  # HH:MM in `timezone`
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    last_sent_date: Mapped[str | None] = mapped_column(String(10))  # local YYYY-MM-DD of the last digest sent
    next_attempt_at: Mapped[datetime | None]  # claim lease while sending; retry time after a failure
    last_error: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
