"""The multi-host layout: a service on a machine of its own reaches the portal through HTTP and nothing else.

A network namespace with its own veth pair stands for the other machine: the client inside reaches the portal
only at the veth address (a /30 made for the test, torn down after it), with a token of its own. Needs root
and `ip netns`; skipped with the reason elsewhere.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap

import pytest
import requests

from conftest import CODE_ROOT, PYTHON, clean_env, free_port, wait_until

CLIENT = textwrap.dedent('''
    import json, socket, sys, urllib.request
    url, token, db_port, loopback_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    def get(path, auth=None):
        req = urllib.request.Request(url + path, headers={"Authorization": "token " + auth} if auth else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, None
    def reachable(host, port):
        try:
            socket.create_connection((host, port), timeout=3).close()
            return True
        except OSError:
            return False
    host = url.split("//")[1].split(":")[0]
    sysinfo, _ = get("/api/sysinfo")
    profile, body = get("/api/internal/profile", token)
    refused, _ = get("/api/internal/profile", "not-a-token")
    print(json.dumps({"sysinfo": sysinfo, "profile": profile, "username": (body or {}).get("data", {}).get("username"),
                      "bad_token": refused, "database": reachable(host, db_port),
                      "portal_loopback": reachable("127.0.0.1", loopback_port)}))
''')


PROBE = textwrap.dedent('''
    import json, sys, time, urllib.request
    url, token_file, out = sys.argv[1:4]
    token = open(token_file).read().strip()
    answers = {}
    for path, auth in (("/api/sysinfo", None), ("/api/internal/profile", token)):
        req = urllib.request.Request(url + path, headers={"Authorization": "token " + auth} if auth else {})
        with urllib.request.urlopen(req, timeout=10) as r:
            answers[path] = [r.status, json.load(r)]
    open(out + ".tmp", "w").write(json.dumps(answers))
    __import__("os").replace(out + ".tmp", out)
    while True:
        time.sleep(60)
''')
PROBE_PROGRAM = """[program:probe]
command={python} {service_dir}/probe.py {url} {token_file} {var}/probe.json
startsecs=0
autorestart=false
redirect_stderr=true
stdout_logfile={log_dir}/%(program_name)s.log
"""


def services_only_root(base, url: str, token: str):
    """A project root of a services-only host: the real layers, one service `probe`, its copied token."""
    import yaml

    root = base / "services-host"
    root.mkdir()
    for name in ("upstream", "extensions", "config.defaults.yaml"):
        os.symlink(CODE_ROOT / name, root / name)
    (root / "data").mkdir()
    probe = root / "services" / "probe"
    probe.mkdir(parents=True)
    (probe / "probe.py").write_text(PROBE)
    (probe / "supervisor.conf").write_text(PROBE_PROGRAM)
    (probe / "service.yaml").write_text("acls: [Upload data]\n")
    (root / "config.yaml").write_text(yaml.safe_dump({
        "server": {"port": free_port()}, "database": {"embedded": {"port": free_port()}},
        "services": {"portal_url": url, "disabled": ["app"]}}))
    tokens = root / "var" / "tokens"
    tokens.mkdir(parents=True)
    os.chmod(tokens, 0o700)
    (tokens / "probe.token").write_text(token + "\n")
    os.chmod(tokens / "probe.token", 0o600)
    return root


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


@pytest.fixture
def netns():
    """(namespace, host address, namespace address): a namespace joined to this one by a veth pair alone."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("network namespaces need root and iproute2 (`ip netns`)")
    tag = f"{os.getpid() % 10000}{random.randint(0, 99)}"
    name, outer, inner = f"apt{tag}", f"apo{tag}", f"api{tag}"
    net = f"10.200.{random.randint(0, 255)}"
    made = sh("ip", "netns", "add", name, check=False)
    if made.returncode != 0:
        pytest.skip(f"`ip netns add` is not allowed here: {made.stderr.strip()}")
    try:
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", name)
        sh("ip", "addr", "add", f"{net}.1/30", "dev", outer)
        sh("ip", "link", "set", outer, "up")
        sh("ip", "netns", "exec", name, "ip", "addr", "add", f"{net}.2/30", "dev", inner)
        sh("ip", "netns", "exec", name, "ip", "link", "set", inner, "up")
        sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name, f"{net}.1", f"{net}.2"
    finally:
        sh("ip", "link", "del", outer, check=False)
        sh("ip", "netns", "del", name, check=False)


def test_a_service_in_its_own_network_namespace_reaches_the_portal_only_over_http(patched_portal, netns, tmp_path):
    name, host_address, _ = netns
    portal = patched_portal
    token_file = tmp_path / "probe.token"
    res = subprocess.run([PYTHON, "-m", "astroportal", "service_token", "netns_probe", "--acls", "Upload data",
                          "--output", str(token_file), "--config", str(portal.config)],
                         cwd=portal.patched, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    # The same build and database, also listening on the veth address (as an app host behind nginx would).
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([PYTHON, "-m", "astroportal", "serve", "--config", str(portal.config), "--host",
                             host_address, "--port", str(port)],
                            cwd=portal.patched, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://{host_address}:{port}"

        def up() -> bool:
            try:
                return requests.get(url + "/api/sysinfo", timeout=1).ok
            except requests.RequestException:
                return False

        assert wait_until(up, 60), (tmp_path / "serve.log").read_text()
        script = tmp_path / "client.py"
        script.write_text(CLIENT)
        db_port = portal.pg.port
        res = subprocess.run(["ip", "netns", "exec", name, sys.executable, str(script), url,
                              token_file.read_text().strip(), str(db_port), str(portal.port)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        seen = json.loads(res.stdout)
        assert seen["sysinfo"] == 200 and seen["profile"] == 200 and seen["username"] == "netns_probe"
        assert seen["bad_token"] == 401
        # Nothing but the portal's HTTP port: not its database, not what listens on this machine's loopback.
        assert seen["database"] is False and seen["portal_loopback"] is False

        # The same through the launcher: a services-only host (services.portal_url) in the namespace runs its
        # service under supervisord, with no portal and no database of its own.
        root = services_only_root(tmp_path, url, token_file.read_text().strip())
        env = clean_env(PORTAL_ROOT=str(root))
        res = subprocess.run(["ip", "netns", "exec", name, PYTHON, str(CODE_ROOT / "launcher"), "run"], cwd=root,
                             env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        try:
            assert res.returncode == 0, res.stderr
            assert "services-only host" in res.stderr and not (root / "var" / "pgdata").exists()
            result = root / "var" / "probe.json"
            assert wait_until(result.exists, 60), (root / "var" / "log" / "probe.log").read_text()
            answers = json.loads(result.read_text())
            assert answers["/api/sysinfo"][0] == 200
            assert answers["/api/internal/profile"][1]["data"]["username"] == "netns_probe"
        finally:
            subprocess.run([PYTHON, str(CODE_ROOT / "launcher"), "stop"], cwd=root, env=env, capture_output=True,
                           timeout=120, stdin=subprocess.DEVNULL)
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
