"""worker keys and worker heartbeats (remote workers, issue 15)

Revision ID: 0005_workers
Revises: 0001
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_workers'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('worker_keys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_table('worker_beats',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=True),
    sa.Column('queues', sa.JSON(), nullable=True),
    sa.Column('device', sa.String(length=100), nullable=False),
    sa.Column('free_memory', sa.BigInteger(), nullable=True),
    sa.Column('total_memory', sa.BigInteger(), nullable=True),
    sa.Column('current_jobs', sa.JSON(), nullable=True),
    sa.Column('models_loaded', sa.JSON(), nullable=True),
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('worker_beats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worker_beats_last_seen'), ['last_seen'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('worker_beats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_worker_beats_last_seen'))
    op.drop_table('worker_beats')
    op.drop_table('worker_keys')
