"""`./run.sh backup` and `./run.sh restore FILE`: pg_dump -Fc of the portal's database under var/backups/.

Both speak to the database as the portal does (database.url: its role owns every table), with the password
in the environment rather than on a command line. The client binaries are the embedded cluster's own (the
bindir database.py chose, so that pg_dump is never older than the server) or, for an external server,
those on PATH or Debian's newest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import database
from .config import Config
from .errors import LauncherError, info
from .masking import hide_password

SUFFIX = ".dump"
DEFAULT_KEPT = 5


def client_bindir(cfg: Config) -> Path:
    """The directory holding pg_dump and pg_restore for this configuration's database."""
    if database.is_embedded(cfg):
        d = database.Embedded(cfg).bindir
        if (d / "pg_dump").exists():
            return d
    on_path = shutil.which("pg_dump")
    if on_path:
        return Path(on_path).resolve().parent
    system = sorted(database.SYSTEM_ROOT.glob("*/bin/pg_dump"),
                    key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0, reverse=True)
    if system:
        return system[0].parent
    raise LauncherError("pg_dump and pg_restore not found (PATH, /usr/lib/postgresql/*/bin): install the Debian "
                        "package postgresql-client (or postgresql)")


def client_env(url: str) -> dict[str, str]:
    """libpq's environment for database.url: host, port, user, database and password (never on argv)."""
    parts = urlsplit(url)
    env = dict(os.environ)
    env.update({"PGHOST": parts.hostname or "127.0.0.1", "PGPORT": str(parts.port or 5432),
                "PGUSER": unquote(parts.username or ""), "PGDATABASE": unquote(parts.path.lstrip("/")),
                "PGCONNECT_TIMEOUT": "10"})
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    return env


def _url(cfg: Config) -> str:
    database.prepare(cfg)  # the embedded database's generated password
    url = cfg.get("database.url")
    if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
        raise LauncherError(f"database.url: expected a postgresql:// URL, got {url!r}", 2)
    return url


def backups(cfg: Config) -> list[Path]:
    """The backups under var/backups/, oldest first."""
    d = cfg.var.backups
    return sorted(d.glob("*" + SUFFIX)) if d.is_dir() else []


def kept(cfg: Config) -> int:
    return cfg.int_value("launcher.backups_kept", 1, 10_000, DEFAULT_KEPT)


def backup(cfg: Config, label: str = "manual") -> Path:
    """Dump the database (it must be up) into var/backups/<UTC time>-<label>.dump; prune to backups_kept."""
    url = _url(cfg)
    directory = cfg.var.backups
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # the dumps hold every user's tokens
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = directory / f"{stamp}-{label}{SUFFIX}"
    n = 1
    while target.exists():
        n += 1
        target = directory / f"{stamp}-{label}-{n}{SUFFIX}"
    partial = target.with_name(target.name + ".partial")
    info(f"backup: dumping {hide_password(url)} into {target}")
    res = subprocess.run([str(client_bindir(cfg) / "pg_dump"), "-Fc", "--no-owner", "--no-privileges",
                          "-f", str(partial)], env=client_env(url), stdin=subprocess.DEVNULL,
                         capture_output=True, text=True)
    if res.returncode != 0:
        partial.unlink(missing_ok=True)
        raise LauncherError(f"pg_dump failed ({res.returncode}): {res.stderr.strip()}")
    os.chmod(partial, 0o600)
    os.replace(partial, target)  # a dump is either complete or absent
    prune(cfg, keep={target})
    return target


def prune(cfg: Config, keep: set[Path] = frozenset()) -> list[Path]:
    """Remove the oldest backups beyond launcher.backups_kept (never one in `keep`, nor deploy's rollback)."""
    protected = set(keep)
    from .deploy import rollback_backup  # the backup a rollback still needs is never pruned

    needed = rollback_backup(cfg)
    if needed:
        protected.add(needed)
    removed = []
    candidates = [p for p in backups(cfg) if p not in protected]
    excess = len(backups(cfg)) - kept(cfg)
    for p in candidates[:max(excess, 0)]:
        p.unlink()
        removed.append(p)
    if removed:
        info(f"backup: removed {len(removed)} old backup(s) (launcher.backups_kept: {kept(cfg)})")
    return removed


def _empty_schema(cfg: Config, url: str) -> None:
    """Drop everything in the public schema, so that a restore also removes what the dump does not hold (a table
    made by a migration after the dump)."""
    if database.is_embedded(cfg):
        db = database.Embedded(cfg)
        conn = db.connect_admin(db.name)
    else:
        conn = database.External(cfg).connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("DROP SCHEMA IF EXISTS public CASCADE")
            cur.execute("CREATE SCHEMA public")
            if database.is_embedded(cfg):
                cur.execute(f'ALTER SCHEMA public OWNER TO "{database.Embedded(cfg).user}"')
    finally:
        conn.close()


def restore_file(cfg: Config, path: Path) -> None:
    """Replace the database's content with the dump at `path` (the database must be up)."""
    url = _url(cfg)
    check_dump(cfg, path)
    info(f"restore: replacing the content of {hide_password(url)} with {path}")
    _empty_schema(cfg, url)
    env = client_env(url)
    res = subprocess.run([str(client_bindir(cfg) / "pg_restore"), "--clean", "--if-exists", "--no-owner",
                          "--no-privileges", "--single-transaction", "--exit-on-error", "-d", env["PGDATABASE"],
                          str(path)], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if res.returncode != 0:
        raise LauncherError(f"pg_restore of {path} failed ({res.returncode}): {res.stderr.strip()}")


def check_dump(cfg: Config, path: Path) -> None:
    """Refuse what is not a readable pg_dump -Fc archive before anything is dropped."""
    if not path.is_file():
        raise LauncherError(f"restore: no file {path} (backups are in {cfg.var.backups}: ./run.sh backup --list)", 2)
    res = subprocess.run([str(client_bindir(cfg) / "pg_restore"), "--list", str(path)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise LauncherError(f"restore: {path} is not a pg_dump archive pg_restore can read: {res.stderr.strip()}", 2)


def confirm(what: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise LauncherError(f"{what}; there is no terminal to confirm on: add --yes to go ahead", 2)
    if input(f"{what}. Type 'yes' to go ahead: ").strip().lower() != "yes":
        raise LauncherError("not confirmed: nothing was changed", 1)


def run_backup(cfg: Config, list_only: bool = False) -> int:
    """`./run.sh backup`: dump now (the database started for the while if needed) and print the file."""
    if list_only:
        for p in backups(cfg):
            print(f"{p}  {p.stat().st_size} bytes")
        return 0
    from . import lifecycle

    with lifecycle.database_up(cfg):
        print(backup(cfg))
    return 0


def run_restore(cfg: Config, file: str, yes: bool) -> int:
    """`./run.sh restore FILE`: the portal's processes stopped around the restore and started again after it."""
    from . import lifecycle, portal
    from .supervisor import Supervisor

    path = Path(file)
    if not path.is_absolute() and not path.exists() and (cfg.var.backups / file).exists():
        path = cfg.var.backups / file
    path = path.absolute()
    with lifecycle.lifecycle_lock(cfg), lifecycle.database_up(cfg):
        check_dump(cfg, path)
        confirm(f"restore replaces everything in the portal's database with {path}", yes)
        sup = Supervisor(cfg)
        running = sup.running()
        if running:
            info("restore: stopping the portal and the services for the while")
            sup.rpc().supervisor.stopAllProcesses(True)
        try:
            restore_file(cfg, path)
            if cfg.project.patched_config.exists():
                from .migrations import migrate

                migrate(cfg)  # an older dump is brought up to the build that runs
        finally:
            if running:
                info("restore: starting the portal and the services again")
                sup.rpc().supervisor.startAllProcesses(True)
        if running:
            portal.wait_healthy(cfg, float(cfg.get("launcher.start_timeout") or 60))
        info(f"restore: the database holds the content of {path}")
    return 0
