"""Push rate control, subscription language and event kinds, digest and checkpoint deliveries (issue 15 part 6,
issue 17).

- `webhooks`: `min_interval_s` (per camera and rule; 0 = off), `rate_limit_per_min` (0 = no limit), `language`
  (`zh-CN`), `events` (`["incident"]`), and the lease (`lease_owner`, `lease_until`) that lets one dispatcher at a
  time send a paced subscription. Existing subscriptions get 0, 0, `zh-CN`, `["incident"]`: no pacing and no new
  payload kinds, as before (their chat texts were Chinese-labelled already).
- `webhook_deliveries`: `event_number` becomes nullable (a digest or a checkpoint refers to no single event), `kind`
  (`incident` for every existing row), `payload` (the message of a digest or checkpoint), `group_key` (`<rule>@<camera>`
  of an incident row: what digests fold; NULL for existing rows, which are sent as before), `digest_id` (the digest a
  row was folded into) with its index.
- `webhook_sends`: the messages sent to paced subscriptions, the window their limits count in. Empty.

Downgrade drops the digest and checkpoint deliveries (they reference no event) before `event_number` is made NOT NULL
again, then the columns and the table. On SQLite `webhooks` is altered in place, never copied (see `downgrade`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NUMBER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(sa.Column("min_interval_s", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("rate_limit_per_min", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("language", sa.String(8), nullable=False, server_default="zh-CN"))
        batch.add_column(sa.Column("events", sa.JSON(), nullable=False, server_default='["incident"]'))
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("event_number", existing_type=_NUMBER, nullable=True)
        batch.add_column(sa.Column("kind", sa.String(24), nullable=False, server_default="incident"))
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("group_key", sa.String(200), nullable=True))
        batch.add_column(sa.Column("digest_id", sa.Integer(), nullable=True))
        batch.create_index("ix_webhook_deliveries_digest", ["digest_id"])
    op.create_table(
        "webhook_sends",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.String(32), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("group_key", sa.String(200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_sends_webhook_at", "webhook_sends", ["webhook_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_sends_webhook_at", table_name="webhook_sends")
    op.drop_table("webhook_sends")
    op.execute("DELETE FROM webhook_deliveries WHERE event_number IS NULL")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index("ix_webhook_deliveries_digest")
        batch.drop_column("digest_id")
        batch.drop_column("group_key")
        batch.drop_column("payload")
        batch.drop_column("kind")
        batch.alter_column("event_number", existing_type=_NUMBER, nullable=False)
    for column in ("lease_until", "lease_owner", "events", "language", "rate_limit_per_min", "min_interval_s"):
        # SQLite: a native DROP COLUMN (3.35+). A batch copy would drop the old `webhooks` table, and with foreign
        # keys on that deletes every delivery (ON DELETE CASCADE).
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE webhooks DROP COLUMN {column}")
        else:
            op.drop_column("webhooks", column)
