"""photometry: index the points of an object in date order

Revision ID: 0004
Revises: 0003

A light curve is read in pages in mjd order: with (obj_id, mjd, id) indexed, a page is an ordered index scan
that stops after the page instead of a sort of every point of the object. The index on obj_id alone is a
prefix of the new one and goes.
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_photometry_obj_id_mjd", "photometry", ["obj_id", "mjd", "id"], unique=False)
    op.drop_index("ix_photometry_obj_id", table_name="photometry")


def downgrade() -> None:
    op.create_index("ix_photometry_obj_id", "photometry", ["obj_id"], unique=False)
    op.drop_index("ix_photometry_obj_id_mjd", table_name="photometry")
