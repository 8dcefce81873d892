"""sources.healpix: the saved object's depth-29 index, kept by triggers; index (group_id, healpix) WHERE active

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# Why triggers rather than application code: saves are written by several paths (ORM, Core batch inserts,
# SQL), and an object's position changes through others; the copy must follow objs.healpix whichever wrote it.
_FUNCTIONS = """
CREATE FUNCTION sources_healpix_from_obj() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.healpix := (SELECT healpix FROM objs WHERE id = NEW.obj_id);
    RETURN NEW;
END $$;

CREATE FUNCTION objs_healpix_to_sources() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sources SET healpix = NEW.healpix WHERE obj_id = NEW.id AND healpix IS DISTINCT FROM NEW.healpix;
    RETURN NULL;
END $$;

CREATE TRIGGER sources_healpix_on_save BEFORE INSERT OR UPDATE OF obj_id ON sources
    FOR EACH ROW EXECUTE FUNCTION sources_healpix_from_obj();

CREATE TRIGGER objs_healpix_to_sources AFTER UPDATE OF healpix ON objs
    FOR EACH ROW WHEN (OLD.healpix IS DISTINCT FROM NEW.healpix) EXECUTE FUNCTION objs_healpix_to_sources();
"""


def upgrade() -> None:
    # Counting a user's sources in a credible region is then one index range scan per (group, merged range) of
    # the saves, instead of one visibility probe per object of the region (astroportal.gw.region).
    op.add_column('sources', sa.Column('healpix', sa.BigInteger(), nullable=True))
    op.execute("UPDATE sources SET healpix = objs.healpix FROM objs WHERE objs.id = sources.obj_id")
    op.execute(_FUNCTIONS)
    op.create_index('ix_sources_active_group_id_healpix', 'sources', ['group_id', 'healpix'], unique=False,
                    postgresql_include=['obj_id'], postgresql_where=sa.text('active'))


def downgrade() -> None:
    op.drop_index('ix_sources_active_group_id_healpix', table_name='sources', postgresql_where=sa.text('active'))
    op.execute("DROP TRIGGER objs_healpix_to_sources ON objs")
    op.execute("DROP TRIGGER sources_healpix_on_save ON sources")
    op.execute("DROP FUNCTION objs_healpix_to_sources()")
    op.execute("DROP FUNCTION sources_healpix_from_obj()")
    op.drop_column('sources', 'healpix')
