"""gravitational-wave events: gcn events, tags, properties, notices, localizations and tiles;
objs.healpix (depth-29 nested index, backfilled); instruments.field_of_view

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Rows of objs indexed per statement while backfilling: bounded memory on big tables.
BACKFILL_BATCH = 50_000


def _backfill_healpix() -> None:
    """objs.healpix of the rows that exist already, in batches in id order (keyset paging).

    Computed here rather than imported from the portal: a migration must keep doing what it did when written."""
    import astropy.units as u
    import numpy as np
    from astropy_healpix import lonlat_to_healpix

    conn = op.get_bind()
    last = None
    while True:
        rows = conn.execute(
            sa.text("SELECT id, ra, dec FROM objs WHERE (CAST(:last AS TEXT) IS NULL OR id > :last) "
                    "ORDER BY id LIMIT :n"),
            {"last": last, "n": BACKFILL_BATCH},
        ).all()
        if not rows:
            return
        ids = [r[0] for r in rows]
        ra = np.array([r[1] for r in rows], dtype=float) % 360.0
        dec = np.array([r[2] for r in rows], dtype=float)
        ipix = lonlat_to_healpix(ra * u.deg, dec * u.deg, 1 << 29, order="nested")
        conn.execute(
            sa.text("UPDATE objs SET healpix = v.hp FROM unnest(CAST(:ids AS TEXT[]), CAST(:hp AS BIGINT[])) "
                    "AS v(id, hp) WHERE objs.id = v.id"),
            {"ids": ids, "hp": [int(x) for x in ipix]},
        )
        last = ids[-1]


def upgrade() -> None:
    op.add_column('objs', sa.Column('healpix', sa.BigInteger(), nullable=True))
    _backfill_healpix()
    op.create_index(op.f('ix_objs_healpix'), 'objs', ['healpix'], unique=False)
    op.add_column('instruments', sa.Column('field_of_view', postgresql.JSONB(astext_type=sa.Text()), nullable=True))

    op.create_table('gcnevents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dateobs', sa.DateTime(), nullable=False),
    sa.Column('trigger_id', sa.Text(), nullable=True),
    sa.Column('aliases', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.Column('modified', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gcnevents')),
    sa.UniqueConstraint('dateobs', name=op.f('uq_gcnevents_dateobs'))
    )
    op.create_table('gcntags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['gcnevents.id'], name=op.f('fk_gcntags_event_id_gcnevents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gcntags')),
    sa.UniqueConstraint('event_id', 'text', name=op.f('uq_gcntags_event_id_text'))
    )
    op.create_index(op.f('ix_gcntags_event_id'), 'gcntags', ['event_id'], unique=False)
    op.create_table('gcnnotices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('notice_type', sa.Text(), nullable=False),
    sa.Column('stream', sa.Text(), nullable=False),
    sa.Column('ivorn', sa.Text(), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('content_sha256', sa.Text(), nullable=False),
    sa.Column('date', sa.DateTime(), nullable=False),
    sa.Column('received_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['gcnevents.id'], name=op.f('fk_gcnnotices_event_id_gcnevents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gcnnotices')),
    sa.UniqueConstraint('content_sha256', name=op.f('uq_gcnnotices_content_sha256'))
    )
    op.create_index(op.f('ix_gcnnotices_event_id'), 'gcnnotices', ['event_id'], unique=False)
    op.create_table('gcnproperties',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['gcnevents.id'], name=op.f('fk_gcnproperties_event_id_gcnevents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notice_id'], ['gcnnotices.id'], name=op.f('fk_gcnproperties_notice_id_gcnnotices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gcnproperties'))
    )
    op.create_index(op.f('ix_gcnproperties_event_id'), 'gcnproperties', ['event_id'], unique=False)
    op.create_index(op.f('ix_gcnproperties_notice_id'), 'gcnproperties', ['notice_id'], unique=False)
    op.create_table('localizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('dateobs', sa.DateTime(), nullable=False),
    sa.Column('localization_name', sa.Text(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.Column('area_50', sa.Float(), nullable=True),
    sa.Column('area_90', sa.Float(), nullable=True),
    sa.Column('distmean', sa.Float(), nullable=True),
    sa.Column('diststd', sa.Float(), nullable=True),
    sa.Column('contour', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['gcnevents.id'], name=op.f('fk_localizations_event_id_gcnevents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notice_id'], ['gcnnotices.id'], name=op.f('fk_localizations_notice_id_gcnnotices'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_localizations')),
    sa.UniqueConstraint('event_id', 'localization_name', name=op.f('uq_localizations_event_id_localization_name'))
    )
    op.create_index(op.f('ix_localizations_event_id'), 'localizations', ['event_id'], unique=False)
    op.create_index(op.f('ix_localizations_dateobs'), 'localizations', ['dateobs'], unique=False)
    op.create_index(op.f('ix_localizations_notice_id'), 'localizations', ['notice_id'], unique=False)
    op.create_table('localizationtiles',
    sa.Column('localization_id', sa.Integer(), nullable=False),
    sa.Column('lo', sa.BigInteger(), nullable=False),
    sa.Column('hi', sa.BigInteger(), nullable=False),
    sa.Column('probdensity', sa.Float(), nullable=False),
    sa.Column('cumprob', sa.Float(), nullable=False),
    sa.Column('distmu', sa.Float(), nullable=True),
    sa.Column('distsigma', sa.Float(), nullable=True),
    sa.Column('distnorm', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['localization_id'], ['localizations.id'], name=op.f('fk_localizationtiles_localization_id_localizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('localization_id', 'lo', name=op.f('pk_localizationtiles'))
    )
    op.create_index('ix_localizationtiles_localization_id_cumprob', 'localizationtiles', ['localization_id', 'cumprob'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_localizationtiles_localization_id_cumprob', table_name='localizationtiles')
    op.drop_table('localizationtiles')
    op.drop_index(op.f('ix_localizations_notice_id'), table_name='localizations')
    op.drop_index(op.f('ix_localizations_dateobs'), table_name='localizations')
    op.drop_index(op.f('ix_localizations_event_id'), table_name='localizations')
    op.drop_table('localizations')
    op.drop_index(op.f('ix_gcnproperties_notice_id'), table_name='gcnproperties')
    op.drop_index(op.f('ix_gcnproperties_event_id'), table_name='gcnproperties')
    op.drop_table('gcnproperties')
    op.drop_index(op.f('ix_gcnnotices_event_id'), table_name='gcnnotices')
    op.drop_table('gcnnotices')
    op.drop_index(op.f('ix_gcntags_event_id'), table_name='gcntags')
    op.drop_table('gcntags')
    op.drop_table('gcnevents')
    op.drop_column('instruments', 'field_of_view')
    op.drop_index(op.f('ix_objs_healpix'), table_name='objs')
    op.drop_column('objs', 'healpix')
