"""credible-region indexes: objs (healpix) INCLUDE (id); sources (obj_id, group_id) WHERE active

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A credible region's objects and whether the user may see each are then read from indexes alone
    # (index-only scans): about twice as fast for regions of thousands of square degrees (tests/bench/bench_gcn.py).
    op.drop_index('ix_objs_healpix', table_name='objs')
    op.create_index('ix_objs_healpix', 'objs', ['healpix'], unique=False, postgresql_include=['id'])
    op.create_index('ix_sources_active_obj_id_group_id', 'sources', ['obj_id', 'group_id'], unique=False,
                    postgresql_where=sa.text('active'))


def downgrade() -> None:
    op.drop_index('ix_sources_active_obj_id_group_id', table_name='sources', postgresql_where=sa.text('active'))
    op.drop_index('ix_objs_healpix', table_name='objs')
    op.create_index('ix_objs_healpix', 'objs', ['healpix'], unique=False)
