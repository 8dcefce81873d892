"""`python -m astroportal COMMAND --config FILE`: serve, migrate, bootstrap, set_user_role, load_data, openapi."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from . import config as portal_config


def _load(args: argparse.Namespace) -> portal_config.Config:
    return portal_config.load(args.config)


def cmd_serve(args: argparse.Namespace) -> int:
    import tornado.httpserver
    import tornado.ioloop

    from .app import make_app
    from .bootstrap import bootstrap
    from .migrations import UnmigratedDatabase, check_migrated
    from .validate import MAX_HEADER_BYTES

    cfg = _load(args)
    port = args.port or int(cfg.get("server.port"))
    host = args.host or cfg.get("server.host")
    try:
        check_migrated(cfg)
    except UnmigratedDatabase as exc:
        print(f"astroportal: refusing to serve: {exc}", file=sys.stderr)
        return 2
    bootstrap(cfg)
    app = make_app(cfg)
    # The body limit is enforced by the handlers (with a clear message); the server's own is a backstop.
    # Request lines up to MAX_HEADER_BYTES are read, so that a too-long URL is answered 414 by the app.
    server = tornado.httpserver.HTTPServer(app, xheaders=True, max_body_size=2**31, max_header_size=MAX_HEADER_BYTES)
    try:
        server.listen(port, address=host, reuse_port=int(cfg.get("server.processes") or 1) > 1)
    except OSError as exc:
        print(f"astroportal: cannot listen on {host}:{port}: {exc.strerror}; is another server using it?", file=sys.stderr)
        return 2
    logging.getLogger("astroportal").info("astroportal %s serving on http://%s:%s", __version__, host, port)
    tornado.ioloop.IOLoop.current().start()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from .migrations import upgrade

    revs = upgrade(_load(args))
    print("database at revision(s): " + (", ".join(sorted(revs)) or "(empty)"))
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from .bootstrap import bootstrap, token_file

    cfg = _load(args)
    created = bootstrap(cfg)
    print(("created the initial admin; " if created else "") + f"admin token file: {token_file(cfg)}")
    return 0


def cmd_set_user_role(args: argparse.Namespace) -> int:
    from .domain.roles_admin import list_users_roles, set_user_role

    cfg = _load(args)
    if args.list:
        for line in list_users_roles(cfg):
            print(line)
        return 0
    if not args.user or not args.role:
        print("set_user_role: give --user NAME and --role ROLE, or --list", file=sys.stderr)
        return 2
    try:
        print(set_user_role(cfg, args.user, args.role))
    except LookupError as exc:
        print(f"set_user_role: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_load_data(args: argparse.Namespace) -> int:
    from .loader import main as loader_main

    return loader_main(_load(args), args.files, url=args.url, token=args.token)


def cmd_vocabulary(args: argparse.Namespace) -> int:
    """The names the API accepts, for clients that check their files before sending them."""
    import json

    from .bandpasses import KNOWN_FILTERS
    from .models.instruments import INSTRUMENT_TYPES
    from .permissions import ROLES

    print(json.dumps({"filters": sorted(KNOWN_FILTERS), "instrument_types": list(INSTRUMENT_TYPES),
                      "roles": sorted(ROLES)}, indent=1))
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from .openapi import spec_json

    print(spec_json(_load(args)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m astroportal", description="The astroportal astronomy portal.")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--config", metavar="FILE", help="configuration file laid over the defaults ($ASTROPORTAL_CONFIG)")
        p.set_defaults(func=func)
        return p

    p = add("serve", cmd_serve, "serve the portal (refuses an unmigrated database)")
    p.add_argument("--port", type=int, help="port (default: server.port)")
    p.add_argument("--host", help="address (default: server.host)")
    add("migrate", cmd_migrate, "apply pending database migrations and print the revision")
    add("bootstrap", cmd_bootstrap, "create roles, ACLs, the sitewide group and the initial admin with its token")
    p = add("set_user_role", cmd_set_user_role, "give a user a role (replacing the others), or list users' roles")
    p.add_argument("--user", metavar="NAME")
    p.add_argument("--role", metavar="ROLE")
    p.add_argument("--list", action="store_true", help="list users and their roles")
    p = add("load_data", cmd_load_data, "load YAML data files through the portal's API")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--url", help="portal URL (default: loader.url or the configured server URL)")
    p.add_argument("--token", help="API token (default: the initial admin token file)")
    add("openapi", cmd_openapi, "print the OpenAPI 3 description of the API")
    add("vocabulary", cmd_vocabulary, "print, as JSON, the photometry filters, instrument types and roles the API accepts")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic announces its plugin loading at INFO on every command; only its warnings matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except portal_config.ConfigError as exc:
        print(f"astroportal: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a database that cannot be reached deserves one line, not a traceback
        from sqlalchemy.exc import OperationalError

        if not isinstance(exc, OperationalError):
            raise
        from sqlalchemy.engine import make_url

        url = make_url(_load(args).get("database.url")).render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        print(f"astroportal: cannot reach the database at {url}: {reason}; is PostgreSQL running, and is "
              f"database.url right?", file=sys.stderr)
        return 2
