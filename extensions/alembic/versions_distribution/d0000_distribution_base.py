"""The distribution's branch: its base, with no schema of its own.

Revision ID: d0000
Revises:
Depends on: 0001

The branch (label `distribution`) has its own root, so upstream's chain can grow (0002, ...) without this
branch being rebased: `upgrade heads` applies both. It depends on upstream's first revision because the
distribution's tables will refer to upstream's (users, groups, objs). The distribution's tables go in
revisions after this one (`down_revision = "d0000"`, then each the previous).
"""

revision = "d0000"
down_revision = None
branch_labels = ("distribution",)
depends_on = "0001"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
