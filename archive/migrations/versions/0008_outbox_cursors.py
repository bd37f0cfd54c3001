"""outbox cursors: how far each follower of the outbox has got (index replicas, public media copies)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 19:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outbox_cursors',
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_outbox_cursors')),
    )


def downgrade():
    op.drop_table('outbox_cursors')
