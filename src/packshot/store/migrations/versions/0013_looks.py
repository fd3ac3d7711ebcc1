"""looks: saved scene recipes per owner

Revision ID: 0013_looks
Revises: 0005_workers
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_looks'
down_revision = '0005_workers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'looks',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('owner', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('request', sa.JSON(), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('owner', 'name', name='uq_looks_owner_name'),
    )
    with op.batch_alter_table('looks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_looks_owner'), ['owner'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('looks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_looks_owner'))
    op.drop_table('looks')
