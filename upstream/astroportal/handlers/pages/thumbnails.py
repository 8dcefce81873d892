"""/thumbnails/ID.png: a thumbnail as PNG (FITS cutouts rendered on first view, then served from the cache)."""

from __future__ import annotations

import logging

from ...domain import thumbnails
from ...errors import ApiError
from ..base import BaseHandler

log = logging.getLogger("astroportal")


class ThumbnailImage(BaseHandler):
    def get(self, thumbnail_id: str) -> None:
        user = self.current_user
        if user is None:
            raise ApiError(401, "log in to see thumbnails")
        row = thumbnails.visible_thumbnail(self.session, user, int(thumbnail_id))
        try:
            png = thumbnails.thumbnail_png(row, self.cfg.var_dir / "thumbnails")
        except FileNotFoundError:
            raise ApiError(404, f"the image file of thumbnail {row.id} is missing from the server") from None
        except (ValueError, OSError) as exc:
            log.warning("thumbnail %s cannot be rendered: %s", row.id, exc)
            raise ApiError(422, f"thumbnail {row.id} cannot be shown: {exc}") from None
        self.set_header("Content-Type", "image/png")
        # The image changes only when a new upload replaces it; its URL then carries the new time.
        self.set_header("Cache-Control", "private, max-age=86400")
        self.finish(png)


ROUTES = [(r"/thumbnails/([0-9]+)\.png", ThumbnailImage)]
