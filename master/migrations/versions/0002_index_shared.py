"""index software_instances.shared: finding shared requests that wait for a host stays cheap

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("software_instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_software_instances_shared"), ["shared"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("software_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_software_instances_shared"))
