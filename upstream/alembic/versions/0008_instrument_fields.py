"""instrument field grids: instrument_fields (one row per field: centre, covered depth-29 ranges)

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Grids are built on first use (astroportal.gw.fields): the migration only makes room for them.
    op.create_table('instrument_fields',
        sa.Column('instrument_id', sa.Integer(), nullable=False),
        sa.Column('field_id', sa.Integer(), nullable=False),
        sa.Column('ra', sa.Float(), nullable=False),
        sa.Column('dec', sa.Float(), nullable=False),
        sa.Column('healpix_order', sa.SmallInteger(), nullable=False),
        sa.Column('ranges', postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column('field_of_view', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(['instrument_id'], ['instruments.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('instrument_id', 'field_id'),
    )


def downgrade() -> None:
    op.drop_table('instrument_fields')
