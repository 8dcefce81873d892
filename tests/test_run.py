"""./run.sh run -> healthy -> stop, end to end under supervisord with the embedded database; the CLI's
answers to bad input."""

import os
import shutil
import socket
import subprocess
import sys

import pytest
import requests

from conftest import CODE_ROOT, Instance, clean_env, free_port, launcher, link_real_layers, wait_until

sys.path.insert(0, str(CODE_ROOT))
from launcher import config as launcher_config  # noqa: E402
from launcher import lifecycle  # noqa: E402
from launcher.errors import LauncherError  # noqa: E402
from launcher.paths import Project  # noqa: E402


def test_run_init_answers_and_prints_the_url(running):
    # run --init returned only once the portal answered, and printed its URL alone on stdout
    if running.last_run is not None:
        assert running.last_run.stdout.strip().splitlines()[-1] == running.url
        assert "holds no *.yaml file: nothing to load" in running.last_run.stderr
    r = requests.get(running.url + "/api/sysinfo", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "success"
    logs = {p.name for p in (running.var / "log").iterdir()}
    assert {"app_0.log", "supervisord.log", "postgresql.log"} <= logs


def test_run_when_running_says_so(running):
    res = running.run("run")
    assert res.returncode == 0 and "already running" in res.stderr and res.stdout.strip() == running.url
    res = running.run("run", "--clear", "--yes")
    assert res.returncode == 1 and "stop first" in res.stderr


def test_status_lists_services_and_database(running):
    # The app answers before supervisord calls it RUNNING (STARTING for its startsecs): await the state.
    seen = []

    def app_running() -> bool:
        seen.append(running.run("status"))
        return "app:app_0" in seen[-1].stdout and "RUNNING" in seen[-1].stdout

    wait_until(app_running, 30, step=0.5)
    res = seen[-1]
    assert res.returncode == 0, res.stdout
    assert "app:app_0" in res.stdout and "RUNNING" in res.stdout
    assert "embedded PostgreSQL" in res.stdout and "running" in res.stdout and "answers" in res.stdout


def test_token_prints_the_admin_token_alone(running):
    res = running.run("token")
    assert res.returncode == 0
    assert res.stdout.count("\n") == 1 and len(res.stdout.strip()) >= 20 and " " not in res.stdout.strip()
    token = res.stdout.strip()
    assert requests.get(running.url + "/api/sources", headers={"Authorization": f"token {token}"}).status_code == 200
    bad = requests.get(running.url + "/api/sources", headers={"Authorization": "token not-the-token"})
    assert bad.status_code == 401


def test_log_shows_a_service_log(running):
    # The solve workers poll for work every few seconds; their empty answers are not access-log lines, so the
    # start of the log stays within reach of a person reading it.
    res = running.run("log", "app", "-n", "500")
    assert res.returncode == 0 and "serving on" in res.stdout
    assert "/api/solve/worker/claim" not in res.stdout
    res = running.run("log", "nosuchservice")
    assert res.returncode == 2 and "no service 'nosuchservice'" in res.stderr and "app" in res.stderr


def _app_pids(inst) -> list[str]:
    """The app processes' pids, once every one of them is RUNNING (STARTING lines show no pid yet)."""
    lines: list[str] = []

    def all_running() -> bool:
        lines[:] = [ln for ln in inst.run("status").stdout.splitlines() if ln.strip().startswith("app:")]
        return bool(lines) and all(" RUNNING " in ln for ln in lines)

    wait_until(all_running, 30, step=0.5)
    return [line.split("pid")[1].split()[0] for line in lines]


def test_restart_one_service(running):
    before = _app_pids(running)
    res = running.run("restart", "app")
    assert res.returncode == 0, res.stderr
    assert _app_pids(running) != before
    assert requests.get(running.url + "/api/sysinfo", timeout=5).status_code == 200
    res = running.run("restart", "nosuch")
    assert res.returncode == 2 and "no running service 'nosuch'" in res.stderr


def test_processes_setting_runs_several_app_processes_on_one_port(running):
    res = running.run("restart", env={"PORTAL__SERVER__PROCESSES": "2"})
    assert res.returncode == 0, res.stderr
    pids = _app_pids(running)
    assert len(pids) == 2 and len(set(pids)) == 2
    assert all(requests.get(running.url + "/api/sysinfo", timeout=5).ok for _ in range(10))
    res = running.run("restart")
    assert res.returncode == 0, res.stderr
    assert len(_app_pids(running)) == 1


def test_stop_clear_and_data_kept_across_restarts(running):
    token = running.run("token").stdout.strip()
    res = running.run("stop")
    assert res.returncode == 0, res.stderr
    assert not (running.var / "run/supervisord.pid").exists()
    assert running.run("status").returncode == 3
    assert not (running.var / "pgdata/postmaster.pid").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(running.url + "/api/sysinfo", timeout=2)
    # stop when nothing runs: a clear message, non-zero
    res = running.run("stop")
    assert res.returncode == 1 and "nothing is running" in res.stderr
    # load_data needs the portal
    (running.data / "x.yaml").write_text("telescope: []\n")
    res = running.run("load_data")
    (running.data / "x.yaml").unlink()
    assert res.returncode == 1 and "portal is not running" in res.stderr
    # --clear without a terminal and without --yes: refused, nothing changed
    res = running.run("run", "--clear")
    assert res.returncode == 2 and "--yes" in res.stderr
    assert running.run("status").returncode == 3
    # a plain run: same database, same admin token
    res = running.run("run")
    assert res.returncode == 0, res.stderr
    assert requests.get(running.url + "/api/sources", headers={"Authorization": f"token {token}"}).status_code == 200
    # --clear --yes: a fresh database, hence a fresh admin and token
    assert running.run("stop").returncode == 0
    res = running.run("run", "--init", "--clear", "--yes")
    assert res.returncode == 0, res.stderr
    assert "dropping and recreating" in res.stderr
    new_token = running.run("token").stdout.strip()
    assert new_token != token
    assert requests.get(running.url + "/api/sources", headers={"Authorization": f"token {token}"}).status_code == 401
    assert running.run("stop").returncode == 0


def test_app_that_cannot_start_fails_run_and_leaves_nothing_running(instance):
    instance.run("stop")
    res = instance.run("run", env={"PORTAL__APP__HANDLER_MODULES": "[no_such_module]"})
    assert res.returncode == 1
    # Said by the app process itself, or earlier by the step that refreshes the services' tokens (it loads the
    # same handler modules): either way the run fails naming the module that cannot be imported.
    assert "No module named 'no_such_module'" in res.stderr, res.stderr
    assert instance.run("status").returncode == 3
    assert not (instance.var / "pgdata/postmaster.pid").exists()


def test_port_in_use_is_refused_before_anything_starts(tmp_path):
    root = tmp_path / "busy"
    link_real_layers(root)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = launcher(root, "run", env={"PORTAL__SERVER__PORT": str(port),
                                         "PORTAL__DATABASE__EMBEDDED__PORT": str(free_port())})
    assert res.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use (server.port, set by env PORTAL__SERVER__PORT)" in res.stderr
    assert not (root / "patched").exists() and not (root / "var/pgdata").exists()
    assert not (root / "var/run/supervisord.pid").exists()


def test_run_refuses_the_debug_login_beyond_loopback_before_anything_starts(tmp_path):
    root = tmp_path / "exposed"
    link_real_layers(root)
    res = launcher(root, "run", env={"PORTAL__SERVER__HOST": "0.0.0.0", "PORTAL__SERVER__PORT": str(free_port()),
                                     "PORTAL__DATABASE__EMBEDDED__PORT": str(free_port())})
    assert res.returncode == 2, res.stderr
    assert "refusing to start: server.host is '0.0.0.0' (set by env PORTAL__SERVER__HOST)" in res.stderr
    assert "server.auth.debug_login: true, set by upstream" in res.stderr
    assert "server.production: true" in res.stderr and 'README.md, "Deploying"' in res.stderr
    assert not (root / "patched").exists() and not (root / "var/pgdata").exists()
    assert not (root / "var/run/supervisord.pid").exists()


@pytest.mark.parametrize("env, refused", [
    ({}, False),  # the distribution's defaults: 127.0.0.1 with the debug login, fine on a dev machine
    ({"PORTAL__SERVER__HOST": "127.0.0.2"}, False),
    ({"PORTAL__SERVER__HOST": "::1"}, False),
    ({"PORTAL__SERVER__HOST": "localhost"}, False),
    ({"PORTAL__SERVER__HOST": "0.0.0.0"}, True),
    ({"PORTAL__SERVER__HOST": "''"}, True),
    ({"PORTAL__SERVER__HOST": "192.0.2.10"}, True),
    ({"PORTAL__SERVER__HOST": "0.0.0.0", "PORTAL__SERVER__PRODUCTION": "true"}, True),  # debug login still on
    ({"PORTAL__SERVER__HOST": "0.0.0.0", "PORTAL__SERVER__PRODUCTION": "true", "PORTAL__SERVER__AUTH__DEBUG_LOGIN":
      "false", "PORTAL__SERVER__COOKIE_SECRET": "s" * 40}, False),
    ({"PORTAL__SERVER__HOST": "0.0.0.0", "PORTAL__SERVER__AUTH__DEBUG_LOGIN": "false"}, False),
])
def test_the_debug_login_is_only_served_on_loopback_unless_in_production(tmp_path, env, refused):
    root = tmp_path / "project"
    link_real_layers(root)
    cfg = launcher_config.load(Project(root), env=env, derive=False)
    if refused:
        with pytest.raises(LauncherError, match="refusing to start"):
            lifecycle.check_exposure(cfg)
    else:
        lifecycle.check_exposure(cfg)


def test_unknown_command_and_flag_say_what_exists(tmp_path):
    res = launcher(tmp_path, "launch")
    assert res.returncode == 2 and "invalid choice: 'launch'" in res.stderr and "'run'" in res.stderr
    res = launcher(tmp_path, "run", "--fast")
    assert res.returncode == 2 and "unrecognized arguments: --fast" in res.stderr and "--init" in res.stderr


def test_log_refuses_zero_or_negative_line_counts(tmp_path):
    for value in ("0", "-3", "many"):
        res = launcher(tmp_path, "log", "-n", value)
        assert res.returncode == 2 and "argument -n/--lines" in res.stderr, (value, res.stderr)
    assert "expected at least 1, got 0" in launcher(tmp_path, "log", "-n", "0").stderr


def test_two_runs_at_once_end_with_one_portal_and_the_other_saying_so():
    inst = Instance()
    try:
        procs = [subprocess.Popen([sys.executable, str(CODE_ROOT / "launcher"), "run"], cwd=inst.root,
                                  env=clean_env(PORTAL_ROOT=str(inst.root)), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
        assert [rc for rc, _, _ in results] == [0, 0], results
        assert [out.strip() for _, out, _ in results] == [inst.url, inst.url]
        said = ["already running" in err for _, _, err in results]
        assert sorted(said) == [False, True], results
        # One supervisord, one database, and the portal answers.
        assert inst.run("status").returncode == 0
        assert requests.get(inst.url + "/api/sysinfo", timeout=5).status_code == 200
        # Two stops at once: one stops everything, the other finds nothing left to stop.
        procs = [subprocess.Popen([sys.executable, str(CODE_ROOT / "launcher"), "stop"], cwd=inst.root,
                                  env=clean_env(PORTAL_ROOT=str(inst.root)), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        codes = sorted(p.wait(timeout=120) for p in procs)
        assert codes == [0, 1]
        assert inst.run("status").returncode == 3
        assert not (inst.var / "pgdata/postmaster.pid").exists()
    finally:
        inst.cleanup()


def test_every_command_has_help():
    for cmd in ("run", "stop", "status", "restart", "log", "token", "set_user_role", "load_data", "migrate",
                "build", "diff", "config", "test"):
        res = launcher(CODE_ROOT, cmd, "--help")
        assert res.returncode == 0 and res.stdout.startswith(f"usage: ./run.sh {cmd}"), cmd


def test_run_sh_records_the_requirements_hash_and_runs_the_launcher(tmp_path):
    res = subprocess.run([str(CODE_ROOT / "run.sh"), "config", "server.host"], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("server.host: ")
    stamp = (CODE_ROOT / ".venv/.requirements.sha256").read_text().strip()
    assert stamp == requirements_hash(CODE_ROOT)


def requirements_hash(root) -> str:
    """run.sh's stamp: requirements.txt includes upstream/requirements.txt, so both count."""
    import hashlib

    return hashlib.sha256((root / "requirements.txt").read_bytes()
                          + (root / "upstream/requirements.txt").read_bytes()).hexdigest()


# Stand-ins, so that nothing is downloaded. python3 on PATH: `-m venv DIR` puts DIR/bin/python, then (FAKE_VENV=
# broken) fails as Debian's python3 does without python3-venv, leaving that python without pip.
FAKE_PYTHON3 = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  cp "$FAKE_DIR/venv-python-$FAKE_VENV" "$3/bin/python"
  if [ "$FAKE_VENV" = broken ]; then
    echo "The virtual environment was not created successfully because ensurepip is not available." >&2
    exit 1
  fi
  exit 0
fi
exec REAL "$@"
"""
VENV_PYTHON_BROKEN = """#!/bin/sh
echo "No module named pip" >&2
exit 1
"""
# A working venv's python whose pip only records its arguments; everything else runs on the real interpreter.
VENV_PYTHON_WORKING = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$*" >>"$(dirname "$0")/../pip.log"; exit 0; fi
exec REAL "$@"
"""


@pytest.fixture
def run_sh_root(tmp_path):
    """A project root holding a copy of run.sh, its requirement files and the launcher; python3 faked."""
    root = tmp_path / "root"
    (root / "upstream").mkdir(parents=True)
    shutil.copy(CODE_ROOT / "run.sh", root / "run.sh")
    (root / "requirements.txt").write_text("-r upstream/requirements.txt\nsupervisor\n")
    (root / "upstream/requirements.txt").write_text("tornado\n")
    os.symlink(CODE_ROOT / "launcher", root / "launcher")
    fake = tmp_path / "fake"
    fake.mkdir()
    for name, text in (("python3", FAKE_PYTHON3), ("venv-python-broken", VENV_PYTHON_BROKEN),
                       ("venv-python-working", VENV_PYTHON_WORKING)):
        (fake / name).write_text(text.replace("REAL", sys.executable))
        (fake / name).chmod(0o755)

    def run(mode: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env.update(PATH=f"{fake}:/usr/bin:/bin", FAKE_VENV=mode, FAKE_DIR=str(fake))
        return subprocess.run([str(root / "run.sh"), "--help"], capture_output=True, text=True, env=env,
                              timeout=120)

    return root, run


def test_run_sh_removes_a_half_made_venv_and_says_what_to_install(run_sh_root):
    root, run = run_sh_root
    res = run("broken")
    assert res.returncode == 1
    assert "ensurepip is not available" in res.stderr and "apt-get install python3-venv" in res.stderr
    assert not (root / ".venv/bin/python").exists()
    # A .venv left half-made by an earlier attempt (its python has no pip) is noticed, removed and made again.
    (root / ".venv/bin").mkdir(parents=True)
    shutil.copy(root.parent / "fake/venv-python-broken", root / ".venv/bin/python")
    res = run("working")
    assert res.returncode == 0, res.stderr
    assert "is broken (its python has no pip): removing it" in res.stderr and "creating .venv" in res.stderr
    assert res.stdout.startswith("usage: ./run.sh")
    log = (root / ".venv/pip.log").read_text()
    assert f"-m pip install --quiet --disable-pip-version-check -r {root}/requirements.txt" in log
    assert (root / ".venv/.requirements.sha256").read_text().strip() == requirements_hash(root)
    # Up to date: neither venv nor pip runs again.
    res = run("broken")
    assert res.returncode == 0 and res.stderr == "" and (root / ".venv/pip.log").read_text() == log
    # A change in upstream's requirements (included by requirements.txt) reinstalls.
    (root / "upstream/requirements.txt").write_text("tornado\nastropy\n")
    res = run("broken")
    assert res.returncode == 0 and "installing requirements.txt" in res.stderr
    assert (root / ".venv/.requirements.sha256").read_text().strip() == requirements_hash(root)


def _telescopes(inst, token):
    r = requests.get(inst.url + "/api/telescope", headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return {t["name"]: t for t in r.json()["data"]}


def test_first_run_on_a_new_machine_is_ready_to_use_and_later_runs_do_not_reload():
    """A newcomer's `./run.sh run` (no --init) on a new database ends with the network's telescopes there."""
    import yaml

    from conftest import Instance

    inst = Instance()
    try:
        for f in (CODE_ROOT / "data").glob("*.yaml"):
            shutil.copy(f, inst.data / f.name)
        network = {t["name"] for t in yaml.safe_load((CODE_ROOT / "data/telescopes.yaml").read_text())["telescope"]}
        # a first start whose data/ has a mistake stops before anything runs, and says so
        (inst.data / "zz_broken.yaml").write_text("telescope:\n  - name: Half\n    lat: 123\n")
        res = inst.run("run")
        assert res.returncode == 2 and "zz_broken.yaml" in res.stderr
        assert "fix data/, then ./run.sh run again: it finishes the first start" in res.stderr
        assert inst.run("status").returncode == 3
        # fixed, the next plain run finishes the first start
        (inst.data / "zz_broken.yaml").unlink()
        res = inst.run("run")
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip().splitlines()[-1] == inst.url
        token = inst.run("token").stdout.strip()
        telescopes = _telescopes(inst, token)
        assert network <= set(telescopes) and len(network) >= 50
        # a later plain run loads nothing: a change made through the portal survives it
        some = sorted(network)[0]
        r = requests.patch(f"{inst.url}/api/telescope/{telescopes[some]['id']}", json={"nickname": "renamed here"},
                           headers={"Authorization": f"token {token}"}, timeout=10)
        assert r.status_code == 200, r.text
        assert inst.run("stop").returncode == 0
        res = inst.run("run")
        assert res.returncode == 0, res.stderr
        assert "load_data" not in res.stderr and "first start" not in res.stderr
        assert _telescopes(inst, token)[some]["nickname"] == "renamed here"
        assert inst.run("token").stdout.strip() == token
    finally:
        inst.cleanup()
