"""partition IPv6 range: the IPv6 network a node gives a partition for its own services (issue 13)

Revision ID: 0006_partition_ipv6_range
Revises: 0005
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_partition_ipv6_range"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.add_column(sa.Column("ipv6_range", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.drop_column("ipv6_range")
