"""newest first from an index: every photo has status_changed_at; indexes for the gallery and association pages

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 20:00:00

"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    # Photos made before this moment was recorded get the best moment known, so that none is empty.
    op.execute("UPDATE photos SET status_changed_at = COALESCE(processed_at, created_at) "
               "WHERE status_changed_at IS NULL")
    op.drop_index('ix_photos_status_status_changed_at', table_name='photos')
    op.create_index('ix_photos_status_changed', 'photos', ['status', 'status_changed_at', 'id'])
    op.create_index('ix_photos_status_association_changed', 'photos',
                    ['status', 'association_id', 'status_changed_at', 'id'])


def downgrade():
    op.drop_index('ix_photos_status_association_changed', table_name='photos')
    op.drop_index('ix_photos_status_changed', table_name='photos')
    op.create_index('ix_photos_status_status_changed_at', 'photos', ['status', 'status_changed_at'])
