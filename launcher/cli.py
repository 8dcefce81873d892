"""`./run.sh COMMAND [OPTIONS]`: the command line of the distribution.

Every command is a plain function registered with @command, its arguments declared beside it; the one
registry (COMMANDS) builds both the argparse parser (with --help for each command) and the dispatch.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from . import __version__
from . import broker as broker_commands
from . import gcn as gcn_commands
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


def arg(*flags: str, **options: Any) -> tuple[tuple[str, ...], dict]:
    """One argument of a command, as argparse's add_argument takes it."""
    return flags, options


@dataclass
class Command:
    name: str
    func: Callable[[argparse.Namespace], int]
    help: str
    description: str | None = None
    arguments: list[tuple[tuple[str, ...], dict]] = field(default_factory=list)
    config: bool = True  # the function gets the loaded configuration as args.cfg
    passthrough: bool = False  # takes arguments after `--` (as args.passthrough)
    # For arguments a flat list cannot say (actions with arguments of their own): called with the parser.
    configure: Callable[[argparse.ArgumentParser], None] | None = None


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, *arguments: tuple[tuple[str, ...], dict], description: str | None = None,
            config: bool = True, passthrough: bool = False,
            configure: Callable[[argparse.ArgumentParser], None] | None = None):
    """Register the decorated function as `./run.sh NAME` (in the order of registration)."""

    def register(func: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = Command(name, func, help, description, list(arguments), config, passthrough, configure)
        return func

    return register


# -- the commands ---------------------------------------------------------------------------------------------
@command("run", "build, start the database and every service, return once the portal answers",
         arg("--init", action="store_true",
             help="also validate and load the distribution's data/ (done by itself on a new database)"),
         arg("--clear", action="store_true", help="drop and recreate the database first (asks for confirmation)"),
         arg("--yes", action="store_true", help="confirm --clear without asking"),
         description="Build patched/, start the database (embedded unless database.url is configured), migrate, start\n"
                     "supervisord with the portal and every enabled service, wait until GET /api/sysinfo answers and\n"
                     "print the URL. On a new database (no user yet) it also does what --init does. Two at once: the\n"
                    "second waits for the first, then says the portal runs.")
def cmd_run(args: argparse.Namespace) -> int:
    from . import lifecycle

    return lifecycle.run(args.cfg, init=args.init, clear=args.clear, yes=args.yes)


@command("stop", "stop every service and the embedded database")
def cmd_stop(args: argparse.Namespace) -> int:
    from . import lifecycle

    return lifecycle.stop(args.cfg)


@command("status", "show the services, the database and whether the portal answers (exit 3 when not running)")
def cmd_status(args: argparse.Namespace) -> int:
    from . import lifecycle

    return lifecycle.status(args.cfg)


@command("restart", "rebuild, migrate and restart every service, or restart one service",
         arg("service", nargs="?", metavar="SERVICE", help="a service name, e.g. app"))
def cmd_restart(args: argparse.Namespace) -> int:
    from . import lifecycle

    return lifecycle.restart(args.cfg, args.service)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


@command("log", "show the logs under var/log/ (all, or one service's)",
         arg("service", nargs="?", metavar="SERVICE", help="a service name, supervisord or postgresql"),
         arg("-f", "--follow", action="store_true", help="keep printing new lines"),
         arg("-n", "--lines", type=positive_int, default=50, metavar="N", help="lines to show (at least 1; default 50)"))
def cmd_log(args: argparse.Namespace) -> int:
    from . import lifecycle

    return lifecycle.log(args.cfg, args.service, args.follow, args.lines)


@command("token", "print the initial admin's API token alone on one line")
def cmd_token(args: argparse.Namespace) -> int:
    from .admin import token

    print(token(args.cfg))
    return 0


@command("set_user_role", "give a user a role (replacing their roles), or list users and roles",
         arg("--user", metavar="NAME"),
         arg("--role", metavar="ROLE", help="Super admin, Group admin, Full user or View only"),
         arg("--list", action="store_true", help="list users and their roles"),
         arg("--force", action="store_true", help="allow demoting the last Super admin"),
         description="Give a user a role, or list users and roles: the portal's own `set_user_role` command, run on\n"
                     "the database (started for the while if needed). The portal checks the arguments.")
def cmd_set_user_role(args: argparse.Namespace) -> int:
    from . import lifecycle
    from .admin import set_user_role
    from .build import build

    build(args.cfg)
    with lifecycle.database_up(args.cfg):
        sys.stdout.write(set_user_role(args.cfg, args.user, args.role, args.list, args.force))
    return 0


@command("load_data", "validate, then load YAML data through the running portal's API (default: data/)",
         arg("files", nargs="*", metavar="FILE", help="files to load (relative to the current directory or data/)"),
         arg("--dry-run", action="store_true", help="only validate the files (the portal need not run)"))
def cmd_load_data(args: argparse.Namespace) -> int:
    from .admin import load_data
    from .build import build

    build(args.cfg)  # the portal's own loader checks the files: the build's
    load_data(args.cfg, args.files, dry_run=args.dry_run)
    return 0


@command("migrate", "apply pending database migrations (upstream's chain and the distribution's branch)")
def cmd_migrate(args: argparse.Namespace) -> int:
    from . import lifecycle
    from .build import build
    from .migrations import migrate

    build(args.cfg)
    with lifecycle.database_up(args.cfg):
        migrate(args.cfg, answer=True)
    return 0


@command("build", "assemble patched/ from upstream/, extensions/, services/ and the configuration",
         arg("--force", action="store_true", help="rewrite every file instead of only the changed ones"),
         arg("--accept-upstream", nargs="*", metavar="PATH",
             help="record today's upstream file as the base of these overrides (all when no PATH)"),
         description="Assemble patched/ (incremental and atomic) and print a summary. Warns when upstream changed under\n"
                     "an override recorded in extensions/PROVENANCE.yaml.")
def cmd_build(args: argparse.Namespace) -> int:
    from .build import build

    build(args.cfg, force=args.force, accept=args.accept_upstream)
    return 0


@command("diff", "show each override against upstream as a unified diff, and the added and deleted files",
         arg("path", nargs="?", metavar="PATH", help="a file or directory of the tree"),
         arg("--stat", action="store_true", help="one line per override with its added/removed line counts"))
def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import diff

    sys.stdout.write(diff(args.cfg.project, args.path, args.stat))
    return 0


@command("update", "take a new upstream: compare, three-way merge the overrides, replace upstream/",
         arg("--from", dest="source", required=True, metavar="SOURCE[@REF]",
             help="a git repository (path or URL) with @REF, a directory, or a tarball holding the new upstream"),
         arg("--on-conflict", choices=["merge", "force", "cancel"],
             help="what to do when a merge conflicts (asked on a terminal; required without one)"),
         arg("--dry-run", action="store_true", help="print the summary of changes and merges, change nothing"),
         description="Compare upstream/ with a new upstream tree (added, changed, deleted, renamed files), then replace\n"
                     "upstream/ and three-way merge every override whose upstream file changed (base: its recorded\n"
                     "upstream file; ours: the override; theirs: the new file). On conflict: merge (write conflict\n"
                     "markers, exit 1), force (keep the overrides as they are, stale) or cancel (change nothing).\n"
                     "The tree is replaced all at once: an interrupted update is finished or undone by the next run.",
         config=False)
def cmd_update(args: argparse.Namespace) -> int:
    from .paths import Project
    from .update import update

    return update(Project.from_env(), args.source, args.on_conflict, args.dry_run)


@command("config", "print the effective configuration (or one KEY) and the layer that set each value",
         arg("key", nargs="?", metavar="KEY", help="a dotted key, e.g. server.port"),
         arg("--show-secrets", action="store_true", help="print secret values instead of ********"))
def cmd_config(args: argparse.Namespace) -> int:
    from .show_config import show

    return show(args.cfg, args.key, args.show_secrets)


@command("broker", broker_commands.HELP, description=broker_commands.DESCRIPTION,
         configure=broker_commands.configure_parser)
def cmd_broker(args: argparse.Namespace) -> int:
    return broker_commands.run(args.cfg, args)


@command("gcn", gcn_commands.HELP, description=gcn_commands.DESCRIPTION, configure=gcn_commands.configure_parser)
def cmd_gcn(args: argparse.Namespace) -> int:
    return gcn_commands.run(args.cfg, args)


@command("test", "run every test: upstream's suite, then the distribution's; ends with 'N passed, N failed'",
         arg("--suite", choices=["upstream", "distribution"], action="append", help="run only this suite (repeatable)"),
         arg("--fast", action="store_true",
             help="the quick loop: leave out the end-to-end tests (pytest -m 'not e2e': instances, browsers)"),
         description="Run the upstream portal's suite (cd upstream && pytest tests) and the distribution's (pytest tests).\n"
                     "Arguments after -- go to pytest, e.g. ./run.sh test --suite distribution -- -k overlay -x",
         config=False, passthrough=True)
def cmd_test(args: argparse.Namespace) -> int:
    from . import suite

    return suite.run(args.suite or list(suite.SUITES), args.passthrough, fast=args.fast)


@command("backup", "dump the database (pg_dump -Fc) into var/backups/, keeping the last launcher.backups_kept",
         arg("--list", action="store_true", help="list the backups instead"))
def cmd_backup(args: argparse.Namespace) -> int:
    from .backup import run_backup

    return run_backup(args.cfg, args.list)


@command("restore", "replace the database's content with a backup (the portal stopped around it)",
         arg("file", metavar="FILE", help="a pg_dump -Fc file (a name alone is looked for in var/backups/)"),
         arg("--yes", action="store_true", help="confirm without asking"),
         description="Replace everything in the portal's database with FILE (pg_restore), after confirmation or --yes.\n"
                     "A running portal and its services are stopped for the while and started again.")
def cmd_restore(args: argparse.Namespace) -> int:
    from .backup import run_restore

    return run_restore(args.cfg, args.file, args.yes)


@command("deploy", "update the running installation: check, back up, migrate, swap, restart, roll back on failure",
         description="Build the new tree beside patched/ and check it, back up the database, migrate (upstream's chain\n"
                     "and the distribution's branch), swap the trees, restart the app one process at a time, wait\n"
                     "for health. A failed migration or an unhealthy build puts the previous build and database back.")
def cmd_deploy(args: argparse.Namespace) -> int:
    from .deploy import deploy

    return deploy(args.cfg)


@command("rollback", "return to the build from before the last deploy, and its backup of the database",
         arg("--yes", action="store_true", help="confirm without asking"))
def cmd_rollback(args: argparse.Namespace) -> int:
    from .deploy import rollback

    return rollback(args.cfg, args.yes)


@command("nginx", "write an nginx site for server.url's host (TLS, proxy, websocket, static) and check it",
         arg("--output", metavar="FILE", help="where to write it (default var/nginx/HOST.conf)"))
def cmd_nginx(args: argparse.Namespace) -> int:
    from .nginx import write

    return write(args.cfg, args.output)


@command("systemd", "write a systemd unit that starts the distribution at boot (and a logrotate file)",
         arg("--output", metavar="FILE", help="where to write the unit (default var/systemd/astroportal.service)"),
         arg("--user", metavar="USER", help="the user it runs as (default: the current one)"))
def cmd_systemd(args: argparse.Namespace) -> int:
    from .systemd import write

    return write(args.cfg, args.output, args.user)


# -- the parser and the dispatch, both from COMMANDS ----------------------------------------------------------
def build_parser() -> tuple[Parser, dict[str, Parser]]:
    parser = Parser(prog="./run.sh", description="Run, build and administer the astroportal distribution.",
                    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"launcher {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subs: dict[str, Parser] = {}
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description or cmd.help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        for flags, options in cmd.arguments:
            p.add_argument(*flags, **options)
        if cmd.configure is not None:
            cmd.configure(p)
        subs[cmd.name] = p
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
    cmd = COMMANDS[args.command]
    if extra:
        subs[cmd.name].error(f"unrecognized arguments: {' '.join(extra)}")
    if passthrough and not cmd.passthrough:
        subs[cmd.name].error("arguments after -- are only for `test`")
    args.passthrough = passthrough
    try:
        if cmd.config:
            from . import config as configmod

            args.cfg = configmod.load()
        return cmd.func(args)
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
