"""The job queue and its state machine, in PostgreSQL.

    queued -> running -> success | failure | timed_out
    queued | running -> cancelled           (a person cancels)
    running -> queued                       (the worker's lease ran out: the job runs again, same id)
    queued -> failure                       (its workers were lost services.solve.max_attempts times)
    failure | cancelled | timed_out -> queued   (a person retries)

Workers claim the oldest queued job with FOR UPDATE SKIP LOCKED, so that two workers never take the same one,
and hold it by a lease they renew (heartbeat). A job whose lease has run out is claimed again like a queued
one: its worker is gone. Each claim gets a fresh claim token; heartbeats and results of an older claim are
refused, so a worker that comes back from the dead cannot overwrite the job's new run. Every change of state
is written to solve_transitions with the database's clock, in the same transaction as the change.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from astroportal.errors import ApiError
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .models import FINAL, SolveJob, SolveSubmission, SolveTransition

TRANSITIONS = {
    ("queued", "running"), ("running", "success"), ("running", "failure"), ("running", "timed_out"),
    ("queued", "cancelled"), ("queued", "failure"), ("running", "cancelled"), ("running", "queued"),
    ("failure", "queued"), ("cancelled", "queued"), ("timed_out", "queued"),
}


def record(session: Session, job: SolveJob, to_status: str, *, worker: str | None = None,
           note: str | None = None) -> None:
    """Move `job` to `to_status` (a transition of TRANSITIONS) and record it."""
    if (job.status, to_status) not in TRANSITIONS:
        raise ApiError(409, f"job {job.id} is {job.status}; it cannot become {to_status}")
    session.add(SolveTransition(job_id=job.id, from_status=job.status, to_status=to_status, worker=worker,
                                note=note))
    job.status = to_status


def create(session: Session, submission: SolveSubmission) -> SolveJob:
    """A queued job for a new submission (flushed: it has its id)."""
    session.add(submission)
    session.flush()
    job = SolveJob(submission_id=submission.id, status="queued")
    session.add(job)
    session.flush()
    session.add(SolveTransition(job_id=job.id, from_status=None, to_status="queued", note="submitted"))
    return job


CLAIM_SQL = text("""
    SELECT id FROM solve_jobs
    WHERE status = 'queued' OR (status = 'running' AND lease_expires_at < now())
    ORDER BY queued_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
""")


def claim(session: Session, worker: str, lease_seconds: float, max_attempts: int) -> SolveJob | None:
    """The next job for `worker`, now running under a new claim with a lease; None when there is none.

    A job whose previous worker lost its lease goes back to queued (recorded) and is claimed here again, under
    the same id; after max_attempts claims it fails instead, so that a job that kills its workers stops.
    """
    while True:
        job_id = session.execute(CLAIM_SQL).scalar()
        if job_id is None:
            return None
        job = session.get(SolveJob, job_id)
        if job.status == "running":
            record(session, job, "queued", worker=job.worker,
                   note=f"the lease of worker {job.worker} ran out (the worker stopped or lost the portal)")
        if job.attempts >= max_attempts:
            record(session, job, "failure", note=f"gave up after {job.attempts} runs whose workers were lost")
            job.message = (f"the job was started {job.attempts} times and each time its worker was lost; "
                           "retry it, or check the workers' logs")
            job.finished_at = _now(session)
            job.claim = None
            session.flush()
            continue
        record(session, job, "running", worker=worker, note=f"claimed (run {job.attempts + 1})")
        job.attempts += 1
        job.claim = secrets.token_hex(16)
        job.worker = worker
        now = _now(session)
        job.started_at = now
        job.finished_at = None
        job.lease_expires_at = _later(session, lease_seconds)
        session.flush()
        return job


def _now(session: Session) -> datetime:
    return session.execute(text("SELECT localtimestamp")).scalar()


def _later(session: Session, seconds: float) -> datetime:
    return session.execute(text("SELECT localtimestamp + make_interval(secs => :s)"), {"s": seconds}).scalar()


def held_job(session: Session, job_id: int, claim_token: str, *, lock: bool = True) -> SolveJob:
    """The running job that `claim_token` holds; 409 when the claim is stale (lease lost, cancelled, rerun)."""
    stmt = select(SolveJob).where(SolveJob.id == job_id)
    if lock:
        stmt = stmt.with_for_update()
    job = session.execute(stmt).scalar_one_or_none()
    if job is None:
        raise ApiError(404, f"no solve job {job_id}")
    if job.claim != claim_token or job.status != "running":
        raise ApiError(409, f"job {job_id} is no longer held by this claim (it is {job.status}); stop working on "
                            "it", data={"status": job.status})
    return job


def heartbeat(session: Session, job_id: int, claim_token: str, lease_seconds: float) -> SolveJob:
    """Renew the lease of a held job."""
    job = held_job(session, job_id, claim_token)
    job.lease_expires_at = _later(session, lease_seconds)
    return job


def finish(session: Session, job: SolveJob, outcome: str, message: str | None, calibration: dict | None,
           solve_seconds: float | None) -> None:
    """End a held job with the worker's outcome (success, failure or timed_out)."""
    if outcome not in ("success", "failure", "timed_out"):
        raise ApiError(400, f"`outcome` must be success, failure or timed_out, got {outcome!r}")
    record(session, job, outcome, worker=job.worker, note=message)
    job.message = message
    job.calibration = calibration
    job.solve_seconds = solve_seconds
    job.finished_at = _now(session)
    job.claim = None
    job.lease_expires_at = None


def cancel(session: Session, job: SolveJob, who: str) -> None:
    """Cancel a queued or running job (its worker learns it at its next heartbeat and stops solve-field)."""
    if job.status in FINAL:
        raise ApiError(409, f"job {job.id} has already ended ({job.status}); there is nothing to cancel")
    record(session, job, "cancelled", worker=job.worker, note=f"cancelled by {who}")
    job.message = f"cancelled by {who}"
    job.finished_at = _now(session)
    job.claim = None
    job.lease_expires_at = None


def retry(session: Session, job: SolveJob, who: str) -> None:
    """Queue an ended job that did not succeed again, under the same id."""
    if job.status not in ("failure", "cancelled", "timed_out"):
        raise ApiError(409, f"job {job.id} is {job.status}; only a failed, cancelled or timed out job can be "
                            "retried")
    record(session, job, "queued", note=f"retried by {who}")
    job.attempts = 0
    job.message = None
    job.calibration = None
    job.started_at = None
    job.finished_at = None
    job.solve_seconds = None
    job.queued_at = _now(session)
