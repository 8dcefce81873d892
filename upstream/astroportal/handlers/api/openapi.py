"""GET /api/openapi.json: the API's OpenAPI 3.0 description (no login needed)."""

from __future__ import annotations

from ... import openapi
from ..base import APIHandler


class OpenAPIHandler(APIHandler):
    def get(self) -> None:
        """
        OpenAPI document
        ---
        summary: The OpenAPI 3.0 description of this API
        tags: [system]
        security: []
        responses:
          200:
            description: The OpenAPI document itself (not wrapped in the success envelope).
            content:
              application/json:
                schema: {type: object}
        """
        # Routes are fixed once the app is built, so the document is made once per process.
        settings = self.application.settings
        if "openapi_json" not in settings:
            settings["openapi_json"] = openapi.spec_json(self.cfg)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(settings["openapi_json"])


ROUTES = [(r"/api/openapi\.json", OpenAPIHandler)]
