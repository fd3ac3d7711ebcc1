"""adapters: trained adapters of a product (issue 12); training jobs are jobs of kind 'train'

The jobs table stays the one queue (claim, heartbeat, lease, redelivery, cancel): a training job is a
row with ``kind = 'train'``. The ``adapters`` row (same id as its training job) holds what outlives
the job: the model's name, method, base, live step/total/loss, the photos it learned from and, once
done, the adapter folder's metadata.

Revision ID: 0016_adapters
Revises: 0015_backgrounds
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_adapters'
down_revision = '0015_backgrounds'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='generate'))
    op.create_table(
        'adapters',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('owner', sa.String(length=64), nullable=False),
        sa.Column('product_id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('method', sa.String(length=40), nullable=False),
        sa.Column('base', sa.String(length=200), nullable=False),
        sa.Column('step', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('loss', sa.Float(), nullable=True),
        sa.Column('resumed_from', sa.Integer(), nullable=True),
        sa.Column('photo_ids', sa.JSON(), nullable=False),
        sa.Column('request', sa.JSON(), nullable=False),
        sa.Column('meta', sa.JSON(), nullable=True),
        sa.Column('folder', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('adapters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adapters_owner'), ['owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_adapters_product_id'), ['product_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('adapters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adapters_product_id'))
        batch_op.drop_index(batch_op.f('ix_adapters_owner'))
    op.drop_table('adapters')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('kind')
