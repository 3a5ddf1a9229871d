"""Site-scoped API keys, the key behind each handling action, and no webhook response bodies at rest.

- `api_keys.sites`: JSON list of the sites a key may see; NULL = every site (every key made before is unscoped).
- `handling_actions.key_id`, `key_name`: the key that performed the action, beside the client-supplied `actor`;
  NULL for actions recorded before this revision (who acted then is not known, and is not guessed).
- `webhook_deliveries.last_error`: the previous dispatcher stored free text, `HTTP <code>: <first 200 bytes of the
  response body>` or `<exception>: <message>`, and a receiver's body may hold data of an internal service. Such values
  become the error classes the dispatcher stores now: `http_<code>` (the code also stays in `response_code`) or
  `request_error`. Not restored by the downgrade.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("sites", sa.JSON(none_as_null=True), nullable=True))
    op.add_column("handling_actions", sa.Column("key_id", sa.String(32), nullable=True))
    op.add_column("handling_actions", sa.Column("key_name", sa.String(128), nullable=True))
    deliveries = sa.table(
        "webhook_deliveries", sa.column("last_error", sa.Text()), sa.column("response_code", sa.Integer())
    )
    error, code = deliveries.c.last_error, deliveries.c.response_code
    op.execute(
        deliveries.update()
        .where(error.is_not(None), sa.or_(code.is_(None), sa.not_(error.like("HTTP %"))))
        .values(last_error="request_error")
    )
    op.execute(
        deliveries.update()
        .where(error.like("HTTP %"))
        .values(last_error=sa.literal("http_") + sa.cast(code, sa.String()))
    )


def downgrade() -> None:
    with op.batch_alter_table("handling_actions") as batch:
        batch.drop_column("key_name")
        batch.drop_column("key_id")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("sites")
