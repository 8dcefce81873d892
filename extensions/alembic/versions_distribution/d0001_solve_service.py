"""The solve service's tables: submissions, jobs, their transitions, nova API sessions.

Revision ID: d0001
Revises: d0000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "d0001"
down_revision = "d0000"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "solve_submissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL",
                                                       name="fk_solve_submissions_user_id_users")),
        sa.Column("created_at", sa.DateTime, server_default=sa.func.now(), nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("original_filename", sa.String),
        sa.Column("url", sa.Text),
        sa.Column("input_format", sa.String, nullable=False),
        sa.Column("input_size", sa.BigInteger, nullable=False),
        sa.Column("input_sha1", sa.String, nullable=False),
        sa.Column("image_width", sa.Integer),
        sa.Column("image_height", sa.Integer),
        sa.Column("options", JSONB, server_default="{}", nullable=False),
        sa.Column("publicly_visible", sa.Boolean, server_default="true", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_solve_submissions"),
    )
    op.create_index("ix_solve_submissions_user_id", "solve_submissions", ["user_id"])
    op.create_table(
        "solve_jobs",
        sa.Column("id", sa.Integer),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("solve_submissions.id", ondelete="CASCADE",
                                                             name="fk_solve_jobs_submission_id_solve_submissions"),
                  nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, server_default="0", nullable=False),
        sa.Column("claim", sa.String),
        sa.Column("worker", sa.String),
        sa.Column("lease_expires_at", sa.DateTime),
        sa.Column("queued_at", sa.DateTime, server_default=sa.func.now(), nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("message", sa.Text),
        sa.Column("calibration", JSONB),
        sa.Column("solve_seconds", sa.Float),
        sa.PrimaryKeyConstraint("id", name="pk_solve_jobs"),
        sa.CheckConstraint("status IN ('queued', 'running', 'success', 'failure', 'cancelled', 'timed_out')",
                           name="ck_solve_jobs_status"),
    )
    op.create_index("ix_solve_jobs_submission_id", "solve_jobs", ["submission_id"])
    op.create_index("ix_solve_jobs_status", "solve_jobs", ["status"])
    op.create_table(
        "solve_transitions",
        sa.Column("id", sa.Integer),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("solve_jobs.id", ondelete="CASCADE",
                                                      name="fk_solve_transitions_job_id_solve_jobs"), nullable=False),
        sa.Column("from_status", sa.String),
        sa.Column("to_status", sa.String, nullable=False),
        sa.Column("at", sa.DateTime, server_default=sa.func.clock_timestamp(), nullable=False),
        sa.Column("worker", sa.String),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_solve_transitions"),
    )
    op.create_index("ix_solve_transitions_job_id", "solve_transitions", ["job_id"])
    op.create_table(
        "solve_nova_sessions",
        sa.Column("key_hash", sa.String),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE",
                                                       name="fk_solve_nova_sessions_user_id_users"), nullable=False),
        sa.Column("created_at", sa.DateTime, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name="pk_solve_nova_sessions"),
    )
    op.create_index("ix_solve_nova_sessions_user_id", "solve_nova_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_table("solve_nova_sessions")
    op.drop_table("solve_transitions")
    op.drop_table("solve_jobs")
    op.drop_table("solve_submissions")
