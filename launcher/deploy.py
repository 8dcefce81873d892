"""`./run.sh deploy` and `./run.sh rollback`: update a running installation, and undo it.

deploy, in this order, stopping at the first failure:
  1. check the configuration (production rules) and build the new tree into patched.staging/ (patched/ is
     not touched); check it: the portal's command line loads, and `migrate --json --dry-run` reads the
     database's revisions with the new scripts (a revision the new build does not know stops here);
  2. back up the database (var/backups/..-deploy.dump);
  3. migrate with the new build (upstream's chain and the distribution's branch: `upgrade heads`, never a
     stamp); on failure: when the database's revisions moved, restore the backup; say what failed;
  4. swap patched.staging/ and patched/ (the old build becomes patched.rollback/);
  5. restart the app one process at a time (the others keep the port answering) and the services;
  6. wait for health (GET /api/sysinfo answering many times in a row, every app process RUNNING); on failure:
     put the old build back, restore the backup, restart, say what failed and where its log is.
Each phase is recorded in var/deploy.json before it starts: a deploy killed half-way is finished by the
next `deploy` (which keeps the first one's backup and replaced build for rollback).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import xmlrpc.client
from pathlib import Path

from . import backup as backups
from . import database, portal, production
from .build import build
from .config import Config
from .errors import LauncherError, info
from .overlay import _exchange
from .supervisor import Supervisor, assemble, local_url

APP = "app"
HEALTHY_IN_A_ROW = 10  # fresh connections spread over the app processes sharing the port (SO_REUSEPORT)


# --- state ---------------------------------------------------------------------------------------------

def read_state(cfg: Config) -> dict | None:
    try:
        return json.loads(cfg.var.deploy_state.read_text())
    except (FileNotFoundError, ValueError):
        return None


def write_state(cfg: Config, state: dict) -> None:
    path = cfg.var.deploy_state
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, path)
    _log(cfg, f"phase: {state['phase']}")
    # For the tests of a deploy killed half-way (as PORTAL_BUILD_FAIL_AFTER is for builds).
    if os.environ.get("PORTAL_DEPLOY_KILL_AT") == state["phase"]:
        os.kill(os.getpid(), signal.SIGKILL)


def rollback_backup(cfg: Config) -> Path | None:
    """The backup `rollback` would restore (kept by backup pruning), or None."""
    state = read_state(cfg)
    if state and state.get("phase") in ("migrating", "swapped", "done") and state.get("backup"):
        return Path(state["backup"])
    return None


def _log(cfg: Config, text: str) -> None:
    cfg.var.log.mkdir(parents=True, exist_ok=True)
    with open(cfg.var.deploy_log, "a") as fh:
        fh.write(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) + text.rstrip() + "\n")


def _say(cfg: Config, text: str) -> None:
    info(text)
    _log(cfg, text)


def build_id(tree: Path) -> str:
    """Which build a tree is: upstream's version and a digest of every file's origin and hash."""
    import hashlib

    import yaml

    try:
        version = (yaml.safe_load((tree / "UPSTREAM.yaml").read_text()) or {}).get("version", "?")
    except (OSError, yaml.YAMLError, AttributeError):
        version = "?"
    try:
        digest = hashlib.sha256((tree / ".build-targets.json").read_bytes()).hexdigest()[:12]
    except OSError:
        digest = "?"
    return f"upstream {version}, build {digest}"


# --- the new build -------------------------------------------------------------------------------------

def _portal_in(cfg: Config, tree: Path, *args: str, what: str):
    """A portal command of the build in `tree` with its own configuration file; output into the deploy log."""
    import subprocess

    cmd = [str(cfg.project.python), "-m", "astroportal", *args, "--config", str(tree / "config.yaml")]
    res = subprocess.run(cmd, cwd=tree, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    _log(cfg, f"$ {' '.join(cmd)}  (exit {res.returncode})\n{res.stdout}{res.stderr}")
    if res.returncode != 0:
        detail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-8:])
        raise LauncherError(f"{what} failed (exit {res.returncode}):\n{detail}\n(full output in {cfg.var.deploy_log})")
    return res


def check_build(cfg: Config, tree: Path) -> dict:
    """The new build loads, and its migration scripts know the database's revisions; return the dry-run state."""
    _portal_in(cfg, tree, "--help", what="checking the new build (python -m astroportal --help)")
    res = _portal_in(cfg, tree, "migrate", "--json", "--dry-run",
                     what="checking the new build's migrations against the database (migrate --json --dry-run)")
    try:
        return json.loads(res.stdout)
    except ValueError:
        raise LauncherError("the new build's `migrate --json --dry-run` answered no JSON: "
                            f"{res.stdout[:300]!r}") from None


# --- restarting ----------------------------------------------------------------------------------------

def rolling_restart(cfg: Config, sup: Supervisor) -> None:
    """Apply the assembled configuration and restart every program; the app one process at a time."""
    assemble(cfg)
    fresh = sup.reload()  # groups whose program changed are restarted whole by the reload
    rpc = sup.rpc()
    processes = sup.processes()
    app = sorted(p["name"] for p in processes if p["group"] == APP)
    if APP in fresh:
        info("deploy: the app's supervisor program changed: all its processes restarted at once")
    elif len(app) == 1:
        info("deploy: server.processes is 1, so the port does not answer for the few seconds of the restart "
             "(with 2 or more, one process at a time restarts while the others answer)")
    if APP not in fresh:
        for name in app:
            _restart_process(cfg, rpc, name)
    for group in sorted({p["group"] for p in processes} - {APP} - set(fresh)):
        try:
            rpc.supervisor.stopProcessGroup(group, True)
        except xmlrpc.client.Fault as exc:
            if "NOT_RUNNING" not in exc.faultString:
                raise
        rpc.supervisor.startProcessGroup(group, False)


def _restart_process(cfg: Config, rpc, name: str) -> None:
    full = f"{APP}:{name}"
    try:
        rpc.supervisor.stopProcess(full, True)
    except xmlrpc.client.Fault as exc:
        if "NOT_RUNNING" not in exc.faultString:
            raise
    try:
        rpc.supervisor.startProcess(full, True)
    except xmlrpc.client.Fault as exc:
        raise LauncherError(f"the app process {name} did not start ({exc.faultString}); its log: "
                            f"{cfg.var.log / (name + '.log')}") from None
    # The next process stops only once this one listens on the port: the port keeps answering throughout.
    # (GET /api/sysinfo alone cannot tell: the processes not restarted yet answer it too.)
    port = cfg.int_value("server.port", 1, 65535, 5000)
    deadline = time.time() + float(cfg.get("launcher.start_timeout") or 60)
    while True:
        state = rpc.supervisor.getProcessInfo(full)
        if state["statename"] == "RUNNING" and listens(state["pid"], port) and portal.answers(cfg):
            return
        if state["statename"] not in ("RUNNING", "STARTING") or time.time() > deadline:
            raise LauncherError(f"the app process {name} did not serve ({state['statename']}); its log: "
                                f"{cfg.var.log / (name + '.log')}")
        time.sleep(0.2)


def listens(pid: int, port: int) -> bool:
    """True when process `pid` holds a socket listening on TCP `port` (Linux /proc)."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                return True
    return False


def wait_healthy(cfg: Config, sup: Supervisor) -> None:
    """GET /api/sysinfo answers HEALTHY_IN_A_ROW times in a row and every app process runs, within the timeout."""
    timeout = float(cfg.get("launcher.start_timeout") or 60)
    deadline = time.time() + timeout
    in_a_row = 0
    while time.time() < deadline:
        down = [p["name"] for p in sup.processes() if p["group"] == APP and p["statename"] != "RUNNING"]
        if down:
            in_a_row = 0
        elif portal.answers(cfg):
            in_a_row += 1
            if in_a_row >= HEALTHY_IN_A_ROW:
                return
            continue
        else:
            in_a_row = 0
        time.sleep(0.2)
    logs = ", ".join(str(p) for p in sorted(cfg.var.log.glob(f"{APP}_*.log")))
    raise LauncherError(f"the portal did not become healthy on {local_url(cfg)}/api/sysinfo within {timeout:.0f} s "
                        f"(app logs: {logs})")


# --- deploy --------------------------------------------------------------------------------------------

def deploy(cfg: Config) -> int:
    from . import lifecycle

    with lifecycle.lifecycle_lock(cfg):
        return _deploy(cfg)


def _deploy(cfg: Config) -> int:
    from . import lifecycle

    project = cfg.project
    previous = read_state(cfg)
    resume = previous if previous and previous.get("phase") in ("checking", "migrating", "swapped") else None
    lifecycle.check_exposure(cfg)
    production.check(cfg)
    sup = Supervisor(cfg)
    if not sup.running():
        raise LauncherError("deploy updates a running portal, and none runs here: ./run.sh run starts it (it builds "
                            "and migrates too)")
    _log(cfg, "=" * 20 + " deploy")
    if resume:
        _say(cfg, f"deploy: finishing the deploy of {resume['started']} that stopped at '{resume['phase']}'")
    staging = project.patched_staging
    if staging.exists():
        shutil.rmtree(staging)
    # 1. the new build and its checks: nothing running is touched yet.
    try:
        build(cfg, stage=staging)
        planned = check_build(cfg, staging)
    except LauncherError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise LauncherError(f"deploy stopped before changing anything: {exc}") from None
    _say(cfg, "deploy: the new build loads; migrations to apply: " + (", ".join(planned["pending"]) or "none"))
    database.for_config(cfg).ensure()
    # 2. the backup (a resumed deploy keeps the first one: it holds the database from before either).
    if resume and resume.get("backup") and Path(resume["backup"]).exists():
        dump = Path(resume["backup"])
        before = resume["before"]
    else:
        dump = backups.backup(cfg, "deploy")
        before = planned["current"]
    state = {"started": resume["started"] if resume else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "phase": "migrating", "backup": str(dump), "before": before,
             "pending": planned["pending"], "new_build": build_id(staging),
             "previous_build": resume["previous_build"] if resume and "previous_build" in resume
             else build_id(project.patched),
             "kept_tree": bool(resume and resume.get("phase") == "swapped" and project.patched_rollback.is_dir())}
    write_state(cfg, state)
    # 3. migrations, with the new build's scripts.
    try:
        result = _portal_in(cfg, staging, "migrate", "--json", what="migrating the database with the new build")
        applied = json.loads(result.stdout).get("upgraded", [])
    except LauncherError as exc:
        _undo_database(cfg, state, staging)
        shutil.rmtree(staging, ignore_errors=True)
        state["phase"] = "failed"
        state["error"] = str(exc)
        write_state(cfg, state)
        raise LauncherError(f"deploy failed while migrating: {exc}\nthe running portal and its build are unchanged "
                            f"(backup: {dump}; deploy log: {cfg.var.deploy_log})") from None
    _say(cfg, "deploy: applied " + (", ".join(applied) or "no migration"))
    # 4. the swap: patched/ <-> patched.staging/, then the old build is kept as patched.rollback/.
    _swap_in(cfg, state)
    state["phase"] = "swapped"
    write_state(cfg, state)
    # 5 and 6: restart, health.
    try:
        rolling_restart(cfg, sup)
        wait_healthy(cfg, sup)
    except LauncherError as exc:
        _say(cfg, f"deploy: the new build failed: {exc}")
        _revert(cfg, sup, state)
        state["phase"] = "failed"
        state["error"] = str(exc)
        write_state(cfg, state)
        raise LauncherError(f"deploy failed: {exc}\nthe previous build runs again on the database restored from "
                            f"{dump}; the failed build is kept in {project.patched_staging} (deploy log: "
                            f"{cfg.var.deploy_log})") from None
    state["phase"] = "done"
    write_state(cfg, state)
    _say(cfg, f"deploy: done; the portal answers on {local_url(cfg)} (./run.sh rollback returns to the previous "
              f"build and the backup {dump})")
    print(str(cfg.get("server.url") or local_url(cfg)))
    return 0


def _swap_in(cfg: Config, state: dict) -> None:
    project = cfg.project
    patched, staging, keep = project.patched, project.patched_staging, project.patched_rollback
    if state["kept_tree"]:
        # A resumed deploy: patched/ holds the interrupted deploy's new build, patched.rollback/ the original.
        _exchange_or_rename(staging, patched)
        shutil.rmtree(staging)
        return
    if keep.exists():
        shutil.rmtree(keep)
    _exchange_or_rename(staging, patched)
    os.rename(staging, keep)
    state["kept_tree"] = True


def _exchange_or_rename(a: Path, b: Path) -> None:
    """Swap two trees: one atomic exchange where Linux offers it, else two renames."""
    if _exchange(a, b):
        return
    tmp = b.with_name(b.name + ".swap")
    os.rename(b, tmp)
    os.rename(a, b)
    os.rename(tmp, a)


def _undo_database(cfg: Config, state: dict, tree: Path) -> None:
    """Bring the database back to the backup, unless it never moved from where the deploy found it.

    A failed migration's transaction is rolled back by PostgreSQL; restoring then would only lose what the
    portal wrote since the backup (it keeps serving during a deploy).
    """
    try:
        res = _portal_in(cfg, tree, "migrate", "--json", "--dry-run", what="reading the revisions")
        now = json.loads(res.stdout)["current"]
    except (LauncherError, ValueError, KeyError):
        now = None
    if now is not None and sorted(now) == sorted(state["before"]):
        _say(cfg, f"deploy: the database is still at {', '.join(now)}: the failed migration changed nothing "
                  f"(backup kept: {state['backup']})")
        return
    _say(cfg, f"deploy: restoring the database from {state['backup']}")
    backups.restore_file(cfg, Path(state["backup"]))


def _revert(cfg: Config, sup: Supervisor, state: dict) -> None:
    """Put the previous build back, its database with it, and restart it."""
    project = cfg.project
    _exchange_or_rename(project.patched_rollback, project.patched)  # patched/: the old build again
    if project.patched_staging.exists():
        shutil.rmtree(project.patched_staging)
    os.rename(project.patched_rollback, project.patched_staging)  # the failed build, for a look
    state["kept_tree"] = False
    if state.get("pending"):
        _undo_database(cfg, state, project.patched)
    rolling_restart(cfg, sup)
    wait_healthy(cfg, sup)


# --- rollback ------------------------------------------------------------------------------------------

def rollback(cfg: Config, yes: bool) -> int:
    from . import lifecycle

    with lifecycle.lifecycle_lock(cfg):
        state = read_state(cfg)
        project = cfg.project
        if not state or state.get("phase") not in ("done", "swapped") or not project.patched_rollback.is_dir():
            phase = state.get("phase") if state else None
            raise LauncherError("nothing to roll back: " + (
                f"the last deploy ({state['started']}) ended '{phase}'" if state else "no deploy was made here"))
        dump = Path(state["backup"])
        if not dump.exists():
            raise LauncherError(f"rollback: the deploy's backup {dump} is gone; restore another one by hand "
                                f"(./run.sh restore FILE)")
        backups.confirm(f"rollback puts back the build from before the deploy of {state['started']} and replaces the "
                        f"database with its backup {dump} (what was written since is lost)", yes)
        sup = Supervisor(cfg)
        _exchange_or_rename(project.patched_rollback, project.patched)
        if project.patched_staging.exists():
            shutil.rmtree(project.patched_staging)
        os.rename(project.patched_rollback, project.patched_staging)
        state["phase"] = "rolled back"
        write_state(cfg, state)
        with lifecycle.database_up(cfg):
            backups.restore_file(cfg, dump)
        if sup.running():
            rolling_restart(cfg, sup)
            wait_healthy(cfg, sup)
        _say(cfg, f"rollback: the previous build ({state.get('previous_build', '?')}) runs on the database of {dump}; "
                  f"the rolled-back build ({state.get('new_build', '?')}) is in "
                  f"{project.patched_staging}")
    return 0
