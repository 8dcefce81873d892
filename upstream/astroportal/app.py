"""The app factory: routes from handler modules (the portal's own and configured extras), templates, static files."""

from __future__ import annotations

import importlib
import os
import pkgutil
import secrets
from pathlib import Path

import tornado.template
import tornado.web

from . import extension_points as ep
from .bootstrap import write_private
from .config import Config
from .db import import_model_modules, make_sessionmaker

PACKAGE_DIR = Path(__file__).resolve().parent
CORE_HANDLER_PACKAGES = ["astroportal.handlers.api", "astroportal.handlers.pages"]


def core_handler_modules() -> list[str]:
    """Every module under the portal's handler packages (each exports ROUTES)."""
    names = []
    for pkg_name in CORE_HANDLER_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.iter_modules(pkg.__path__):
            names.append(f"{pkg_name}.{info.name}")
    return sorted(names)


def collect_routes(cfg: Config) -> list[tuple]:
    """The routes of `app.handler_modules` and of the portal's handler modules, in ROUTE_PRECEDENCE's order."""
    extra = [r for m in ep.HANDLER_MODULES.modules(cfg) for r in ep.ROUTES_OF_MODULE.read(m, [])]
    core = [r for name in core_handler_modules() for r in ep.ROUTES_OF_MODULE.read(importlib.import_module(name), [])]
    return ep.ROUTE_PRECEDENCE.ordered(extra, core)


class MultiLoader(tornado.template.Loader):
    """A template loader that searches several directories in order (a distribution's first)."""

    def __init__(self, roots: list[str], **kwargs) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        super().__init__(self.roots[-1], **kwargs)

    def resolve_path(self, name: str, parent_path: str | None = None) -> str:
        for root in self.roots:
            if os.path.isfile(os.path.join(root, name)):
                return os.path.join(root, name)
        return super().resolve_path(name, parent_path)

    def _create_template(self, name: str) -> tornado.template.Template:
        path = name if os.path.isabs(name) else os.path.join(self.root, name)
        with open(path, "rb") as fh:
            return tornado.template.Template(fh.read(), name=name, loader=self)


class MultiStaticHandler(tornado.web.StaticFileHandler):
    """Static files looked up in several directories in order; the first that has the file serves it."""

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        for r in cls.roots:  # type: ignore[attr-defined]
            candidate = os.path.abspath(os.path.join(r, path))
            if os.path.isfile(candidate):
                return candidate
        return os.path.abspath(os.path.join(root, path))

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        for r in self.roots:  # type: ignore[attr-defined]
            if absolute_path.startswith(os.path.abspath(r) + os.sep):
                return super().validate_absolute_path(os.path.abspath(r), absolute_path)
        raise tornado.web.HTTPError(404)


def cookie_secret(cfg: Config) -> str:
    """The configured secret, or one generated on first use and kept in paths.var (mode 0600)."""
    if cfg.get("server.cookie_secret"):
        return cfg.get("server.cookie_secret")
    path = cfg.var_dir / "cookie_secret"
    if not path.exists():
        write_private(path, secrets.token_hex(32))
    return path.read_text().strip()


def check_page_extensions(cfg: Config, template_roots: list[str]) -> None:
    """Stop at start, naming the key, when a page block's template is missing or a nav entry is malformed."""
    ep.NAV_ENTRIES.entries(cfg)
    for place, names in ep.PAGE_BLOCKS.places(cfg).items():
        for name in names:
            if not any(os.path.isfile(os.path.join(root, name)) for root in template_roots):
                raise ep.ExtensionPointError(
                    f"{ep.PAGE_BLOCKS.name}.{place}: template {name!r} is in none of the template directories "
                    f"({', '.join(template_roots)}); add its directory to {ep.TEMPLATE_PATHS.name}"
                )


def make_app(cfg: Config) -> tornado.web.Application:
    """Build the Tornado application for `cfg` (the database must already be migrated)."""
    import_model_modules(cfg)
    template_roots = [str(p) for p in ep.TEMPLATE_PATHS.paths(cfg)] + [str(PACKAGE_DIR / "templates")]
    static_roots = [str(p) for p in ep.STATIC_PATHS.paths(cfg)] + [str(PACKAGE_DIR / "static")]
    check_page_extensions(cfg, template_roots)
    static_handler = type("StaticHandler", (MultiStaticHandler,), {"roots": static_roots})
    settings = dict(
        portal_config=cfg,
        sessionmaker=make_sessionmaker(cfg),
        cookie_secret=cookie_secret(cfg),
        template_loader=MultiLoader(template_roots, autoescape="xhtml_escape"),
        static_path=static_roots[-1],
        static_handler_class=static_handler,
        login_url="/login",
        xheaders=True,
        debug=False,
        compress_response=True,
        log_function=log_request,
    )
    from .handlers.base import APIHandler
    from .errors import ApiError

    class NoSuchRoute(APIHandler):
        # Refused from the methods, not prepare(): see BaseHandler.prepare.
        def _refuse(self, *args) -> None:
            raise ApiError(404, f"no such API route: {self.request.method} {self.request.path}")

        get = post = put = patch = delete = head = options = _refuse

    from .live.runtime import attach

    attach(settings, cfg)
    from .gw.plan import configured_defaults

    settings["plan_defaults"] = configured_defaults(cfg)
    routes = collect_routes(cfg) + [(r"/api/.*", NoSuchRoute)]
    return PortalApplication(routes, **settings)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log line, with a long URI cut (a 60 kB URL per line wore the log history away)."""
    import logging

    from .validate import log_uri

    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if status < 400 and getattr(handler, "routine_answer", False):
        # An empty answer to a poll that comes every few seconds (a worker asking for work): at INFO, a few idle
        # workers would wear the log's history away in an hour and bury what a person reads it for.
        level = logging.DEBUG
    request = handler.request
    logging.getLogger("tornado.access").log(
        level, "%d %s %s (%s) %.2fms", status, request.method, log_uri(request.uri or ""), request.remote_ip,
        1000.0 * request.request_time(),
    )


class UriTooLong(tornado.web.RequestHandler):
    """Answers 414 to a request target longer than validate.MAX_URL_BYTES, before any routing or parsing."""

    def prepare(self) -> None:
        from .jsonutil import dumps
        from .validate import MAX_URL_BYTES

        self.set_status(414)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps({"status": "error", "data": {}, "message": f"the URL is {len(self.request.uri or '')} "
                           f"bytes long; at most {MAX_URL_BYTES} are served: send long values in a POST body"}))


class PortalApplication(tornado.web.Application):
    """The portal's application: a too-long URL is answered 414 here (the HTTP server reads up to
    validate.MAX_HEADER_BYTES of request line and headers, so that it can be answered rather than dropped)."""

    def find_handler(self, request, **kwargs):
        from .validate import MAX_URL_BYTES

        if len(request.uri or "") > MAX_URL_BYTES:
            return self.get_handler_delegate(request, UriTooLong)
        return super().find_handler(request, **kwargs)
