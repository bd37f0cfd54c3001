"""failed jobs: background jobs that failed on every try, for the admins' list (/admin/jobs)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 10:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'failed_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task', sa.String(length=60), nullable=False),
        sa.Column('args', sa.Text(), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('failed_at', sa.DateTime(), nullable=False),
        sa.Column('retried_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_failed_jobs')),
    )


def downgrade():
    op.drop_table('failed_jobs')
