"""Fencing tokens: the newest lease token the store has seen per camera.

- `camera_fences(camera_id, token, updated_at)`: distributed workers stamp every event with the fencing token of
  their camera lease, and the event stream records every lease grant (pipelines/distributed/fencing.py). The store
  keeps the newest token per camera here and refuses events of the camera with an older one (a former owner that was
  paused or partitioned while another worker took the camera over). Empty after the upgrade: events stored before
  carry no token, and events without a token are never fenced.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "camera_fences",
        sa.Column("camera_id", sa.String(128), primary_key=True),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("camera_fences")
