"""Services' own tokens, end to end: a service folder declaring ACLs in service.yaml gets var/tokens/NAME.token
(0600) from `run`, handed over by {token_file}; its token does what the ACLs allow and is refused beyond; a
disabled service gets none; no service is given the admin's token.

The services are tiny folders in the instance's own services/ (a temporary project root), never in the real one.
"""

from __future__ import annotations

import json
import shutil
import stat
import sys

import pytest
import requests
import yaml

from conftest import CODE_ROOT, Instance, wait_until

sys.path.insert(0, str(CODE_ROOT))
from launcher import config as launcher_config  # noqa: E402
from launcher import service_tokens  # noqa: E402
from launcher.errors import LauncherError  # noqa: E402
from launcher.paths import Project  # noqa: E402
from launcher.supervisor import render_program  # noqa: E402

PROGRAM = """\
[program:scout]
command={python} {service_dir}/scout.py --token-file {token_file} --url {url} --out {var}/scout.json
directory={service_dir}
autorestart=true
startsecs=1
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={log_dir}/%(program_name)s.log
"""
# The service: reads its token from the file it is given and asks the portal who it is (over HTTP only).
SCOUT = """\
import argparse, json, os, time, urllib.request

p = argparse.ArgumentParser()
p.add_argument("--token-file"); p.add_argument("--url"); p.add_argument("--out")
args = p.parse_args()
token = open(args.token_file).read().strip()
while True:
    try:
        req = urllib.request.Request(args.url + "/api/internal/profile", headers={"Authorization": "token " + token})
        me = json.load(urllib.request.urlopen(req, timeout=5))["data"]
        break
    except OSError as exc:
        print("waiting for the portal:", exc, flush=True)
        time.sleep(0.3)
with open(args.out + ".tmp", "w") as fh:
    json.dump({"username": me["username"], "acls": me["acls"], "is_bot": me["is_bot"]}, fh)
os.replace(args.out + ".tmp", args.out)
print("I am", me["username"], flush=True)
while True:
    time.sleep(60)
"""
IDLE = """\
[program:idle]
command={python} -c "import time; time.sleep(3600)" {token_file}
"""


@pytest.fixture(scope="module")
def inst():
    """An instance whose services/ is a real folder: the distribution's services plus `scout` (declaring
    Upload data) and `idle` (declaring Comment, disabled)."""
    instance = Instance()
    services = instance.root / "services"
    services.unlink()
    shutil.copytree(CODE_ROOT / "services", services)
    (services / "scout").mkdir()
    (services / "scout/supervisor.conf").write_text(PROGRAM)
    (services / "scout/scout.py").write_text(SCOUT)
    (services / "scout/service.yaml").write_text("acls: [Upload data]\n")
    (services / "idle").mkdir()
    (services / "idle/supervisor.conf").write_text(IDLE)
    (services / "idle/service.yaml").write_text("acls: [Comment]\n")
    config = yaml.safe_load((instance.root / "config.yaml").read_text())
    config["services"] = {"disabled": ["idle"]}
    (instance.root / "config.yaml").write_text(yaml.safe_dump(config))
    yield instance
    instance.cleanup()


def test_a_service_gets_its_own_token_for_its_acls_only(inst):
    res = inst.run("run")
    assert res.returncode == 0, res.stderr
    token_file = inst.var / "tokens/scout.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((inst.var / "tokens").stat().st_mode) == 0o700
    assert "service token: scout (new bot user" in res.stderr
    token = token_file.read_text().strip()
    admin = inst.run("token").stdout.strip()
    assert token and token != admin
    # {token_file} reached the program: the service read the file and the portal knows it as its bot
    out = inst.var / "scout.json"
    assert wait_until(out.exists, 30), inst.run("log", "scout").stdout
    assert json.loads(out.read_text()) == {"username": "scout", "acls": ["Upload data"], "is_bot": True}
    assert f"--token-file {token_file} " in (inst.var / "run/supervisord.conf").read_text()

    def call(path, body):
        return requests.post(inst.url + path, json=body, headers={"Authorization": f"token {token}"}, timeout=10)

    r = call("/api/sources", {"id": "ZTF26scoutaa", "ra": 12.5, "dec": -30.0})
    assert r.status_code == 200, r.text
    # beyond its ACLs: refused
    r = call("/api/telescope", {})
    assert r.status_code == 403 and "Manage telescopes" in r.json()["message"]
    r = call("/api/service_tokens", {"name": "evil", "acls": ["System admin"]})
    assert r.status_code == 403 and "System admin" in r.json()["message"]
    # the disabled service got none (and is not run)
    assert not (inst.var / "tokens/idle.token").exists()
    assert "[program:idle]" not in (inst.var / "run/supervisord.conf").read_text()


def test_restart_applies_narrowed_acls_and_keeps_the_token(inst):
    if inst.run("status").returncode != 0:
        assert inst.run("run").returncode == 0
    token_file = inst.var / "tokens/scout.token"
    token = token_file.read_text().strip()
    headers = {"Authorization": f"token {token}"}
    (inst.root / "services/scout/service.yaml").write_text("acls: [Comment]\n")
    try:
        res = inst.run("restart")
        assert res.returncode == 0, res.stderr
        assert token_file.read_text().strip() == token
        r = requests.post(inst.url + "/api/sources", json={"id": "ZTF26scoutbb", "ra": 1.0, "dec": 2.0},
                          headers=headers, timeout=10)
        assert r.status_code == 403 and "Upload data" in r.json()["message"]
        r = requests.post(inst.url + "/api/sources/ZTF26scoutaa/comments", json={"text": "now I comment"},
                          headers=headers, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        (inst.root / "services/scout/service.yaml").write_text("acls: [Upload data]\n")


def test_an_unknown_acl_is_refused_by_name_and_the_bot_keeps_its_acls(inst):
    if inst.run("status").returncode != 0:
        assert inst.run("run").returncode == 0
    (inst.root / "services/scout/service.yaml").write_text("acls: [Upload data, Teleport]\n")
    try:
        res = inst.run("restart")
    finally:
        (inst.root / "services/scout/service.yaml").write_text("acls: [Upload data]\n")
    assert res.returncode == 2
    assert "the service scout (services/scout/service.yaml): creating its token failed" in res.stderr
    assert "unknown ACL(s) ['Teleport']; known ACLs: " in res.stderr
    token = (inst.var / "tokens/scout.token").read_text().strip()
    me = requests.get(inst.url + "/api/internal/profile", headers={"Authorization": f"token {token}"}, timeout=10)
    assert me.status_code == 200 and "Teleport" not in me.json()["data"]["acls"]
    assert inst.run("stop").returncode == 0


# -- the program file and service.yaml, checked without starting anything --------------------------------------


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "upstream").mkdir(parents=True)
    cfg = launcher_config.load(Project(root), env={}, derive=False)
    cfg.var_dir = tmp_path / "var"
    cfg.set("services.broker.group_names", ["Kilonova", "GW"], "test")
    return root, cfg


def service(root, name, program, declaration=None):
    d = root / "patched/services" / name
    d.mkdir(parents=True)
    (d / "supervisor.conf").write_text(program)
    if declaration is not None:
        (d / "service.yaml").write_text(declaration)
    return d


def test_token_file_placeholder_needs_a_declaration_and_a_token(project):
    root, cfg = project
    program = "[program:{name}]\ncommand=run --token-file {token_file}\n"
    d = service(root, "bare", program.replace("{name}", "bare"))
    with pytest.raises(LauncherError, match=r"supervisor.conf:2: \{token_file\} is used, but the service bare "
                                            r"declares no ACL.*services/bare/service.yaml"):
        render_program(cfg, "bare", d)
    d = service(root, "fresh", program.replace("{name}", "fresh"), "acls: [Upload data]\n")
    with pytest.raises(LauncherError, match=r"the token of the service fresh \(.*var/tokens/fresh.token\) does "
                                            r"not exist yet: ./run.sh run"):
        render_program(cfg, "fresh", d)
    service_tokens.token_path(cfg, "fresh").parent.mkdir(parents=True)
    service_tokens.token_path(cfg, "fresh").write_text("t\n")
    assert f"--token-file {cfg.var_dir}/tokens/fresh.token" in render_program(cfg, "fresh", d)
    # a service that does not use it needs no service.yaml, and unknown placeholders list it among the known
    plain = service(root, "plain", "[program:plain]\ncommand=run {nope}\n")
    with pytest.raises(LauncherError, match=r"unknown placeholder \{nope\}.*\{token_file\}"):
        render_program(cfg, "plain", plain)


@pytest.mark.parametrize("text, message", [
    ("acls: Upload data\n", "`acls` must be a list of ACL names"),
    ("acls: [Upload data]\nacl: [Classify]\n", "unknown key(s) acl (known: acls, groups_key)"),
    ("- Upload data\n", "expected a mapping such as `acls: [Upload data]`"),
    ("acls: [Upload data]\ngroups_key: [a]\n", "`groups_key` must be a dotted configuration key"),
    ("acls: [Upload data\n", "invalid YAML"),
])
def test_a_bad_service_yaml_is_named(project, text, message):
    root, _ = project
    d = service(root, "svc", "[program:svc]\ncommand=x\n", text)
    with pytest.raises(LauncherError) as err:
        service_tokens.declaration(d)
    assert message in str(err.value) and str(d / "service.yaml") in str(err.value)


def test_declarations_and_group_keys(project):
    root, cfg = project
    assert service_tokens.declaration(service(root, "none", "[program:none]\ncommand=x\n")) is None
    assert service_tokens.declaration(service(root, "empty", "[program:empty]\ncommand=x\n", "acls: []\n")) is None
    declared = "acls: [Upload data, Classify]\ngroups_key: services.broker.group_names\n"
    decl = service_tokens.declaration(service(root, "broker", "[program:broker]\ncommand=x\n", declared))
    assert decl.acls == ["Upload data", "Classify"]
    assert service_tokens.group_names(cfg, "broker", decl) == ["Kilonova", "GW"]
    missing = service_tokens.Declaration(["Classify"], "services.nothing.here")
    with pytest.raises(LauncherError, match="groups_key 'services.nothing.here' names no configuration key"):
        service_tokens.group_names(cfg, "broker", missing)
