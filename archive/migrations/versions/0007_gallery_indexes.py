"""gallery indexes: newest published photos, photos by tag

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 16:00:00

"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_photos_status_status_changed_at', 'photos', ['status', 'status_changed_at'])
    op.create_index('ix_photo_tags_tag_id', 'photo_tags', ['tag_id'])


def downgrade():
    op.drop_index('ix_photo_tags_tag_id', table_name='photo_tags')
    op.drop_index('ix_photos_status_status_changed_at', table_name='photos')
