"""Evidence checkpoints: signed heads of the evidence chains, kept in the store (issue 17).

- `evidence_checkpoints(id, chain, seq, entry_sha256, entry, created_at)`: the store-owning process copies the last
  entry of each evidence chain's log (`<media_root>/chains/<name>.jsonl`, signed by the process that wrote it) here
  whenever the chain grew, so `safewatch evidence verify --database` proves that no entry up to it was cut off or
  rewritten later. Empty after the upgrade: evidence of before has no chain.

A new table only: no row is touched.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence_checkpoints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("chain", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_sha256", sa.String(64), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("chain", "seq", name="uq_evidence_checkpoints_chain_seq"),
    )


def downgrade() -> None:
    op.drop_table("evidence_checkpoints")
