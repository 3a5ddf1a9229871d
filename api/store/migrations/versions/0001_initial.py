"""Initial schema: incidents, events, handling audit trail, API keys, webhooks and their outbox.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """One helper per table, in foreign-key order (a table is created after the tables it references)."""
    _incidents()
    _incident_events()
    _handling_actions()
    _api_keys()
    _webhooks()
    _webhook_deliveries()


def _incidents() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("camera_id", sa.String(128), nullable=False),
        sa.Column("site", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("zone", sa.String(128), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("handling", sa.String(16), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("track_ids", sa.JSON(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("snapshot_path", sa.Text(), nullable=True),
        sa.Column("clip_path", sa.Text(), nullable=True),
        sa.Column("evidence_sha256", sa.String(64), nullable=True),
        sa.Column("keep", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_incidents_started", "incidents", ["started_at", "id"])
    op.create_index("ix_incidents_camera_started", "incidents", ["camera_id", "started_at"])
    op.create_index("ix_incidents_site_started", "incidents", ["site", "started_at"])
    op.create_index("ix_incidents_rule_started", "incidents", ["rule", "started_at"])
    op.create_index("ix_incidents_handling_started", "incidents", ["handling", "started_at"])
    op.create_index("ix_incidents_status", "incidents", ["status"])


def _incident_events() -> None:
    op.create_table(
        "incident_events",
        sa.Column("number", _PK, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(128), sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.UniqueConstraint("incident_id", "seq", name="uq_incident_events_incident_seq"),
    )
    op.create_index("ix_incident_events_incident_id", "incident_events", ["incident_id"])


def _handling_actions() -> None:
    op.create_table(
        "handling_actions",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(128), sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_handling_actions_incident_id", "handling_actions", ["incident_id"])


def _api_keys() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )


def _webhooks() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )


def _webhook_deliveries() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _PK, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.String(32), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_number", _PK, sa.ForeignKey("incident_events.number", ondelete="CASCADE"), nullable=False),
        sa.Column("event_key", sa.String(160), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.UniqueConstraint("webhook_id", "event_number", name="uq_webhook_deliveries_webhook_event"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "id"])


def downgrade() -> None:
    for table in ("webhook_deliveries", "webhooks", "api_keys", "handling_actions", "incident_events", "incidents"):
        op.drop_table(table)
