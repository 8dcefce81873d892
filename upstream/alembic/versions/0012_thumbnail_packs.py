"""thumbnails.byte_offset, thumbnails.sha256: an upload's images stored together in one pack file

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows already there keep a NULL offset: their image is alone in its file, and is read as before.
    op.add_column('thumbnails', sa.Column('byte_offset', sa.BigInteger(), nullable=True))
    op.add_column('thumbnails', sa.Column('sha256', sa.String(), nullable=True))


def downgrade() -> None:
    # The earlier code reads a row's file whole: a row whose image sits inside a pack would show the pack. Such
    # rows are dropped (an alert stream sends its cutouts again); images in their own files are kept.
    op.execute("DELETE FROM thumbnails WHERE byte_offset IS NOT NULL")
    op.drop_column('thumbnails', 'sha256')
    op.drop_column('thumbnails', 'byte_offset')
