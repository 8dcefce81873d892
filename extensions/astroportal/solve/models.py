"""The solve service's tables (created by the distribution's migration d0001, never by the app)."""

from __future__ import annotations

from datetime import datetime

from astroportal.models.base import Base
from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

# The states of a job. A job only ever moves along the arrows of queue.TRANSITIONS.
STATUSES = ("queued", "running", "success", "failure", "cancelled", "timed_out")
FINAL = ("success", "failure", "cancelled", "timed_out")


class SolveSubmission(Base):
    """What someone sent: a file, a URL's content or an x/y list, with nova's options."""

    __tablename__ = "solve_submissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
    # upload | url | xylist
    kind: Mapped[str] = mapped_column(String, nullable=False)
    original_filename: Mapped[str | None] = mapped_column(String)
    url: Mapped[str | None] = mapped_column(Text)
    # image | fits | xylist: how the worker hands the input to solve-field
    input_format: Mapped[str] = mapped_column(String, nullable=False)
    input_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    input_sha1: Mapped[str] = mapped_column(String, nullable=False)
    image_width: Mapped[int | None] = mapped_column(Integer)
    image_height: Mapped[int | None] = mapped_column(Integer)
    options: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    publicly_visible: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")


class SolveJob(Base):
    """One solve of a submission. Its id stays the same when a lost worker's job runs again or is retried."""

    __tablename__ = "solve_jobs"
    __table_args__ = (CheckConstraint("status IN ('queued', 'running', 'success', 'failure', 'cancelled', "
                                      "'timed_out')", name="status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("solve_submissions.id", ondelete="CASCADE"),
                                               nullable=False, index=True)
    status: Mapped[str] = mapped_column(String, nullable=False, index=True)
    # How many times a worker has claimed it (a lost lease or a retry claims it again).
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # The current claim: a worker's results count only with the claim it was given.
    claim: Mapped[str | None] = mapped_column(String)
    worker: Mapped[str | None] = mapped_column(String)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    queued_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    message: Mapped[str | None] = mapped_column(Text)
    calibration: Mapped[dict | None] = mapped_column(JSONB)
    solve_seconds: Mapped[float | None] = mapped_column()


class SolveTransition(Base):
    """A job's change of state, with its time (the database's clock), the worker and why."""

    __tablename__ = "solve_transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("solve_jobs.id", ondelete="CASCADE"), nullable=False, index=True)
    from_status: Mapped[str | None] = mapped_column(String)
    to_status: Mapped[str] = mapped_column(String, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime, server_default=func.clock_timestamp(), nullable=False)
    worker: Mapped[str | None] = mapped_column(String)
    note: Mapped[str | None] = mapped_column(Text)


class NovaSession(Base):
    """A session key answered by /nova/api/login (stored hashed), standing for the portal user of the API token."""

    __tablename__ = "solve_nova_sessions"
    key_hash: Mapped[str] = mapped_column(String, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
