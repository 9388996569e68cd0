"""binary cache: the builder flag of a computer and the entries of the cache (issue 13)

Revision ID: 0007_binary_cache
Revises: 0006_partition_ipv6_range
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_binary_cache"
down_revision = "0006_partition_ipv6_range"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("computers") as batch:
        batch.add_column(sa.Column("builder", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "binary_cache_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("release_url", sa.Text(), nullable=False),
        sa.Column("platform", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("uploader", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_binary_cache_entries")),
        sa.UniqueConstraint("key", name=op.f("uq_binary_cache_entries_key")),
    )


def downgrade() -> None:
    op.drop_table("binary_cache_entries")
    with op.batch_alter_table("computers") as batch:
        batch.drop_column("builder")
