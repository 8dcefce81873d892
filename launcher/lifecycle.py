"""run, stop, status, restart, log: the portal and its services under supervisord, with the database."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from . import admin, database, first_start, portal, service_tokens
from .build import build
from .config import Config
from .errors import LauncherError, info
from .migrations import migrate
from .supervisor import Supervisor, assemble, enabled_services, local_url, service_dirs

APP = "app"


def check_app_port(cfg: Config) -> None:
    host = str(cfg.get("server.host") or "127.0.0.1")
    port = cfg.int_value("server.port", 1, 65535, 5000)
    if not database.port_free(host, port):
        raise LauncherError(
            f"port {port} on {host} is already in use (server.port, set by {cfg.origin('server.port')}): stop what "
            f"uses it, or choose another port in config.yaml or with PORTAL__SERVER__PORT={port + 1}"
        )


def is_loopback(host: str) -> bool:
    """True when `host` (an address or a name) only ever means this machine."""
    text = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        pass
    if not text:
        return False  # every address
    try:
        addresses = {info[4][0].split("%")[0] for info in socket.getaddrinfo(text, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def check_exposure(cfg: Config) -> None:
    """Refuse to serve the debug login (anyone may log in as anyone, admin included) beyond this machine, and
    production mode with what it forbids (production.py)."""
    from . import production

    production.check(cfg)
    host = str(cfg.get("server.host") or "")
    debug_login = bool(cfg.get("server.auth.debug_login"))
    production = bool(cfg.get("server.production"))
    if is_loopback(host) or not debug_login or production:
        return
    raise LauncherError(
        f"refusing to start: server.host is {host or '(every address)'!r} (set by {cfg.origin('server.host')}), "
        f"not a loopback address, while the debug login is on (server.auth.debug_login: true, set by "
        f"{cfg.origin('server.auth.debug_login')}) and server.production is false: anyone who reaches the port "
        "could log in as any user, the admin included. Either keep server.host: 127.0.0.1 (with a reverse proxy "
        "in front), or deploy for real: server.production: true in config.yaml with server.auth.debug_login: "
        "false, a cookie secret and a login provider configured (README.md, \"Deploying\"); or set "
        "server.auth.debug_login: false", 2)


def confirm_clear(cfg: Config, db, yes: bool) -> None:
    what = f"--clear drops the portal's database ({db.status()}) and everything in it"
    if yes:
        return
    if not sys.stdin.isatty():
        raise LauncherError(f"{what}; there is no terminal to confirm on: add --yes to go ahead", 2)
    answer = input(f"{what}. Type 'yes' to go ahead: ")
    if answer.strip().lower() != "yes":
        raise LauncherError("not confirmed: nothing was changed", 1)


_held_locks: set[Path] = set()


@contextlib.contextmanager
def lifecycle_lock(cfg: Config) -> Iterator[None]:
    """One run, stop or restart (or a command starting the database for a while) at a time for a var/.

    An flock on var/run/lifecycle.lock: a second ./run.sh run waits for the first, then finds the portal
    running and says so, instead of both starting (and one stopping the database the other started). The
    lock goes with the process (no stale lock after a crash); re-entered freely within one process.
    """
    path = cfg.var.lifecycle_lock
    if path in _held_locks:
        yield
        return
    database.ensure_var(cfg.var_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:  # Python's files are not inherited: supervisord and PostgreSQL do not keep it
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info(f"waiting for another ./run.sh run/stop/restart of {cfg.var_dir} to finish ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        _held_locks.add(path)
        try:
            yield
        finally:
            _held_locks.discard(path)


@contextlib.contextmanager
def database_up(cfg: Config) -> Iterator[object]:
    """The database, started for the duration when the launcher had to start it."""
    with lifecycle_lock(cfg):
        db = database.for_config(cfg)
        started = db.ensure()
        try:
            yield db
        finally:
            if started and not Supervisor(cfg).running():
                db.stop()


def _app_gave_up(sup: Supervisor) -> None:
    for p in sup.processes():
        if p["group"] == APP and p["statename"] in ("FATAL", "EXITED"):
            raise LauncherError(
                f"the app process {p['name']} {p['statename'].lower()}: {p.get('spawnerr') or ''}".strip())


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _wait_for_app(cfg: Config, sup: Supervisor, services: list[str]) -> None:
    if APP not in services:
        info("the app service is disabled (services.disabled): not waiting for it")
        return
    timeout = float(cfg.get("launcher.start_timeout") or 60)
    try:
        portal.wait_healthy(cfg, timeout, lambda: _app_gave_up(sup))
    except LauncherError as exc:
        log = cfg.var.log / f"{APP}_0.log"
        raise LauncherError(f"{exc}\nend of {log}:\n{_log_tail(log)}") from None


def run(cfg: Config, init: bool = False, clear: bool = False, yes: bool = False) -> int:
    """Build, database, migrations, supervisord; return once the portal answers."""
    with lifecycle_lock(cfg):
        return _run(cfg, init, clear, yes)


def _run(cfg: Config, init: bool, clear: bool, yes: bool) -> int:
    sup = Supervisor(cfg)
    if sup.running():
        if init or clear:
            raise LauncherError("the portal is already running: ./run.sh stop first to use --init or --clear")
        info("already running (./run.sh restart applies changes)")
        print(local_url(cfg) if not cfg.get("server.url") else cfg.get("server.url"))
        return 0
    check_exposure(cfg)
    if cfg.get("services.portal_url"):
        return _run_services_only(cfg, sup)
    db = database.for_config(cfg)
    if clear:
        confirm_clear(cfg, db, yes)
    check_app_port(cfg)
    build(cfg)
    data: list[Path] = []
    if init:  # bad data/ files stop `run --init` before anything starts (the one validation of the files)
        data = admin.data_files(cfg)
        if data:
            data = admin.validate_data(cfg, data)
        else:
            info(f"load_data: {cfg.project.data} holds no *.yaml file: nothing to load")
    started_db = db.ensure()
    started_sup = False
    try:
        if clear:
            db.clear()
        migrate(cfg)
        # A new database gets what --init gives (README.md, "On a fresh machine"): see first_start.py. The
        # bootstrap also provisions the roles and the initial admin, which the services' tokens need first.
        first = first_start.bootstrap(cfg)
        if first and not init:  # bad data/ files stop a first start before supervisord starts
            data = first_start.check_data(cfg)
        service_tokens.ensure_tokens(cfg)
        sup.start()
        started_sup = True
        _wait_for_app(cfg, sup, list(enabled_services(cfg)))
        if data:
            admin.load_data(cfg, [str(f) for f in data], validated=True)
        if first or init:
            first_start.finished(cfg)
    except BaseException:
        if started_sup:
            sup.shutdown()
        if started_db:
            db.stop()
        raise
    url = str(cfg.get("server.url") or local_url(cfg))
    info(f"the portal is up at {url} (./run.sh status, ./run.sh log, ./run.sh stop)")
    print(url)
    return 0


def _run_services_only(cfg: Config, sup: Supervisor) -> int:
    """A host of the multi-host layout that runs services only: they reach the portal at services.portal_url
    with the token files copied into var/tokens/; no app, no database, no migration here."""
    if APP in enabled_services(cfg) and (cfg.project.patched / "services" / APP).exists():
        raise LauncherError("services.portal_url is set, so this host runs services only: add app to "
                            "services.disabled (the portal runs elsewhere)", 2)
    build(cfg)
    sup.start()
    info(f"services-only host: {', '.join(enabled_services(cfg)) or 'no service'} running, talking to "
         f"{local_url(cfg)} (./run.sh status, ./run.sh stop)")
    print(local_url(cfg))
    return 0


def stop(cfg: Config) -> int:
    if not cfg.var_dir.exists():
        raise LauncherError(f"nothing is running here ({cfg.var_dir} does not exist yet)")
    with lifecycle_lock(cfg):
        return _stop(cfg)


def _stop(cfg: Config) -> int:
    sup = Supervisor(cfg)
    stopped_sup = sup.shutdown()
    db = database.for_config(cfg)
    stopped_db = db.stop()
    if not (stopped_sup or stopped_db):
        raise LauncherError(f"nothing is running here (no supervisord for {cfg.var_dir}, no embedded database)")
    external = isinstance(db, database.External)
    info("stopped" + (" (the external database is not the launcher's to stop)" if external else ""))
    return 0


def status(cfg: Config) -> int:
    sup = Supervisor(cfg)
    db = database.for_config(cfg)
    up = sup.running()
    if up:
        print(f"supervisord: running (pid {sup.pid()}, {sup.files.supervisor_conf})")
        now = time.time()
        for p in sup.processes():
            since = f"up {int(now - p['start'])} s" if p["statename"] == "RUNNING" else p.get("spawnerr") or ""
            print(f"  {p['group']}:{p['name']:<16} {p['statename']:<9} pid {p['pid'] or '-':<7} {since}")
    else:
        print("supervisord: not running")
    print("database: " + db.status())
    answering = portal.answers(cfg)
    print(f"portal: {local_url(cfg)} " + ("answers" if answering else "does not answer"))
    return 0 if up and answering else 3


def restart(cfg: Config, service: str | None) -> int:
    with lifecycle_lock(cfg):
        return _restart(cfg, service)


def _restart(cfg: Config, service: str | None) -> int:
    sup = Supervisor(cfg)
    if not sup.running():
        raise LauncherError("nothing to restart: the portal is not running (./run.sh run starts it)")
    if service:
        groups = sup.group_names()
        if service not in groups:
            raise LauncherError(f"restart: no running service {service!r} (services: {', '.join(groups)})", 2)
        info(f"restart: {service}")
        sup.restart(service)
        if service == APP:
            _wait_for_app(cfg, sup, [APP])
        return 0
    check_exposure(cfg)
    build(cfg)
    with database_up(cfg):
        migrate(cfg)
        service_tokens.ensure_tokens(cfg)  # ACLs changed in a service.yaml, a newly enabled service
    assemble(cfg)
    fresh = sup.reload()
    info("restart: every service")
    sup.restart(skip=fresh)
    _wait_for_app(cfg, sup, list(enabled_services(cfg)))
    print(str(cfg.get("server.url") or local_url(cfg)))
    return 0


def log_names(cfg: Config) -> list[str]:
    return sorted(set(service_dirs(cfg.project.patched)) | {"supervisord", "postgresql", "deploy"})


def log_files(cfg: Config, service: str | None) -> list[Path]:
    log_dir = cfg.var.log
    if not log_dir.is_dir():
        return []
    files = sorted(p for p in log_dir.iterdir() if p.is_file() and p.suffix == ".log" and ".start" not in p.name)
    if service is None:
        return files
    return [p for p in files if p.stem == service or p.stem.startswith(service + "_")
            or p.name.startswith(service + "-std")]


def log(cfg: Config, service: str | None, follow: bool, lines: int) -> int:
    if service is not None and service not in log_names(cfg):
        raise LauncherError(f"log: no service {service!r} (logs: {', '.join(log_names(cfg))})", 2)
    files = log_files(cfg, service)
    if not files:
        raise LauncherError(f"no log yet{' for ' + service if service else ''} in {cfg.var.log}")
    if follow:
        sys.stdout.flush()
        os.execvp("tail", ["tail", "-n", str(lines), "-F", *map(str, files)])
    for i, f in enumerate(files):
        if len(files) > 1:
            print(("\n" if i else "") + f"==> {f} <==")
        text = _log_tail(f, lines)
        if text:
            print(text)
    return 0
