"""The solve service's pages: /solve (upload form and the jobs table) and /solve/jobs/ID (one job)."""

from __future__ import annotations

from astroportal.errors import ApiError
from astroportal.handlers.pages.common import PageHandler, login_required

from . import service, storage
from .options import SCALE_UNITS


class SolvePage(PageHandler):
    @login_required
    def get(self) -> None:
        """The upload form and the jobs table (it refreshes itself)."""
        self.render_page("solve.html", page_data={"may_upload": service.may_upload(self.current_user),
                                                  "user_id": self.current_user.id},
                         scale_units=SCALE_UNITS, may_upload=service.may_upload(self.current_user))


class JobPage(PageHandler):
    @login_required
    def get(self, ident: str) -> None:
        """One job: its state and history, the calibration, the image with matched stars, grid and sources."""
        job, sub = service.get_job(self.session, int(ident))
        service.check_read(self.current_user, sub)
        self.render_page("solve_job.html", page_data={"job_id": job.id}, job_id=job.id)


class Preview(PageHandler):
    @login_required
    def get(self, ident: str) -> None:
        """The job's image as a JPEG (rows top to bottom, as solve-field numbers them)."""
        _, sub = service.get_job(self.session, int(ident))
        service.check_read(self.current_user, sub)
        path = storage.preview_path(self.cfg, sub.id)
        if not path.is_file():
            raise ApiError(404, "this job has no image to show (an x/y list)")
        self.set_header("Content-Type", "image/jpeg")
        self.set_header("Cache-Control", "private, max-age=3600")
        self.finish(path.read_bytes())


ROUTES = [
    (r"/solve/?", SolvePage),
    (r"/solve/jobs/(\d+)/?", JobPage),
    (r"/solve/jobs/(\d+)/preview\.jpg", Preview),
]
