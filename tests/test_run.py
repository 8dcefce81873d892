"""./run.sh run -> healthy -> stop, end to end under supervisord with the embedded database; the CLI's
answers to bad input."""

import os
import socket
import subprocess

import pytest
import requests

from conftest import CODE_ROOT, free_port, launcher, link_real_layers


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
    res = running.run("status")
    assert res.returncode == 0, res.stdout
    assert "app:app_0" in res.stdout and "RUNNING" in res.stdout
    assert "embedded PostgreSQL" in res.stdout and "running" in res.stdout and "answers" in res.stdout


def test_token_prints_the_admin_token_alone(running):
    res = running.run("token")
    assert res.returncode == 0
    assert res.stdout.count("\n") == 1 and len(res.stdout.strip()) >= 20 and " " not in res.stdout.strip()
    token = res.stdout.strip()
    assert requests.get(running.url + "/api/sysinfo", headers={"Authorization": f"token {token}"}).status_code == 200
    bad = requests.get(running.url + "/api/sysinfo", headers={"Authorization": "token not-the-token"})
    assert bad.status_code == 401


def test_log_shows_a_service_log(running):
    res = running.run("log", "app", "-n", "200")
    assert res.returncode == 0 and "serving on" in res.stdout
    res = running.run("log", "nosuchservice")
    assert res.returncode == 2 and "no service 'nosuchservice'" in res.stderr and "app" in res.stderr


def _app_pids(inst) -> list[str]:
    out = inst.run("status").stdout
    return [line.split("pid")[1].split()[0] for line in out.splitlines() if line.strip().startswith("app:")]


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
    assert requests.get(running.url + "/api/sysinfo", headers={"Authorization": f"token {token}"}).status_code == 200
    # --clear --yes: a fresh database, hence a fresh admin and token
    assert running.run("stop").returncode == 0
    res = running.run("run", "--init", "--clear", "--yes")
    assert res.returncode == 0, res.stderr
    assert "dropping and recreating" in res.stderr
    new_token = running.run("token").stdout.strip()
    assert new_token != token
    assert requests.get(running.url + "/api/sysinfo", headers={"Authorization": f"token {token}"}).status_code == 401
    assert running.run("stop").returncode == 0


def test_app_that_cannot_start_fails_run_and_leaves_nothing_running(instance):
    instance.run("stop")
    res = instance.run("run", env={"PORTAL__APP__HANDLER_MODULES": "[no_such_module]"})
    assert res.returncode == 1
    assert "the app process app_0" in res.stderr and "No module named 'no_such_module'" in res.stderr
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


def test_unknown_command_and_flag_say_what_exists(tmp_path):
    res = launcher(tmp_path, "launch")
    assert res.returncode == 2 and "invalid choice: 'launch'" in res.stderr and "'run'" in res.stderr
    res = launcher(tmp_path, "run", "--fast")
    assert res.returncode == 2 and "unrecognized arguments: --fast" in res.stderr and "--init" in res.stderr


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
    import hashlib

    assert stamp == hashlib.sha256((CODE_ROOT / "requirements.txt").read_bytes()).hexdigest()
