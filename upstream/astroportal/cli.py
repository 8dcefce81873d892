"""`python -m astroportal COMMAND --config FILE`: serve, migrate, bootstrap, set_user_role, load_data, openapi,
vocabulary, extension_points, service_token, thumbnails_gc, and the commands of the modules in `app.cli_modules`."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

from . import __version__
from . import config as portal_config
from . import extension_points as ep


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
    loop = tornado.ioloop.IOLoop.current()

    def drain() -> None:
        # Stop listening at once (other processes sharing the port take the new connections), give the
        # requests in flight a moment to finish, then stop: a process restarted alone loses no request.
        server.stop()
        loop.call_later(1.0, loop.stop)

    signal.signal(signal.SIGTERM, lambda signum, frame: loop.add_callback_from_signal(drain))
    loop.start()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    import json

    from .migrations import state, upgrade

    cfg = _load(args)
    if args.dry_run:  # what an upgrade would do, changing nothing (a deployer checks a new build with it)
        answer = state(cfg)
        answer["upgraded"] = []
        print(json.dumps(answer) if args.json else "pending: " + (", ".join(answer["pending"]) or "(none)"))
        return 0
    before = set(state(cfg)["applied"]) if args.json else set()
    revs = upgrade(cfg)
    if args.json:
        after = state(cfg)
        after["upgraded"] = sorted(set(after["applied"]) - before)
        print(json.dumps(after))
    else:
        print("database at revision(s): " + (", ".join(sorted(revs)) or "(empty)"))
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from .bootstrap import bootstrap, token_file

    cfg = _load(args)
    done = bootstrap(cfg)
    if args.json:
        # For a launcher deciding whether this is a first start (no user before) without importing the portal.
        print(json.dumps({"created_admin": done.created_admin, "new_database": done.new_database,
                          "token_file": str(token_file(cfg))}))
    else:
        print(("created the initial admin; " if done.created_admin else "") + f"admin token file: {token_file(cfg)}")
    return 0


def cmd_service_token(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .db import session_scope
    from .domain.service_tokens import service_token_to_file
    from .errors import ApiError

    try:
        with session_scope(_load(args)) as session:
            answer = service_token_to_file(session, args.name, args.acls, args.groups, Path(args.output),
                                           create_groups=args.create_groups)
    except ApiError as exc:
        print(f"service_token: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"service_token: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


def cmd_thumbnails_gc(args: argparse.Namespace) -> int:
    from .db import session_scope
    from .domain.thumbnail_packs import collect_garbage

    cfg = _load(args)
    with session_scope(cfg) as session:
        answer = collect_garbage(session, cfg.var_dir / "thumbnails", min_age=args.min_age, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(answer))
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{verb} {answer['packs_deleted']} unreferenced pack(s) ({answer['bytes_freed']} bytes) and "
              f"{answer['cached_pngs_deleted']} stale PNG(s); kept {answer['packs_too_young']} pack(s) younger than "
              f"{args.min_age:g} s; {answer['packs_live']} pack(s) in use hold {answer['bytes_reclaimable']} bytes "
              "of replaced or deleted images")
    return 0


def cmd_set_user_role(args: argparse.Namespace) -> int:
    from .domain.roles_admin import LastSuperAdmin, list_users_roles, set_user_role

    cfg = _load(args)
    if args.list:
        for line in list_users_roles(cfg):
            print(line)
        return 0
    if not args.user or not args.role:
        print("set_user_role: give --user NAME and --role ROLE, or --list", file=sys.stderr)
        return 2
    try:
        print(set_user_role(cfg, args.user, args.role, force=args.force))
    except (LookupError, LastSuperAdmin) as exc:
        print(f"set_user_role: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_load_data(args: argparse.Namespace) -> int:
    from .loader import dry_run
    from .loader import main as loader_main

    if args.dry_run:
        return dry_run(args.files, as_json=args.json)
    if args.json:
        print("load_data: --json goes with --dry-run (a load reports one line per entry)", file=sys.stderr)
        return 2
    return loader_main(_load(args), args.files, url=args.url, token=args.token)


def cmd_vocabulary(args: argparse.Namespace) -> int:
    """The names the API accepts, for clients that check their files before sending them."""
    from .bandpasses import KNOWN_FILTERS
    from .models.instruments import INSTRUMENT_TYPES
    from .bootstrap import configured_permissions
    from .permissions import ROLES

    _, grants = configured_permissions(_load(args))
    print(json.dumps({"filters": sorted(KNOWN_FILTERS), "instrument_types": list(INSTRUMENT_TYPES),
                      "roles": sorted(set(ROLES) | set(grants))}, indent=1))
    return 0


def cmd_extension_points(args: argparse.Namespace) -> int:
    """The catalogue of extension points, as JSON."""
    print(ep.catalogue_json())
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from .openapi import spec_json

    print(spec_json(_load(args)))
    return 0


def contributed_commands(argv: list[str]) -> list[ep.Command]:
    """The commands of `app.cli_modules` in the configuration that `argv` (or $ASTROPORTAL_CONFIG) names.

    A configuration that cannot be read leaves them out with a warning: the portal's own commands still work
    (and report the problem themselves).
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    try:
        return ep.CLI_MODULES.commands(portal_config.load(known.config))
    except portal_config.ConfigError as exc:
        print(f"astroportal: the commands of {ep.CLI_MODULES.name} are not available: {exc}", file=sys.stderr)
        return []


def build_parser(extra: list[ep.Command] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m astroportal", description="The astroportal astronomy portal.")
    parser.add_argument("--version", action="version", version=__version__)
    # Also before the command, so that `--config FILE --help` lists the commands of that file's app.cli_modules.
    parser.add_argument("--config", metavar="FILE", help="configuration file laid over the defaults ($ASTROPORTAL_CONFIG)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                       help="configuration file laid over the defaults ($ASTROPORTAL_CONFIG)")
        p.set_defaults(func=func)
        return p

    p = add("serve", cmd_serve, "serve the portal (refuses an unmigrated database)")
    p.add_argument("--port", type=int, help="port (default: server.port)")
    p.add_argument("--host", help="address (default: server.host)")
    p = add("migrate", cmd_migrate, "apply pending database migrations and print the revision")
    p.add_argument("--json", action="store_true",
                   help='answer one JSON object: {"heads", "current", "applied", "pending", "upgraded"} (lists of revisions)')
    p.add_argument("--dry-run", action="store_true", help="apply nothing: only say what is pending")
    p = add("bootstrap", cmd_bootstrap, "create roles, ACLs, the sitewide group and the initial admin with its token")
    p.add_argument("--json", action="store_true",
                   help='answer {"created_admin", "new_database" (no user before), "token_file"} as JSON')
    p = add("set_user_role", cmd_set_user_role, "give a user a role (replacing the others), or list users' roles")
    p.add_argument("--user", metavar="NAME")
    p.add_argument("--role", metavar="ROLE")
    p.add_argument("--list", action="store_true", help="list users and their roles")
    p.add_argument("--force", action="store_true", help="allow demoting the last Super admin")
    p = add("load_data", cmd_load_data, "load YAML data files through the portal's API")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--url", help="portal URL (default: loader.url or the configured server URL)")
    p.add_argument("--token", help="API token (default: the initial admin token file)")
    p.add_argument("--dry-run", action="store_true",
                   help="only validate the files (fields, ranges, references, includes): nothing is written and no "
                        "running portal or database is needed; exit 1 when there is a problem")
    p.add_argument("--json", action="store_true", help="with --dry-run: answer one JSON object on stdout")
    p = add("thumbnails_gc", cmd_thumbnails_gc,
            "delete thumbnail pack files and cached PNGs no thumbnail uses any more; report the bytes of replaced "
            "images still inside packs in use")
    p.add_argument("--min-age", type=float, default=3600.0, metavar="SECONDS",
                   help="leave files younger than this alone (a pack being written has no row yet); default 3600")
    p.add_argument("--dry-run", action="store_true", help="delete nothing: only report")
    p.add_argument("--json", action="store_true", help="answer one JSON object of counts and bytes")
    add("openapi", cmd_openapi, "print the OpenAPI 3 description of the API")
    p = add("service_token", cmd_service_token,
            "create or update a service's bot user (exactly these ACLs and groups) and keep its API token in a file")
    p.add_argument("name", metavar="NAME", help="the service's name, also its bot's username")
    p.add_argument("--acls", nargs="+", default=[], metavar="ACL", help='ACLs the bot holds, e.g. "Upload data"')
    p.add_argument("--groups", nargs="+", default=[], metavar="GROUP", help="existing groups the bot joins")
    p.add_argument("--create-groups", action="store_true",
                   help="create a --groups group that does not exist, with the bot as its admin (its own group)")
    p.add_argument("--output", required=True, metavar="FILE",
                   help="token file (mode 0600); a still-valid token already in it is kept")
    add(ep.VOCABULARY_COMMAND.name, cmd_vocabulary,
        "print, as JSON, the photometry filters, instrument types and roles the API accepts")
    add("extension_points", cmd_extension_points, "print, as JSON, the catalogue of extension points")
    for command in extra or []:
        if command.name in sub.choices:
            raise ep.ExtensionPointError(f"{ep.CLI_MODULES.name}: command {command.name!r} is already a command "
                                         "of the portal; give it another name")
        p = add(command.name, _run_contributed(command), command.help)
        if command.add_arguments is not None:
            command.add_arguments(p)
    return parser


def _run_contributed(command: ep.Command):
    def run(args: argparse.Namespace) -> int:
        return int(command.run(args, _load(args)) or 0)

    return run


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic announces its plugin loading at INFO on every command; only its warnings matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser(contributed_commands(argv))
    except ep.ExtensionPointError as exc:
        print(f"astroportal: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
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
