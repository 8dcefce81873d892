"""`./run.sh COMMAND [OPTIONS]`: the command line of the distribution."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import LauncherError

EPILOG = """\
configuration: upstream/config.defaults.yaml < config.defaults.yaml < config.yaml < PORTAL__SECTION__KEY
environment variables (YAML values; `!delete` removes a key). PORTAL_ROOT and PORTAL_VAR name another
project root and runtime directory. `./run.sh COMMAND --help` tells more about a command."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors also point at --help."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")


def build_parser() -> tuple[Parser, dict[str, Parser]]:
    parser = Parser(prog="./run.sh", description="Run, build and administer the astroportal distribution.",
                    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"launcher {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subs: dict[str, Parser] = {}

    def add(name: str, help: str, description: str | None = None) -> Parser:
        p = sub.add_parser(name, help=help, description=description or help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        subs[name] = p
        return p

    p = add("run", "build, start the database and every service, return once the portal answers",
            "Build patched/, start the database (embedded unless database.url is configured), migrate, start\n"
            "supervisord with the portal and every enabled service, wait until GET /api/sysinfo answers and\n"
            "print the URL.")
    p.add_argument("--init", action="store_true", help="also create the initial admin and load the distribution's data/")
    p.add_argument("--clear", action="store_true", help="drop and recreate the database first (asks for confirmation)")
    p.add_argument("--yes", action="store_true", help="confirm --clear without asking")
    add("stop", "stop every service and the embedded database")
    add("status", "show the services, the database and whether the portal answers (exit 3 when not running)")
    p = add("restart", "rebuild, migrate and restart every service, or restart one service")
    p.add_argument("service", nargs="?", metavar="SERVICE", help="a service name, e.g. app")
    p = add("log", "show the logs under var/log/ (all, or one service's)")
    p.add_argument("service", nargs="?", metavar="SERVICE", help="a service name, supervisord or postgresql")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="lines to show (default 50)")
    add("token", "print the initial admin's API token alone on one line")
    p = add("set_user_role", "give a user a role (replacing their roles), or list users and roles")
    p.add_argument("--user", metavar="NAME")
    p.add_argument("--role", metavar="ROLE", help="Super admin, Group admin, Full user or View only")
    p.add_argument("--list", action="store_true", help="list users and their roles")
    p = add("load_data", "load YAML data through the running portal's API (default: the distribution's data/)")
    p.add_argument("files", nargs="*", metavar="FILE", help="files to load (relative to the current directory or data/)")
    add("migrate", "apply pending database migrations (upstream's chain and the distribution's branch)")
    p = add("build", "assemble patched/ from upstream/, extensions/, services/ and the configuration",
            "Assemble patched/ (incremental and atomic) and print a summary. Warns when upstream changed under\n"
            "an override recorded in extensions/PROVENANCE.yaml.")
    p.add_argument("--force", action="store_true", help="rewrite every file instead of only the changed ones")
    p.add_argument("--accept-upstream", nargs="*", metavar="PATH",
                   help="record today's upstream file as the base of these overrides (all when no PATH)")
    p = add("diff", "show each override against upstream as a unified diff, and the added and deleted files")
    p.add_argument("path", nargs="?", metavar="PATH", help="a file or directory of the tree")
    p.add_argument("--stat", action="store_true", help="one line per override with its added/removed line counts")
    p = add("config", "print the effective configuration (or one KEY) and the layer that set each value")
    p.add_argument("key", nargs="?", metavar="KEY", help="a dotted key, e.g. server.port")
    p.add_argument("--show-secrets", action="store_true", help="print secret values instead of ********")
    p = add("test", "run every test: upstream's suite, then the distribution's; ends with 'N passed, N failed'",
            "Run the upstream portal's suite (cd upstream && pytest tests) and the distribution's (pytest tests).\n"
            "Arguments after -- go to pytest, e.g. ./run.sh test --suite distribution -- -k overlay -x")
    p.add_argument("--suite", choices=["upstream", "distribution"], action="append",
                   help="run only this suite (repeatable)")
    from . import broker

    broker.add_parser(add)
    return parser, subs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, subs = build_parser()
    passthrough: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, passthrough = argv[:i], argv[i + 1:]
    args, extra = parser.parse_known_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if extra:
        subs[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    if passthrough and args.command != "test":
        subs[args.command].error("arguments after -- are only for `test`")
    try:
        return dispatch(args, passthrough)
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def dispatch(args: argparse.Namespace, passthrough: list[str]) -> int:
    if args.command == "test":
        from . import suite

        return suite.run(args.suite or list(suite.SUITES), passthrough)

    from . import config as configmod

    cfg = configmod.load()
    cmd = args.command
    if cmd == "config":
        from .show_config import show

        return show(cfg, args.key, args.show_secrets)
    if cmd == "build":
        from .build import build

        build(cfg, force=args.force, accept=args.accept_upstream)
        return 0
    if cmd == "diff":
        from .diff import diff

        sys.stdout.write(diff(cfg.project, args.path, args.stat))
        return 0
    if cmd == "token":
        from .admin import token

        print(token(cfg))
        return 0

    if cmd == "broker":
        from . import broker

        return broker.run(cfg, args)

    from . import lifecycle

    if cmd == "run":
        return lifecycle.run(cfg, init=args.init, clear=args.clear, yes=args.yes)
    if cmd == "stop":
        return lifecycle.stop(cfg)
    if cmd == "status":
        return lifecycle.status(cfg)
    if cmd == "restart":
        return lifecycle.restart(cfg, args.service)
    if cmd == "log":
        return lifecycle.log(cfg, args.service, args.follow, args.lines)

    from .build import build

    if cmd == "migrate":
        from .migrations import migrate

        build(cfg)
        with lifecycle.database_up(cfg):
            migrate(cfg)
        return 0
    if cmd == "set_user_role":
        from .admin import set_user_role

        if not args.list and not (args.user and args.role):
            raise LauncherError("set_user_role: give --user NAME and --role ROLE, or --list", 2)
        build(cfg)
        with lifecycle.database_up(cfg):
            sys.stdout.write(set_user_role(cfg, args.user, args.role, args.list))
        return 0
    if cmd == "load_data":
        from .admin import load_data

        load_data(cfg, args.files)
        return 0
    raise LauncherError(f"unknown command {cmd}", 2)
