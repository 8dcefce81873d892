"""input limits: bounded lengths for names, ids and origins; usernames unique ignoring case

Revision ID: 0003
Revises: 0002

A btree index row holds at most about 2.7 kB, so an over-long name or origin used to fail deep in
PostgreSQL (a 500). The API now refuses them (validate.NAME_MAX, validate.LINK_MAX); the schema says the
same, so that nothing else can store them either. Upgrading fails, naming the column, if the database
already holds a longer value or two usernames that differ only in case: fix those rows first.
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME_MAX = 256  # validate.NAME_MAX when this revision was written (a migration must not follow later edits)
LINK_MAX = 2048

# (table, column, length)
LIMITS = [
    ("users", "username", NAME_MAX),
    ("groups", "name", NAME_MAX),
    ("objs", "id", NAME_MAX),
    ("objs", "origin", NAME_MAX),
    ("streams", "name", NAME_MAX),
    ("filters", "name", NAME_MAX),
    ("telescopes", "name", NAME_MAX),
    ("telescopes", "nickname", NAME_MAX),
    ("telescopes", "skycam_link", LINK_MAX),
    ("telescopes", "weather_link", LINK_MAX),
    ("instruments", "name", NAME_MAX),
    ("taxonomies", "name", NAME_MAX),
    ("taxonomies", "version", NAME_MAX),
    ("photometry", "filter", NAME_MAX),
    ("photometry", "origin", NAME_MAX),
]


def upgrade() -> None:
    for table, column, length in LIMITS:
        op.alter_column(table, column, type_=sa.String(length), existing_type=sa.String())
    op.create_index("ix_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_username_lower", table_name="users")
    for table, column, length in reversed(LIMITS):
        op.alter_column(table, column, type_=sa.String(), existing_type=sa.String(length))
