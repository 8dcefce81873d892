"""What every page handler shares: login redirects, readable error pages, page data for the browser code."""

from __future__ import annotations

import functools
import http.client
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode

import tornado.escape
import tornado.web

from ... import extension_points as ep
from ...errors import ApiError
from ...jsonutil import dumps
from ...validate import cut
from .. import forgery
from ..base import BaseHandler, database_input_error, log

# No ROUTES here: this module only holds the base class (the app factory skips modules without ROUTES).

# Pages load scripts, styles and images from the portal itself only. Plotly needs inline styles, and its WebGL
# traces compile shader code at run time ('unsafe-eval'); everything else is served from 'self'.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; frame-ancestors 'self'; form-action 'self'"
)


class PageHandler(BaseHandler):
    """A handler that answers HTML. Errors become an error page with a plain message, never a traceback.

    A distribution may set `content_security_policy` to None on a subclass whose template needs inline script.
    """

    content_security_policy: str | None = DEFAULT_CSP

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        csp = ep.PAGE_CSP.read(self)
        if csp:
            self.set_header("Content-Security-Policy", csp)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")

    def sent_csrf_token(self) -> str | None:
        """The header, or the `csrf_token` field of a form the portal's page posted."""
        header = super().sent_csrf_token()
        if header:
            return header
        media = (self.request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            return None
        fields = parse_qs(self.body.decode("utf-8", "replace"))
        return (fields.get(forgery.CSRF_FIELD) or [None])[0]

    def get_template_namespace(self) -> dict[str, Any]:
        from .vendor import plotly_url

        namespace = super().get_template_namespace()
        namespace["plotly_url"] = plotly_url()
        namespace["app_title"] = ep.TITLE.read(self.cfg)
        namespace["app_logo"] = ep.LOGO.read(self.cfg)
        namespace["nav_entries"] = [e for e in ep.NAV_ENTRIES.entries(self.cfg) if e.visible_to(self.current_user)]
        namespace["page_blocks"] = self.render_page_blocks
        return namespace

    def render_page_blocks(self, place: str, **context: Any) -> bytes:
        """The templates of `app.page_blocks` for `place`, rendered in order with the page's `context`."""
        if place not in ep.PAGE_BLOCK_PLACES:
            raise ValueError(f"page block place {place!r} is not declared in extension_points.PAGE_BLOCK_PLACES")
        names = ep.PAGE_BLOCKS.places(self.cfg).get(place, [])
        return b"".join(self.render_string(name, **context) for name in names)

    def page_data_json(self, data: dict) -> str:
        """JSON for a <script type="application/json"> block. Every "<" is written as \\u003c, so that no text in
        the data can end the block ("</script>") or open an HTML comment in it ("<!--")."""
        return dumps(data).replace("<", "\\u003c")

    def render_page(self, template: str, status: int = 200, **kwargs: Any) -> None:
        """Render `template` with `page_data` (dict handed to the browser code) defaulting to {}."""
        self.set_status(status)
        data = kwargs.pop("page_data", {}) or {}
        self.render(template, page_data_json=self.page_data_json(data), **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if database_input_error(exc):
            status_code = 400
            self.set_status(400)
            message = "The database refused a value of this request (out of range or too long); check the address."
        elif isinstance(exc, ApiError):
            message = cut(exc.message)
        elif isinstance(exc, tornado.web.HTTPError) and exc.log_message and status_code < 500:
            try:
                message = exc.log_message % exc.args if exc.args else exc.log_message
            except (TypeError, ValueError):
                message = exc.log_message
        elif status_code == 404:
            message = "There is no page at this address."
        elif status_code >= 500:
            message = "Something went wrong on the server. The portal's log has the details."
        else:
            message = http.client.responses.get(status_code, "Error")
        title = http.client.responses.get(status_code, "Error")
        try:
            self.current_user
        except Exception:  # an expired account or a bad token: show the page as to nobody
            self._current_user = None
        # A failed page may have set headers for another content type before failing.
        self.clear_header("Content-Disposition")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        try:
            self.render("error.html", status_code=status_code, title=title, message=message, page_data_json="{}")
        except Exception:  # the error page itself must not fail into a traceback
            log.exception("rendering the error page failed")
            self.finish(
                "<!doctype html><meta charset=utf-8><title>Error</title>"
                f"<h1>{status_code} {tornado.escape.xhtml_escape(title)}</h1>"
                f"<p>{tornado.escape.xhtml_escape(message)}</p>"
            )

    def get_login_url(self) -> str:
        return "/login"


def login_required(method: Callable) -> Callable:
    """Redirect to /login?next=<this page> when nobody is logged in (any method but GET/HEAD answers 401)."""

    @functools.wraps(method)
    def wrapper(self: PageHandler, *args: Any, **kwargs: Any) -> Any:
        if self.current_user is None:
            if self.request.method in ("GET", "HEAD"):
                self.redirect(self.get_login_url() + "?" + urlencode({"next": self.request.uri}))
                return None
            raise ApiError(401, "log in to use this page")
        return method(self, *args, **kwargs)

    wrapper.__auth__ = True  # type: ignore[attr-defined]
    return wrapper


def require_acl(user, acl: str) -> None:
    """403 unless the user holds `acl` (System admin holds every one)."""
    held = user.acl_names
    if acl not in held and "System admin" not in held:
        raise ApiError(403, f"this page needs the permission '{acl}'")
