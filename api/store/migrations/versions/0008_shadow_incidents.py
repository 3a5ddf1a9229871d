"""Shadow incidents of candidate models (issue 14 part 4: shadow runs, pipelines/camera/shadow.py).

- `incidents.shadow` (boolean, NOT NULL, default false) and `incidents.candidate` (the candidate model's name, NULL
  for production incidents): a shadow run's incidents live beside production's so `safewatch eval --shadow` can
  compare them, and every read that serves people (list, stats, SSE, MQTT, webhooks) leaves them out by default.
- `incident_events.shadow` (boolean, NOT NULL, default false): the push readers (SSE, MQTT) page through events by
  store number and filter on it without a join.

Existing rows are production rows: shadow false, candidate NULL; no other value changes. No index: shadow incidents
are read per camera and time (`ix_incidents_camera_started`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy): recreating `incidents` on SQLite would cascade-delete its event rows.
    op.add_column("incidents", sa.Column("shadow", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("incidents", sa.Column("candidate", sa.String(128), nullable=True))
    op.add_column("incident_events", sa.Column("shadow", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): nothing indexes or references these columns.
    op.drop_column("incident_events", "shadow")
    op.drop_column("incidents", "candidate")
    op.drop_column("incidents", "shadow")
