"""The API the solve workers use (services/solve): claim a job, renew its lease, fetch its input, send results.

Workers hold the 'Run solve jobs' ACL through their own token. They may run on other machines: everything
they need comes through here, including the timeout and solve-field's arguments for the job's options.
"""

from __future__ import annotations

from astroportal.errors import ApiError
from astroportal.handlers.base import APIHandler, permissions

from . import queue, results, service, storage
from .models import SolveSubmission
from .options import solve_field_arguments
from .web import UploadBodyMixin, field, form

WORKER_ACL = service.WORKER_ACL


def _claim_token(handler: APIHandler, data: dict | None = None) -> str:
    token = (data or {}).get("claim") or handler.get_query_argument("claim", None)
    if not isinstance(token, str) or not token:
        raise ApiError(400, "`claim` (the token the claim answered) is required")
    return token


class Claim(APIHandler):
    @permissions([WORKER_ACL])
    def post(self) -> None:
        """Claim the next queued job (or one whose worker was lost): {"job": {...}} or {"job": null}."""
        data = self.get_json()
        worker = str(data.get("worker") or self.current_user.username)[:200]
        s = service.settings(self.cfg)
        job = queue.claim(self.session, worker, s["lease_seconds"], s["max_attempts"])
        if job is None:
            self.session.commit()
            self.routine_answer = True  # nothing to do: not an access log line (app.log_request)
            self.success({"job": None})
            return
        sub = self.session.get(SolveSubmission, job.submission_id)
        args = solve_field_arguments(sub.options)
        if sub.input_format == "xylist":
            args += ["--width", str(sub.image_width), "--height", str(sub.image_height)]
        answer = {"id": job.id, "claim": job.claim, "attempt": job.attempts, "input_format": sub.input_format,
                  "input_size": sub.input_size, "filename": sub.original_filename, "options": sub.options,
                  "solve_field_args": args, "timeout_seconds": s["timeout_seconds"],
                  "lease_seconds": s["lease_seconds"]}
        self.session.commit()
        self.success({"job": answer})


class Heartbeat(APIHandler):
    @permissions([WORKER_ACL])
    def post(self, ident: str) -> None:
        """Renew the lease; 409 (with the job's status) when the job is no longer the worker's: stop it."""
        job = queue.heartbeat(self.session, int(ident), _claim_token(self, self.get_json()),
                              service.settings(self.cfg)["lease_seconds"])
        self.session.commit()
        self.success({"status": job.status, "lease_expires_at": job.lease_expires_at.isoformat()})


class Input(APIHandler):
    @permissions([WORKER_ACL])
    def get(self, ident: str) -> None:
        """The job's input file, for the worker holding its claim."""
        job = queue.held_job(self.session, int(ident), _claim_token(self), lock=False)
        path = storage.input_path(self.cfg, job.submission_id)
        if not path.is_file():
            raise ApiError(410, f"the input of job {job.id} is missing from the portal's storage")
        self.set_header("Content-Type", "application/octet-stream")
        self.finish(path.read_bytes())


class Result(UploadBodyMixin, APIHandler):
    upload_factor = 4

    @permissions([WORKER_ACL])
    def post(self, ident: str) -> None:
        """The outcome of a held job (multipart: claim, outcome, message, solve_seconds; files wcs, new_fits,
        corr, log). A success is checked: its WCS must read, or the job fails with the reason."""
        self.check_not_over()
        args, files = form(self)
        job = queue.held_job(self.session, int(ident), _claim_token(self, {"claim": field(args, "claim")}))
        sub = self.session.get(SolveSubmission, job.submission_id)
        outcome, message = field(args, "outcome"), field(args, "message")
        try:
            seconds = float(field(args, "solve_seconds") or "")
        except ValueError:
            seconds = None
        storage.clear_results(self.cfg, job.id)
        for kind in storage.RESULT_FILES:
            if files.get(kind):
                storage.write_atomically(storage.result_path(self.cfg, job.id, kind), files[kind][0].body)
        calibration = None
        if outcome == "success":
            try:
                wcs = storage.result_path(self.cfg, job.id, "wcs").read_bytes()
                calibration = results.calibration(wcs, sub.image_width, sub.image_height)
                message = message or (f"solved: RA {calibration['ra']:.5f}, Dec {calibration['dec']:+.5f}, "
                                      f"{calibration['pixscale']:.3f}\"/pixel")
            except Exception as exc:  # noqa: BLE001 - a success without a readable WCS is not one
                outcome, message = "failure", f"the worker reported a solution but its WCS file is unreadable: {exc}"
        queue.finish(self.session, job, outcome, message, calibration, seconds)
        self.session.commit()
        self.success({"status": job.status})


ROUTES = [
    (r"/api/solve/worker/claim", Claim),
    (r"/api/solve/worker/jobs/(\d+)/heartbeat", Heartbeat),
    (r"/api/solve/worker/jobs/(\d+)/input", Input),
    (r"/api/solve/worker/jobs/(\d+)/result", Result),
]
