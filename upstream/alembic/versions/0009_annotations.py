"""annotations: machine-made facts about objects (one per object and origin), visible through their groups

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('annotations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('obj_id', sa.String(), nullable=False),
    sa.Column('origin', sa.String(length=256), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('author_name', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.Column('modified', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_annotations_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['obj_id'], ['objs.id'], name=op.f('fk_annotations_obj_id_objs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotations')),
    sa.UniqueConstraint('obj_id', 'origin', name=op.f('uq_annotations_obj_id_origin'))
    )
    op.create_index(op.f('ix_annotations_obj_id'), 'annotations', ['obj_id'], unique=False)
    op.create_table('annotation_groups',
    sa.Column('annotation_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['annotation_id'], ['annotations.id'], name=op.f('fk_annotation_groups_annotation_id_annotations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_annotation_groups_group_id_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('annotation_id', 'group_id', name=op.f('pk_annotation_groups'))
    )
    op.create_index(op.f('ix_annotation_groups_group_id'), 'annotation_groups', ['group_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_annotation_groups_group_id'), table_name='annotation_groups')
    op.drop_table('annotation_groups')
    op.drop_index(op.f('ix_annotations_obj_id'), table_name='annotations')
    op.drop_table('annotations')
