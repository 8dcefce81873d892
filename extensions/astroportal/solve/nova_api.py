"""The nova.astrometry.net-compatible API, under /nova/ (the server URL clients are given is <portal>/nova).

Answers have nova's shapes (no SkyPortal envelope): {"status": "success", "session": ...}, {"subid": ...},
{"status": "solving"}, ... and errors {"status": "error", "errormessage": "..."} with a 4xx status. Requests
carry nova's `request-json` form field; who is asking comes from its `session` (from api/login), or from the
portal's usual token header or login cookie. Reading a job needs no login when it was submitted public
(nova's publicly_visible, "y" by default), as nova's clients poll without one.
"""

from __future__ import annotations

import asyncio

import tornado.web
from astroportal.errors import ApiError
from astroportal.handlers.base import APIHandler
from astroportal.jsonutil import dumps

from . import inputs, results, service, storage
from .options import XY_KEYS, check_options, check_xy_list
from .web import UploadBodyMixin, form, request_json


class NovaHandler(APIHandler):
    """nova's answer shapes and its ways of saying who is asking."""

    # nova's requests are forms (a `request-json` field, multipart for uploads), never JSON bodies.
    json_body = False

    def answer(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps(data))

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            message = exc.message
        elif status_code == 404:
            message = "no such nova API route"
        elif isinstance(exc, tornado.web.HTTPError) and exc.log_message and status_code < 500:
            message = exc.log_message
        else:
            message = "internal server error; the portal's log has the details"
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps({"status": "error", "errormessage": message}))

    def nova_request(self, required: bool = True) -> tuple[dict, dict, dict]:
        args, files = form(self)
        return request_json(args, required), args, files

    def asker(self, rj: dict):
        """The user of the request's nova session, or of the portal's token/cookie, or None."""
        if "session" in rj:
            user = service.user_for_session_key(self.session, rj["session"])
            self._current_user = user
            return user
        return self.current_user


class Login(NovaHandler):
    def post(self) -> None:
        """nova's api/login: request-json {"apikey": <portal API token>} -> a session key."""
        rj, _, _ = self.nova_request()
        user, key = service.login(self.session, rj.get("apikey"))
        self.answer({"status": "success", "message": f"authenticated user: {user.contact_email or user.username}",
                     "session": key})


def _submitted(sub, job) -> dict:
    return {"status": "success", "subid": sub.id, "hash": sub.input_sha1}


class Upload(UploadBodyMixin, NovaHandler):
    async def post(self) -> None:
        """nova's api/upload: multipart request-json (session, options) + file; or an x/y list without a file."""
        self.check_not_over()
        rj, _, files = self.nova_request()
        user = service.require_upload(self.asker(rj))
        if "x" in rj or "y" in rj:
            self._xylist(user, rj)
            return
        upload = (files.get("file") or [None])[0]
        if upload is None:
            raise ApiError(400, 'no file: send the image as the multipart field "file" (or x, y, image_width, '
                                "image_height for a source list)")
        options = check_options(rj, extra_allowed={"image_width", "image_height"})
        # Reading a large image takes a moment: off the event loop, so other requests are answered meanwhile.
        checked = await asyncio.get_running_loop().run_in_executor(None, inputs.check_upload, self.cfg,
                                                                   upload.body)
        sub, job = service.submit(self.session, self.cfg, user, checked, options, kind="upload",
                                  filename=upload.filename)
        self.answer(_submitted(sub, job))

    def _xylist(self, user, rj: dict) -> None:
        options = check_options(rj, extra_allowed=XY_KEYS)
        x, y, width, height = check_xy_list(rj)
        sub, job = service.submit(self.session, self.cfg, user, inputs.xylist_fits(x, y, width, height), options,
                                  kind="xylist")
        self.answer(_submitted(sub, job))


class UrlUpload(Upload):
    async def post(self) -> None:
        """nova's api/url_upload: request-json with `url` (fetched here, never from a private address), or an
        x/y list (as astroquery sends it)."""
        self.check_not_over()
        rj, _, _ = self.nova_request()
        user = service.require_upload(self.asker(rj))
        if "x" in rj or "y" in rj:
            self._xylist(user, rj)
            return
        url = rj.get("url")
        if not isinstance(url, str) or not url:
            raise ApiError(400, 'need "url": the address of an image to solve')
        options = check_options(rj, extra_allowed={"image_width", "image_height"})
        inputs.check_url_target(self.cfg, url)  # refused before any request is made
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, inputs.fetch_url, self.cfg, url)
        checked = await loop.run_in_executor(None, inputs.check_upload, self.cfg, data)
        name = url.rstrip("/").rsplit("/", 1)[-1][:200] or None
        sub, job = service.submit(self.session, self.cfg, user, checked, options, kind="url", filename=name,
                                  url=url)
        self.answer(_submitted(sub, job))


class ReadHandler(NovaHandler):
    """GET (astroquery) or POST with request-json (astrometry.net's client.py sends its session so)."""

    def get(self, ident: str) -> None:
        self.respond(int(ident), self.asker({}))

    def post(self, ident: str) -> None:
        rj, _, _ = self.nova_request(required=False)
        self.respond(int(ident), self.asker(rj))

    def readable_job(self, job_id: int, user):
        job, sub = service.get_job(self.session, job_id)
        service.check_read(user, sub)
        return job, sub

    def respond(self, ident: int, user) -> None:
        raise NotImplementedError


class Submission(ReadHandler):
    def respond(self, sub_id: int, user) -> None:
        """nova's api/submissions/ID: `jobs` holds null until a worker has started the job."""
        sub, job = service.get_submission(self.session, sub_id)
        service.check_read(user, sub)
        started = job.started_at is not None or job.status != "queued"
        self.answer({
            "user": sub.user_id,
            "processing_started": str(job.started_at or sub.created_at) if started else "None",
            "processing_finished": str(job.finished_at) if job.finished_at else "None",
            "user_images": [sub.id], "images": [sub.id],
            "jobs": [job.id] if started else [None],
            "job_calibrations": [[job.id, job.id]] if job.status == "success" else [],
        })


class JobStatus(ReadHandler):
    def respond(self, job_id: int, user) -> None:
        """nova's api/jobs/ID: {"status": solving | success | failure}."""
        job, _ = self.readable_job(job_id, user)
        self.answer({"status": service.nova_status(job)})


class JobInfo(ReadHandler):
    def respond(self, job_id: int, user) -> None:
        """nova's api/jobs/ID/info, plus the portal's own state of the job and its message."""
        job, sub = self.readable_job(job_id, user)
        out = {"objects_in_field": [s["id"] for s in self.sources(job, user)], "machine_tags": [], "tags": [],
               "status": service.nova_status(job), "original_filename": sub.original_filename or sub.url or "",
               "job_status": job.status, "message": job.message}
        cal = service.nova_calibration(job)
        if cal:
            out["calibration"] = cal
        self.answer(out)

    def sources(self, job, user) -> list[dict]:
        if job.status != "success" or user is None:
            return []
        wcs = storage.result_path(self.cfg, job.id, "wcs").read_bytes()
        return results.sources_in_field(self.session, user, wcs, job.calibration)


class Calibration(ReadHandler):
    def respond(self, job_id: int, user) -> None:
        """nova's api/jobs/ID/calibration: ra, dec, radius, pixscale, orientation, parity."""
        job, _ = self.readable_job(job_id, user)
        cal = service.nova_calibration(job)
        if cal is None:
            message = f"no calibration data available for job {job_id} (it is {job.status})"
            self.answer({"status": "error", "errormessage": message, "error": message}, 404)
            return
        self.answer(cal)


class Annotations(JobInfo):
    def respond(self, job_id: int, user) -> None:
        """nova's api/jobs/ID/annotations: here, the portal's sources that fall on the image."""
        job, _ = self.readable_job(job_id, user)
        if job.status != "success":
            message = f"no calibration data available for job {job_id} (it is {job.status})"
            self.answer({"status": "error", "errormessage": message, "error": message}, 404)
            return
        self.answer({"annotations": [{"type": "portal_source", "names": [s["id"]], "pixelx": s["x"] + 1,
                                      "pixely": s["y"] + 1, "radius": 0.0, "ra": s["ra"], "dec": s["dec"]}
                                     for s in self.sources(job, user)]})


class ObjectsInField(JobInfo):
    def respond(self, job_id: int, user) -> None:
        job, _ = self.readable_job(job_id, user)
        self.answer({"objects_in_field": [s["id"] for s in self.sources(job, user)]})


class Tags(ReadHandler):
    def respond(self, job_id: int, user) -> None:
        self.readable_job(job_id, user)
        self.answer({"tags": []})


class MyJobs(NovaHandler):
    def post(self) -> None:
        """nova's api/myjobs: the ids of the asker's jobs."""
        rj, _, _ = self.nova_request()
        user = service.require_upload(self.asker(rj))
        from sqlalchemy import select

        from .models import SolveJob, SolveSubmission
        ids = self.session.execute(select(SolveJob.id).join(SolveSubmission)
                                   .where(SolveSubmission.user_id == user.id).order_by(SolveJob.id)).scalars()
        self.answer({"status": "success", "jobs": list(ids)})


class JobAction(NovaHandler):
    """Not in nova: api/jobs/ID/cancel and api/jobs/ID/retry for the submitter (or a System admin)."""

    action = ""

    def post(self, ident: str) -> None:
        rj, _, _ = self.nova_request(required=False)
        user = self.asker(rj)
        job, sub = service.get_job(self.session, int(ident))
        service.check_manage(user, sub)
        from . import queue

        getattr(queue, self.action)(self.session, job, service.who(user))
        self.session.commit()
        if self.action == "retry":
            storage.clear_results(self.cfg, job.id)
        self.answer({"status": "success", "job_status": job.status})


class Cancel(JobAction):
    action = "cancel"


class Retry(JobAction):
    action = "retry"


class ResultFile(NovaHandler):
    """wcs_file/ID, new_fits_file/ID, corr_file/ID: the files of a solved job."""

    kind = ""
    download_name = ""

    def get(self, ident: str) -> None:
        rj = {}
        user = self.asker(rj)
        job, sub = service.get_job(self.session, int(ident))
        service.check_read(user, sub)
        path = storage.result_path(self.cfg, job.id, self.kind)
        if job.status != "success" or not path.is_file():
            raise ApiError(404, f"job {job.id} has no {self.download_name} (it is {job.status})")
        self.set_header("Content-Type", "application/fits")
        self.set_header("Content-Disposition", f'attachment; filename="{self.download_name}"')
        self.finish(path.read_bytes())


def _file(kind: str, name: str) -> type:
    return type(f"{kind.title()}File", (ResultFile,), {"kind": kind, "download_name": name})


ROUTES = [
    (r"/nova/api/login/?", Login),
    (r"/nova/api/upload/?", Upload),
    (r"/nova/api/url_upload/?", UrlUpload),
    (r"/nova/api/myjobs/?", MyJobs),
    (r"/nova/api/submissions/(\d+)/?", Submission),
    (r"/nova/api/jobs/(\d+)/?", JobStatus),
    (r"/nova/api/jobs/(\d+)/info/?", JobInfo),
    (r"/nova/api/jobs/(\d+)/calibration/?", Calibration),
    (r"/nova/api/jobs/(\d+)/annotations/?", Annotations),
    (r"/nova/api/jobs/(\d+)/objects_in_field/?", ObjectsInField),
    (r"/nova/api/jobs/(\d+)/(?:machine_)?tags/?", Tags),
    (r"/nova/api/jobs/(\d+)/cancel/?", Cancel),
    (r"/nova/api/jobs/(\d+)/retry/?", Retry),
    (r"/nova/wcs_file/(\d+)/?", _file("wcs", "wcs.fits")),
    (r"/nova/new_fits_file/(\d+)/?", _file("new_fits", "new-image.fits")),
    (r"/nova/corr_file/(\d+)/?", _file("corr", "corr.fits")),
]


class NoSuchNovaRoute(NovaHandler):
    def _refuse(self, *args) -> None:
        raise ApiError(404, f"no such nova API route: {self.request.method} {self.request.path}")

    get = post = put = delete = _refuse


ROUTES.append((r"/nova/.*", NoSuchNovaRoute))
