"""initial catalog

Revision ID: 0001
Revises:
Create Date: 2026-11-22 00:15:53.329106
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('owners',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_owners')),
    sa.UniqueConstraint('name', name=op.f('uq_owners_name'))
    )
    op.create_table('computers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('netmask', sa.String(length=64), nullable=True),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], name=op.f('fk_computers_owner_id_owners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_computers')),
    sa.UniqueConstraint('reference', name=op.f('uq_computers_reference'))
    )
    op.create_table('partitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('computer_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['computer_id'], ['computers.id'], name=op.f('fk_partitions_computer_id_computers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partitions')),
    sa.UniqueConstraint('computer_id', 'reference', name=op.f('uq_partitions_computer_id'))
    )
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partitions_computer_id'), ['computer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_partitions_state'), ['state'], unique=False)

    op.create_table('supplies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('computer_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('requested_state', sa.String(length=16), nullable=False),
    sa.Column('reported_state', sa.String(length=16), nullable=True),
    sa.Column('error_log', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['computer_id'], ['computers.id'], name=op.f('fk_supplies_computer_id_computers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], name=op.f('fk_supplies_owner_id_owners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supplies')),
    sa.UniqueConstraint('computer_id', 'url', name=op.f('uq_supplies_computer_id'))
    )
    with op.batch_alter_table('supplies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_supplies_computer_id'), ['computer_id'], unique=False)

    op.create_table('partition_addresses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partition_id', sa.Integer(), nullable=False),
    sa.Column('interface', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('netmask', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['partition_id'], ['partitions.id'], name=op.f('fk_partition_addresses_partition_id_partitions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partition_addresses'))
    )
    with op.batch_alter_table('partition_addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partition_addresses_partition_id'), ['partition_id'], unique=False)

    op.create_table('software_instances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guid', sa.String(length=64), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('scope_id', sa.Integer(), nullable=False),
    sa.Column('root_id', sa.Integer(), nullable=True),
    sa.Column('requester_id', sa.Integer(), nullable=True),
    sa.Column('software_release', sa.Text(), nullable=False),
    sa.Column('software_type', sa.String(length=255), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('connection_parameters', sa.JSON(), nullable=False),
    sa.Column('sla', sa.JSON(), nullable=False),
    sa.Column('requested_state', sa.String(length=16), nullable=False),
    sa.Column('reported_state', sa.String(length=16), nullable=True),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('partition_id', sa.Integer(), nullable=True),
    sa.Column('timestamp', sa.Float(), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], name=op.f('fk_software_instances_owner_id_owners')),
    sa.ForeignKeyConstraint(['partition_id'], ['partitions.id'], name=op.f('fk_software_instances_partition_id_partitions')),
    sa.ForeignKeyConstraint(['requester_id'], ['software_instances.id'], name=op.f('fk_software_instances_requester_id_software_instances'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['root_id'], ['software_instances.id'], name=op.f('fk_software_instances_root_id_software_instances')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_software_instances')),
    sa.UniqueConstraint('guid', name=op.f('uq_software_instances_guid')),
    sa.UniqueConstraint('owner_id', 'scope_id', 'title', name=op.f('uq_software_instances_owner_id')),
    sa.UniqueConstraint('partition_id', name=op.f('uq_software_instances_partition_id'))
    )
    with op.batch_alter_table('software_instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_software_instances_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_software_instances_requester_id'), ['requester_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_software_instances_root_id'), ['root_id'], unique=False)

    op.create_table('shared_attachments',
    sa.Column('shared_instance_id', sa.Integer(), nullable=False),
    sa.Column('host_instance_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['host_instance_id'], ['software_instances.id'], name=op.f('fk_shared_attachments_host_instance_id_software_instances'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shared_instance_id'], ['software_instances.id'], name=op.f('fk_shared_attachments_shared_instance_id_software_instances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('shared_instance_id', name=op.f('pk_shared_attachments'))
    )
    with op.batch_alter_table('shared_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shared_attachments_host_instance_id'), ['host_instance_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('shared_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shared_attachments_host_instance_id'))

    op.drop_table('shared_attachments')
    with op.batch_alter_table('software_instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_software_instances_root_id'))
        batch_op.drop_index(batch_op.f('ix_software_instances_requester_id'))
        batch_op.drop_index(batch_op.f('ix_software_instances_owner_id'))

    op.drop_table('software_instances')
    with op.batch_alter_table('partition_addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partition_addresses_partition_id'))

    op.drop_table('partition_addresses')
    with op.batch_alter_table('supplies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_supplies_computer_id'))

    op.drop_table('supplies')
    with op.batch_alter_table('partitions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partitions_state'))
        batch_op.drop_index(batch_op.f('ix_partitions_computer_id'))

    op.drop_table('partitions')
    op.drop_table('computers')
    op.drop_table('owners')
