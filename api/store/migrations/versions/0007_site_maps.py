"""Site maps (issue 15 part 4, 安全风险"一张图"): a plan image per site with the site's cameras placed on it.

- `site_maps(site, image, image_sha256, content_type, width, height, updated_at, updated_by)`: one row per site that
  has a map; the plan (PNG or JPEG, re-encoded by the API after strict decoding) is stored in the row, so the map
  lives and is backed up with the store. The image columns are NULL while markers exist without a plan.
- `site_map_markers(site, camera_id, x, y)`: where each camera sits on the plan, normalised to 0..1 of its width
  and height (so a replaced plan of another resolution keeps the markers).

New tables only: no row is touched.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site_maps",
        sa.Column("site", sa.String(128), primary_key=True),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("image_sha256", sa.String(64), nullable=True),
        sa.Column("content_type", sa.String(32), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(32), nullable=True),
    )
    op.create_table(
        "site_map_markers",
        sa.Column("site", sa.String(128), sa.ForeignKey("site_maps.site", ondelete="CASCADE"), primary_key=True),
        sa.Column("camera_id", sa.String(128), primary_key=True),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("site_map_markers")
    op.drop_table("site_maps")
