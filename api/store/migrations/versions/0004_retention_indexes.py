"""Indexes for retention (issue 12): deleting old incidents without scanning whole tables.

- `ix_webhook_deliveries_event(event_number)`: deleting an incident's events checks (SQLite foreign keys) or cascades
  to (PostgreSQL `ON DELETE CASCADE`) the deliveries of each event; without an index each deleted event scanned the
  whole deliveries table (measured: 400 old incidents beside 100k deliveries took 71 s on SQLite, 0.4 s with it).
- `ix_incidents_status_ended(status, ended_at)`: the search for closed incidents past `SAFEWATCH_RETENTION_DB_DAYS`.

Indexes only: no row is touched, so nothing a site recorded can be lost by this upgrade.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_webhook_deliveries_event", "webhook_deliveries", ["event_number"])
    op.create_index("ix_incidents_status_ended", "incidents", ["status", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_incidents_status_ended", table_name="incidents")
    op.drop_index("ix_webhook_deliveries_event", table_name="webhook_deliveries")
