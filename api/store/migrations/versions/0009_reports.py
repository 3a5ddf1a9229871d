"""Daily report digests (issue 15 part 7): subscriptions that push a markdown digest of a site's day to a chat robot.

- `report_subscriptions(id, site, url, secret, format, local_time, timezone, language, last_sent_date,
  next_attempt_at, last_error, created_at)`: one row per subscription. `last_sent_date` is the local date (in
  `timezone`) of the last digest sent, so a restart never sends a day's digest twice; `next_attempt_at` is the
  claim lease of a digest being sent and the retry time after a failed POST (`api/reports/scheduler.py`).

A new table only: no row is touched.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_subscriptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("site", sa.String(128), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("local_time", sa.String(5), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("last_sent_date", sa.String(10), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_report_subscriptions_site", "report_subscriptions", ["site"])


def downgrade() -> None:
    op.drop_index("ix_report_subscriptions_site", table_name="report_subscriptions")
    op.drop_table("report_subscriptions")
