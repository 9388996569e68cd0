"""placement: computer tags, network, allocation scope and the node's last contact (issue 13)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("computers") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("network", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("allocation_scope", sa.String(length=16), nullable=False,
                                   server_default="open"))
        batch.add_column(sa.Column("last_contact", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("computers") as batch:
        batch.drop_column("last_contact")
        batch.drop_column("allocation_scope")
        batch.drop_column("network")
        batch.drop_column("tags")
