"""The solve service's plain functions behind the handlers: submit, read, authorize, describe."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from astroportal.config import Config
from astroportal.domain.accounts import hash_token, user_for_token, user_with_acls
from astroportal.errors import ApiError
from astroportal.models import User
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import queue, storage
from .inputs import CheckedInput
from .models import NovaSession, SolveJob, SolveSubmission, SolveTransition

UPLOAD_ACL = "Solve images"
WORKER_ACL = "Run solve jobs"


def settings(cfg: Config) -> dict:
    """services.solve with its defaults."""
    s = cfg.get("services.solve") or {}
    return {"timeout_seconds": float(s.get("timeout_seconds") or 300),
            "lease_seconds": float(s.get("lease_seconds") or 30),
            "max_attempts": int(s.get("max_attempts") or 3)}


def may_upload(user: User | None) -> bool:
    return user is not None and (UPLOAD_ACL in user.acl_names or "System admin" in user.acl_names)


def require_upload(user: User | None) -> User:
    if user is None:
        raise ApiError(401, "log in first (/nova/api/login with your portal API token as apikey)")
    if not may_upload(user):
        raise ApiError(403, f"plate solving needs the permission '{UPLOAD_ACL}'; ask an administrator")
    return user


# -- nova sessions ---------------------------------------------------------------------------------------------
def login(session: Session, apikey: str) -> tuple[User, str]:
    """A new nova session key for the portal user owning the API token `apikey`."""
    if not isinstance(apikey, str) or not apikey:
        raise ApiError(400, 'need "apikey": your portal API token (profile page)')
    user = user_for_token(session, apikey)
    if user is None:
        raise ApiError(401, "bad apikey: it is not a portal API token; create one on your profile page")
    key = secrets.token_hex(16)
    session.add(NovaSession(key_hash=hash_token(key), user_id=user.id))
    session.commit()
    return user, key


def user_for_session_key(session: Session, key: str) -> User:
    if not isinstance(key, str) or not key:
        raise ApiError(401, 'no "session" in the request; log in with /nova/api/login first')
    row = session.get(NovaSession, hash_token(key))
    user = user_with_acls(session, row.user_id) if row is not None else None
    if user is None:
        raise ApiError(401, f'no session with key "{key}"; log in again with /nova/api/login')
    return user


# -- submissions -----------------------------------------------------------------------------------------------
def submit(session: Session, cfg: Config, user: User, checked: CheckedInput, options: dict, *, kind: str,
           filename: str | None = None, url: str | None = None) -> tuple[SolveSubmission, SolveJob]:
    """Queue a checked input: the submission and its job rows, the input and preview files, committed."""
    sub = SolveSubmission(user_id=user.id, kind=kind, original_filename=(filename or "")[:255] or None, url=url,
                          input_format=checked.input_format, input_size=len(checked.data),
                          input_sha1=hashlib.sha1(checked.data).hexdigest(), image_width=checked.width,
                          image_height=checked.height, options=options,
                          publicly_visible=options.get("publicly_visible", "y") == "y")
    job = queue.create(session, sub)
    # Files first, commit second: a worker never claims a job whose input is not there yet.
    storage.write_atomically(storage.input_path(cfg, sub.id), checked.data)
    if checked.preview:
        storage.write_atomically(storage.preview_path(cfg, sub.id), checked.preview)
    session.commit()
    return sub, job


def get_job(session: Session, job_id: int) -> tuple[SolveJob, SolveSubmission]:
    job = session.get(SolveJob, job_id)
    if job is None:
        raise ApiError(404, f"no solve job {job_id}")
    return job, session.get(SolveSubmission, job.submission_id)


def get_submission(session: Session, sub_id: int) -> tuple[SolveSubmission, SolveJob]:
    sub = session.get(SolveSubmission, sub_id)
    if sub is None:
        raise ApiError(404, f"no submission {sub_id}")
    job = session.execute(select(SolveJob).where(SolveJob.submission_id == sub_id)).scalar_one()
    return sub, job


def check_read(user: User | None, sub: SolveSubmission) -> None:
    """A job is visible to its submitter, to every holder of 'Solve images', and (nova's publicly_visible)
    to anyone when it was submitted as public."""
    if sub.publicly_visible or may_upload(user) or (user is not None and user.id == sub.user_id):
        return
    raise ApiError(404 if user is None else 403,
                   "this job was submitted with publicly_visible=n: log in as its submitter to see it")


def check_manage(user: User | None, sub: SolveSubmission) -> User:
    """Cancel and retry: the submitter, or a System admin."""
    if user is None:
        raise ApiError(401, "log in to cancel or retry a job")
    if user.id != sub.user_id and "System admin" not in user.acl_names:
        raise ApiError(403, "only the job's submitter or a System admin may cancel or retry it")
    return user


def who(user: User) -> str:
    return user.username


# -- answers -------------------------------------------------------------------------------------------------
def nova_status(job: SolveJob) -> str:
    """nova's three words: solving (queued or running), success, failure (also cancelled and timed out)."""
    if job.status == "success":
        return "success"
    if job.status in ("failure", "cancelled", "timed_out"):
        return "failure"
    return "solving"


def nova_calibration(job: SolveJob) -> dict | None:
    cal = job.calibration
    if not cal:
        return None
    return {k: cal[k] for k in ("ra", "dec", "radius", "pixscale", "orientation", "parity")}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def duration(job: SolveJob) -> float | None:
    if job.started_at and job.finished_at:
        return (job.finished_at - job.started_at).total_seconds()
    return None


def job_row(job: SolveJob, sub: SolveSubmission, username: str | None) -> dict:
    """One line of the jobs table."""
    return {"id": job.id, "submission_id": sub.id, "status": job.status,
            "filename": sub.original_filename or sub.url or ("x/y list" if sub.kind == "xylist" else None),
            "kind": sub.kind, "submitter": username, "user_id": sub.user_id, "size": sub.input_size,
            "image_width": sub.image_width, "image_height": sub.image_height,
            "queued_at": _iso(job.queued_at), "started_at": _iso(job.started_at),
            "finished_at": _iso(job.finished_at), "duration": duration(job), "attempts": job.attempts,
            "worker": job.worker, "message": job.message, "calibration": nova_calibration(job)}


def list_jobs(session: Session, user: User, *, status: str | None = None, limit: int = 100) -> list[dict]:
    """The latest jobs the user may see, newest first."""
    stmt = (select(SolveJob, SolveSubmission, User.username)
            .join(SolveSubmission, SolveSubmission.id == SolveJob.submission_id)
            .outerjoin(User, User.id == SolveSubmission.user_id)
            .order_by(SolveJob.id.desc()).limit(max(1, min(limit, 500))))
    if status:
        stmt = stmt.where(SolveJob.status == status)
    if not may_upload(user):
        stmt = stmt.where((SolveSubmission.user_id == user.id) | SolveSubmission.publicly_visible)
    return [job_row(j, s, name) for j, s, name in session.execute(stmt).all()]


def counts(session: Session) -> dict:
    rows = session.execute(select(SolveJob.status, func.count()).group_by(SolveJob.status)).all()
    return {status: n for status, n in rows}


def transitions(session: Session, job_id: int) -> list[dict]:
    rows = session.execute(select(SolveTransition).where(SolveTransition.job_id == job_id)
                           .order_by(SolveTransition.id)).scalars()
    return [{"from": t.from_status, "to": t.to_status, "at": _iso(t.at), "worker": t.worker, "note": t.note}
            for t in rows]
