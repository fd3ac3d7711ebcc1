"""backgrounds: the seller's own background photos, uploaded over HTTP (one owner each)

Revision ID: 0015_backgrounds
Revises: 0014_batches
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015_backgrounds'
down_revision = '0014_batches'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'backgrounds',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('owner', sa.String(length=64), nullable=False),
        sa.Column('blob_sha', sa.String(length=64), nullable=False),
        sa.Column('media_type', sa.String(length=40), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('backgrounds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backgrounds_owner'), ['owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_backgrounds_blob_sha'), ['blob_sha'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('backgrounds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backgrounds_blob_sha'))
        batch_op.drop_index(batch_op.f('ix_backgrounds_owner'))
    op.drop_table('backgrounds')
