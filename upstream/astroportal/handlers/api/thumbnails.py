"""/api/thumbnail: images of objects (an alert's new/ref/sub cutouts), one or a list per request."""

from __future__ import annotations

from ...domain import bulk, thumbnails
from ..base import APIHandler, rule


class ThumbnailHandler(APIHandler):
    @rule("POST", "/api/thumbnail")
    def post(self) -> None:
        """Upload an object's thumbnail, or a list of them.
        ---
        summary: Upload thumbnails
        tags: [thumbnails]
        description: >
          SkyPortal's form: `{obj_id, data, ttype}` with `data` the image base64-encoded (PNG, JPEG, or FITS,
          gzipped or not, as alert cutouts come). One image per object and type: a new upload replaces the
          previous one, the same bytes again change nothing. A list of such objects is written in one
          transaction (all or nothing; an error names the item's index).
        requestBody:
          required: true
          content:
            application/json:
              schema:
                oneOf:
                  - $ref: '#/components/schemas/ThumbnailUpload'
                  - {type: array, items: {$ref: '#/components/schemas/ThumbnailUpload'}, maxItems: 1000}
        responses:
          200:
            description: '`{"id": N}`, or `{"ids": [...]}` for a list.'
          400:
            description: A missing or invalid field (the message names it and, in a list, the item's index).
          403:
            description: Lacks "Upload data".
          404:
            description: No such object is visible to you.
        """
        root = self.cfg.var_dir / "thumbnails"
        body = self.get_json_or_list()
        if isinstance(body, dict):
            self.success({"id": thumbnails.post_thumbnail(self.session, self.current_user, body, root)})
            return
        ids = bulk.post_thumbnails(self.session, self.current_user, body, root)
        self.success({"ids": ids})


OPENAPI_SCHEMAS = {
    "ThumbnailUpload": {
        "type": "object",
        "required": ["obj_id", "data", "ttype"],
        "properties": {
            "obj_id": {"type": "string"},
            "data": {"type": "string", "description": "The image, base64-encoded."},
            "ttype": {"type": "string", "enum": ["new", "ref", "sub", "sdss", "dr8", "ls", "ps1", "other"]},
            "origin": {"type": "string", "nullable": True},
        },
    }
}

ROUTES = [(r"/api/thumbnail/?", ThumbnailHandler)]
