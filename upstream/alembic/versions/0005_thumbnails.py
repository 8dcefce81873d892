"""thumbnails: cutout images of objects (new/ref/sub), stored as files under var/

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('thumbnails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('obj_id', sa.String(), nullable=False),
    sa.Column('type', sa.String(), nullable=False),
    sa.Column('file_path', sa.String(), nullable=False),
    sa.Column('file_format', sa.String(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('origin', sa.String(), nullable=True),
    sa.Column('uploader_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.Column('modified', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['obj_id'], ['objs.id'], name=op.f('fk_thumbnails_obj_id_objs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploader_id'], ['users.id'], name=op.f('fk_thumbnails_uploader_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_thumbnails')),
    sa.UniqueConstraint('obj_id', 'type', name=op.f('uq_thumbnails_obj_id_type'))
    )
    op.create_index(op.f('ix_thumbnails_obj_id'), 'thumbnails', ['obj_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_thumbnails_obj_id'), table_name='thumbnails')
    op.drop_table('thumbnails')
