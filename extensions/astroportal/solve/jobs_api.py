"""The portal-style API of the solve service (SkyPortal's envelope), used by its pages and by scripts:
list and read jobs, upload from the page's form, cancel and retry."""

from __future__ import annotations

import asyncio

from astroportal.errors import ApiError
from astroportal.handlers.base import APIHandler, auth_required

from . import inputs, queue, results, service, storage
from .options import CHECKS, check_options
from .web import UploadBodyMixin, field, form


def job_detail(handler: APIHandler, job_id: int) -> dict:
    """A job with its history and, once solved, its matched stars, grid and the sources on the image."""
    job, sub = service.get_job(handler.session, job_id)
    user = handler.current_user
    service.check_read(user, sub)
    from astroportal.models import User

    submitter = handler.session.get(User, sub.user_id) if sub.user_id else None
    out = service.job_row(job, sub, submitter.username if submitter else None)
    out.update(options=sub.options, transitions=service.transitions(handler.session, job.id),
               calibration=job.calibration, solve_seconds=job.solve_seconds,
               preview=storage.preview_path(handler.cfg, sub.id).is_file(),
               may_manage=user is not None and (user.id == sub.user_id or "System admin" in user.acl_names),
               stars=[], grid=[], sources=[], files={})
    if job.status == "success":
        wcs = storage.result_path(handler.cfg, job.id, "wcs").read_bytes()
        cal = job.calibration
        corr = storage.result_path(handler.cfg, job.id, "corr")
        out["stars"] = results.matched_stars(corr.read_bytes()) if corr.is_file() else []
        out["grid"] = results.grid(wcs, cal["width"], cal["height"])
        out["sources"] = results.sources_in_field(handler.session, user, wcs, cal) if user else []
        out["files"] = {kind: f"/nova/{kind}_file/{job.id}" for kind in ("wcs", "new_fits", "corr")
                        if storage.result_path(handler.cfg, job.id, kind).is_file()}
    return out


class Jobs(APIHandler):
    @auth_required
    def get(self) -> None:
        """The latest jobs (newest first; ?status= filters) and the count of jobs in each state."""
        status = self.query("status")
        limit = self.query("limit", 100, int)
        self.success({"jobs": service.list_jobs(self.session, self.current_user, status=status, limit=limit),
                      "counts": service.counts(self.session)})


class Job(APIHandler):
    @auth_required
    def get(self, ident: str) -> None:
        """One job in detail."""
        self.success(job_detail(self, int(ident)))


class JobAction(APIHandler):
    action = ""

    @auth_required
    def post(self, ident: str) -> None:
        """Cancel or retry the job (its submitter or a System admin)."""
        job, sub = service.get_job(self.session, int(ident))
        user = service.check_manage(self.current_user, sub)
        getattr(queue, self.action)(self.session, job, service.who(user))
        self.session.commit()
        if self.action == "retry":
            storage.clear_results(self.cfg, job.id)
        self.success({"id": job.id, "status": job.status})


class Cancel(JobAction):
    action = "cancel"


class Retry(JobAction):
    action = "retry"


def form_options(args: dict) -> dict:
    """The upload form's option fields (strings; empty ones left out) as nova options, checked."""
    raw = {}
    for key in CHECKS:
        value = field(args, key)
        if value is None or value.strip() == "":
            continue
        raw[key] = value.strip()
    unknown = [k for k in args if k not in CHECKS and k not in ("file", "_xsrf")]
    if unknown:
        raise ApiError(400, f"unknown option `{unknown[0]}`; the options are {', '.join(sorted(CHECKS))}")
    return check_options(raw)


class Upload(UploadBodyMixin, APIHandler):
    async def post(self) -> None:
        """The page's upload: multipart with `file` and nova's options as form fields -> {submission_id, job_id}."""
        self.check_not_over()
        user = service.require_upload(self.current_user)
        args, files = form(self)
        upload = (files.get("file") or [None])[0]
        if upload is None:
            raise ApiError(400, "choose an image file to upload")
        options = form_options(args)
        checked = await asyncio.get_running_loop().run_in_executor(None, inputs.check_upload, self.cfg,
                                                                   upload.body)
        sub, job = service.submit(self.session, self.cfg, user, checked, options, kind="upload",
                                  filename=upload.filename)
        self.success({"submission_id": sub.id, "job_id": job.id})


ROUTES = [
    (r"/api/solve/jobs/?", Jobs),
    (r"/api/solve/jobs/(\d+)/?", Job),
    (r"/api/solve/jobs/(\d+)/cancel/?", Cancel),
    (r"/api/solve/jobs/(\d+)/retry/?", Retry),
    (r"/api/solve/upload/?", Upload),
]
