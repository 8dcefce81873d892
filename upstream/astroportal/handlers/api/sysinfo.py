"""GET /api/sysinfo: the health probe."""

from ... import __version__
from ..base import APIHandler


class SysInfoHandler(APIHandler):
    def get(self) -> None:
        """
        ---
        summary: Health probe and version
        tags: [system]
        security: []
        responses:
          200:
            description: The portal answers.
        """
        self.success({"version": __version__, "gitlog": []})


ROUTES = [(r"/api/sysinfo", SysInfoHandler)]
