"""review queue from an index: the open photos (submitted or in review) by the moment they arrived

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 06:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

OPEN_PHOTOS = "status IN ('submitted', 'in_review')"


def upgrade():
    op.create_index('ix_photos_open_created', 'photos', ['created_at', 'id'],
                    sqlite_where=sa.text(OPEN_PHOTOS), postgresql_where=sa.text(OPEN_PHOTOS))


def downgrade():
    op.drop_index('ix_photos_open_created', table_name='photos')
