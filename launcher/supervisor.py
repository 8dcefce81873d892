"""supervisord: one configuration assembled from every service's program file, and its control.

Each service folder of the build (patched/services/NAME/: upstream's and the distribution's) holds
`supervisor.conf` with one `[program:NAME]` section. Placeholders in it are replaced when the
configuration is assembled (see services/README.md):
  {python} {root} {patched} {config} {var} {log_dir} {run_dir} {service_dir} {name}
  {host} {port} {processes} {url}    and {cfg:DOTTED.KEY} for any configuration value;
  {token_file}  the service's own API token file (see service_tokens.py), only for services declaring ACLs.
`services.disabled: [NAME, ...]` leaves services out. The result is var/run/supervisord.conf.
"""

from __future__ import annotations

import configparser
import os
import re
import signal
import subprocess
import time
import xmlrpc.client
from pathlib import Path

from .config import Config, format_value
from .errors import LauncherError, info, warn

PROGRAM_FILE = "supervisor.conf"
PLACEHOLDER = re.compile(r"\{(cfg:[A-Za-z0-9_.\-]+|[a-z_]+)\}")


def service_dirs(patched: Path) -> dict[str, Path]:
    """Every service of the build (a folder under patched/services/ with a program file)."""
    root = patched / "services"
    if not root.is_dir():
        return {}
    return {d.name: d for d in sorted(root.iterdir()) if d.is_dir() and (d / PROGRAM_FILE).is_file()}


def enabled_services(cfg: Config) -> dict[str, Path]:
    services = service_dirs(cfg.project.patched)
    disabled = cfg.get("services.disabled") or []
    if not isinstance(disabled, list) or not all(isinstance(n, str) for n in disabled):
        raise LauncherError(f"services.disabled: expected a list of service names, got {disabled!r} "
                            f"(set by {cfg.origin('services.disabled')})", 2)
    for name in disabled:
        if name not in services:
            warn(f"services.disabled names {name!r}, which is not a service (services: {', '.join(services)})")
    return {n: d for n, d in services.items() if n not in disabled}


def placeholders(cfg: Config, name: str, service_dir: Path) -> dict[str, str]:
    project, files = cfg.project, cfg.var
    host = str(cfg.get("server.host") or "127.0.0.1")
    port = cfg.int_value("server.port", 1, 65535, 5000)
    return {
        "python": str(project.python),
        "root": str(project.root),
        "patched": str(project.patched),
        "config": str(project.patched_config),
        "var": str(cfg.var_dir),
        "log_dir": str(files.log),
        "run_dir": str(files.run),
        "service_dir": str(service_dir),
        "name": name,
        "host": host,
        "port": str(port),
        "processes": str(cfg.int_value("server.processes", 1, 256, 1)),
        "url": local_url(cfg),
        "token_file": str(cfg.var_dir / "tokens" / f"{name}.token"),
    }


def local_url(cfg: Config) -> str:
    """Where the launcher and the services reach the app (loopback when it listens on every address; on a
    services-only host, services.portal_url)."""
    remote = cfg.get("services.portal_url")
    if remote:
        return str(remote).rstrip("/")
    host = str(cfg.get("server.host") or "127.0.0.1")
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{cfg.get('server.port')}"


def _lazy_placeholders() -> dict:
    """Placeholders whose value may not exist for every service: computed only where a program uses them."""
    from . import service_tokens

    return {"token_file": service_tokens.placeholder}


def render_program(cfg: Config, name: str, service_dir: Path) -> str:
    """One service's program file with its placeholders filled; errors name the file and line."""
    path = service_dir / PROGRAM_FILE
    values = placeholders(cfg, name, service_dir)
    lazy = _lazy_placeholders()
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith((";", "#")):
            out.append(line)
            continue

        def fill(m: re.Match) -> str:
            key = m.group(1)
            if key.startswith("cfg:"):
                dotted = key[4:]
                if not cfg.has(dotted):
                    raise LauncherError(f"{path}:{lineno}: {{{key}}} names no configuration key", 2)
                value = cfg.get(dotted)
                return value if isinstance(value, str) else format_value(value)
            if key in lazy:
                return lazy[key](cfg, name, service_dir, f"{path}:{lineno}")
            if key not in values:
                raise LauncherError(f"{path}:{lineno}: unknown placeholder {{{key}}} "
                                    f"(known: {', '.join('{' + k + '}' for k in [*values, *lazy])}, {{cfg:KEY}})", 2)
            return values[key]

        out.append(PLACEHOLDER.sub(fill, line))
    text = "\n".join(out) + "\n"
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise LauncherError(f"{path}: not a valid supervisor program file: {exc}", 2) from None
    sections = parser.sections()
    if sections != [f"program:{name}"]:
        raise LauncherError(f"{path}: expected exactly one section [program:{name}] (the folder's name), "
                            f"found {', '.join('[' + s + ']' for s in sections) or 'none'}", 2)
    return text


def assemble(cfg: Config) -> tuple[Path, list[str]]:
    """Write var/run/supervisord.conf; return it and the names of the services it runs."""
    files = cfg.var
    for d in (files.run, files.log):
        d.mkdir(parents=True, exist_ok=True)
    services = enabled_services(cfg)
    head = f"""\
; Assembled by ./run.sh from every service's {PROGRAM_FILE}; rewritten on each start.
[unix_http_server]
file={files.supervisor_socket}
chmod=0700

[supervisord]
logfile={files.supervisor_log}
logfile_maxbytes=10MB
logfile_backups=3
pidfile={files.supervisor_pid}
childlogdir={files.log}
directory={cfg.project.patched}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{files.supervisor_socket}
"""
    body = [render_program(cfg, name, d) for name, d in services.items()]
    files.supervisor_conf.write_text(head + "\n" + "\n".join(body))
    return files.supervisor_conf, list(services)


# --- control -------------------------------------------------------------------------------------------

class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, socket_path: str) -> None:
        super().__init__()
        self.socket_path = socket_path

    def make_connection(self, host):
        import http.client
        import socket

        path = self.socket_path

        class Conn(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(30)
                self.sock.connect(path)

        return Conn("localhost")


class Supervisor:
    """The supervisord of one var/ directory."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.files = cfg.var
        self.bin = cfg.project.venv_bin

    def rpc(self):
        transport = _UnixTransport(str(self.files.supervisor_socket))
        return xmlrpc.client.ServerProxy("http://localhost", transport=transport)

    def pid(self) -> int | None:
        try:
            pid = int(self.files.supervisor_pid.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None

    def running(self) -> bool:
        if not self.files.supervisor_socket.exists():
            return False
        try:
            return self.rpc().supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def start(self) -> None:
        conf, names = assemble(self.cfg)
        if self.pid():
            raise LauncherError(
                f"supervisord already runs (pid {self.pid()}, {self.files.supervisor_pid}): ./run.sh stop first")
        self.files.supervisor_socket.unlink(missing_ok=True)
        info(f"supervisor: starting {', '.join(names) or 'no service'} (logs in {self.files.log})")
        # supervisord daemonizes; its early errors go to a file rather than a pipe it might hold open.
        with open(self.files.supervisor_start_log, "w") as err:
            res = subprocess.run([str(self.bin / "supervisord"), "-c", str(conf)], stdin=subprocess.DEVNULL,
                                 stdout=err, stderr=subprocess.STDOUT)
        if res.returncode != 0:
            raise LauncherError("supervisord did not start: "
                                + self.files.supervisor_start_log.read_text().strip())
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.running():
                return
            time.sleep(0.1)
        raise LauncherError(
            f"supervisord did not answer on {self.files.supervisor_socket}; see {self.files.supervisor_log}")

    def processes(self) -> list[dict]:
        return self.rpc().supervisor.getAllProcessInfo()

    def group_names(self) -> list[str]:
        return sorted({p["group"] for p in self.processes()})

    def restart(self, group: str | None = None, skip: list[str] = ()) -> None:
        """Restart one service's processes (all but `skip` when `group` is None)."""
        rpc = self.rpc()
        groups = [group] if group else [g for g in self.group_names() if g not in skip]
        for g in groups:
            try:
                rpc.supervisor.stopProcessGroup(g, True)
            except xmlrpc.client.Fault as exc:
                if "NOT_RUNNING" not in exc.faultString:
                    raise
            rpc.supervisor.startProcessGroup(g, False)

    def reload(self) -> list[str]:
        """Apply a reassembled configuration: remove, add and (re)start changed groups; return those started."""
        rpc = self.rpc()
        added, changed, removed = rpc.supervisor.reloadConfig()[0]
        for g in removed + changed:
            rpc.supervisor.stopProcessGroup(g, True)
            rpc.supervisor.removeProcessGroup(g)
        for g in changed + added:
            rpc.supervisor.addProcessGroup(g)
        return changed + added

    def shutdown(self, timeout: float = 60) -> bool:
        """Stop every program and supervisord; True if it was running."""
        pid = self.pid()
        if not self.running():
            if pid:
                # Not answering but alive: end it the hard way rather than leave it behind.
                os.kill(pid, signal.SIGTERM)
                self._wait_gone(pid, timeout)
                return True
            return False
        info("supervisor: stopping every service")
        try:
            self.rpc().supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            pass
        if pid:
            self._wait_gone(pid, timeout)
        return True

    def _wait_gone(self, pid: int, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise LauncherError(f"supervisord (pid {pid}) did not stop within {timeout:.0f} s")
