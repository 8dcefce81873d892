"""A distribution service under supervisord, end to end: enabled it runs beside the portal; named in
services.disabled it is left out of var/run/supervisord.conf and of `status`, and a running one is stopped.

The service is a tiny folder in the instance's own services/ (a temporary project root), never in the real one.
"""

from __future__ import annotations

import os
import shutil

import pytest
import yaml

from conftest import CODE_ROOT, Instance, wait_until

pytestmark = pytest.mark.e2e  # each test runs an instance under supervisord

PROGRAM = """\
; A test service: a python loop that writes its pid and a count to {var}/ticker.beat.
[program:ticker]
command={python} {service_dir}/ticker.py {var}/ticker.beat
directory={service_dir}
autostart=true
autorestart=true
startsecs=1
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={log_dir}/%(program_name)s.log
"""
TICKER = """\
import os, sys, time

beat = sys.argv[1]
n = 0
while True:
    n += 1
    with open(beat + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()} {n}\\n")
    os.replace(beat + ".tmp", beat)
    print("tick", n, flush=True)
    time.sleep(0.3)
"""


@pytest.fixture(scope="module")
def inst():
    """An instance whose services/ is a real folder: the distribution's services plus `ticker`."""
    instance = Instance()
    services = instance.root / "services"
    services.unlink()
    shutil.copytree(CODE_ROOT / "services", services)
    (services / "ticker").mkdir()
    (services / "ticker/supervisor.conf").write_text(PROGRAM)
    (services / "ticker/ticker.py").write_text(TICKER)
    yield instance
    instance.cleanup()


def set_disabled(inst: Instance, names: list[str]) -> None:
    config = yaml.safe_load((inst.root / "config.yaml").read_text())
    config["services"] = {"disabled": names}
    (inst.root / "config.yaml").write_text(yaml.safe_dump(config))


def status_lines(inst: Instance) -> dict[str, list[str]]:
    """`status`'s process lines by service: {"ticker": ["ticker:ticker", "RUNNING", "pid", "123", ...]}."""
    res = inst.run("status")
    lines = [line.split() for line in res.stdout.splitlines() if line.startswith("  ") and ":" in line]
    return {words[0].split(":")[0]: words for words in lines}


def settled(inst: Instance, want: dict[str, str], timeout: float = 60) -> dict[str, list[str]]:
    """`status`'s process lines once each service named in `want` shows its state there (or at the timeout).

    supervisord moves a program through STARTING (for its startsecs) before RUNNING, and on a busy machine
    `run` may return before that: the state is awaited, not read once.
    """
    procs: dict[str, list[str]] = {}

    def arrived() -> bool:
        nonlocal procs
        procs = status_lines(inst)
        return all(len(procs.get(name, ())) > 1 and procs[name][1] == state for name, state in want.items())

    wait_until(arrived, timeout, step=0.5)
    return procs


def starting(stderr: str) -> str:
    """The launcher's "starting app, ... (logs in ...)" (the distribution's own services are listed too)."""
    lines = stderr.splitlines()
    return next((line.split("supervisor: ", 1)[1] for line in lines if "supervisor: starting " in line), "")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def beat(inst: Instance) -> tuple[int, int] | None:
    try:
        pid, n = (inst.var / "ticker.beat").read_text().split()
    except (FileNotFoundError, ValueError):
        return None
    return int(pid), int(n)


def test_an_enabled_service_runs_and_a_disabled_one_is_left_out(inst):
    conf = inst.var / "run/supervisord.conf"
    res = inst.run("run")
    assert res.returncode == 0, res.stderr
    assert "ticker" in starting(res.stderr) and starting(res.stderr).startswith("starting app, ")
    assert "[program:ticker]" in conf.read_text()
    assert f"{inst.root}/patched/services/ticker/ticker.py {inst.var}/ticker.beat" in conf.read_text()
    procs = settled(inst, {"ticker": "RUNNING", "app": "RUNNING"})
    assert procs["ticker"][:2] == ["ticker:ticker", "RUNNING"] and procs["app"][1] == "RUNNING"
    pid = int(procs["ticker"][3])
    # it really runs: the pid status shows is the one beating, and its output is in its log
    first = beat(inst)
    assert first and first[0] == pid
    assert wait_until(lambda: (beat(inst) or (0, 0))[1] > first[1], 10)
    assert "tick" in inst.run("log", "ticker").stdout

    # disabled, then `restart` (which applies the configuration): stopped, gone from the conf and from status
    set_disabled(inst, ["ticker"])
    res = inst.run("restart")
    assert res.returncode == 0, res.stderr
    assert "[program:ticker]" not in conf.read_text() and "[program:app]" in conf.read_text()
    procs = settled(inst, {"app": "RUNNING"})
    assert "ticker" not in procs and procs["app"][1] == "RUNNING"
    assert wait_until(lambda: not alive(pid), 10)

    # and from a fresh start
    assert inst.run("stop").returncode == 0
    res = inst.run("run")
    assert res.returncode == 0, res.stderr
    assert starting(res.stderr).startswith("starting app") and "ticker" not in starting(res.stderr)
    assert "[program:ticker]" not in conf.read_text()
    assert "ticker" not in status_lines(inst) and inst.run("status").returncode == 0
    assert inst.run("stop").returncode == 0
