"""The catalogue of extension points (astroportal/extension_points.py) and every point at work.

The first tests read the package's source: a configuration key of the distribution-facing namespaces, or a
hook attribute of a deployment's module, read anywhere but through the catalogue fails them, and so does a
declared point that nothing reads. The others run a portal with tests/sample_extension.py plugged in through
the catalogued points only (its own database, its own process).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from conftest import UPSTREAM, Server, free_port, portal, unique, write_config

from astroportal import extension_points as ep

PACKAGE = UPSTREAM / "astroportal"
CATALOGUE_FILE = PACKAGE / "extension_points.py"
TESTS_DIR = Path(__file__).resolve().parent
SAMPLE_TEMPLATES = TESTS_DIR / "sample_templates"

# Configuration keys under which a deployment extends the portal; any read of one goes through the catalogue.
NAMESPACES = ("app.", "server.auth.", "database.migration_locations")
# Keys in those namespaces that are settings of the portal itself, not ways to extend it.
SETTINGS = {"server.auth.debug_login": "a development switch of the portal's own login"}

CONFIG_READ = re.compile(r"""\.get\(\s*["']([A-Za-z0-9_.<>\-]+)["']""")
HOOK_ATTRIBUTE = re.compile(r"""getattr\(\s*[\w.]+\s*,\s*["']([A-Z][A-Z0-9_]*)["']""")
CATALOGUE_REFERENCE = re.compile(r"\b(?:ep|extension_points)\.(?!py\b)([A-Za-z_][A-Za-z0-9_]*)")
# Upper-case attributes that belong to the frameworks (Tornado's handler classes), not to a deployment's modules.
FRAMEWORK_ATTRIBUTES = {"SUPPORTED_METHODS"}


def package_sources() -> dict[str, str]:
    """{path relative to upstream/: text} of the package's Python files and templates, the catalogue excepted."""
    files = sorted(PACKAGE.rglob("*.py")) + sorted((PACKAGE / "templates").rglob("*.html"))
    return {str(p.relative_to(UPSTREAM)): p.read_text(encoding="utf-8") for p in files if p != CATALOGUE_FILE}


def distribution_facing(key: str) -> bool:
    return key == "server.auth" or key.startswith(NAMESPACES)


def find_problems(sources: dict[str, str]) -> list[str]:
    """What reads an extension point other than through the catalogue, or names a point it does not declare."""
    problems = []
    for path, text in sources.items():
        for key in CONFIG_READ.findall(text):
            if distribution_facing(key) and key not in SETTINGS:
                declared = any(getattr(p, "name", None) == key for p in ep.catalogue())
                problems.append(
                    f"{path} reads the configuration key {key!r} directly: "
                    + ("read it through its point in extension_points" if declared
                       else "declare it in extension_points (with a default in config.defaults.yaml) and read it there")
                )
        for attr in set(HOOK_ATTRIBUTE.findall(text)) - FRAMEWORK_ATTRIBUTES:
            problems.append(f"{path} reads the module attribute {attr!r} directly: declare it as a ModuleAttribute "
                            "point in extension_points and read it there")
        for name in CATALOGUE_REFERENCE.findall(text):
            if not hasattr(ep, name):
                problems.append(f"{path} uses extension_points.{name}, which the catalogue does not declare")
    return problems


def point_variables() -> dict[str, ep.ExtensionPoint]:
    return {name: value for name, value in vars(ep).items() if isinstance(value, ep.ExtensionPoint)}


# -- the catalogue against the source ----------------------------------------------------------------------------
def test_the_scan_catches_direct_reads_and_undeclared_points():
    """The checks below can fail: a direct read, a hook attribute and an undeclared point are each caught."""
    problems = find_problems({
        "a.py": 'x = cfg.get("app.colour_scheme")\n',
        "b.py": 'hooks = getattr(module, "HOOKS", [])\n',
        "c.html": '{{ ep.NOT_A_POINT.read(handler.cfg) }}\n',
        "d.py": 'mods = cfg.get("app.handler_modules")\n',
        "e.py": 'port = cfg.get("server.port"); debug = cfg.get("server.auth.debug_login")\n',
    })
    assert len(problems) == 4, problems
    assert "declare it in extension_points" in problems[0] and "'app.colour_scheme'" in problems[0]
    assert "'HOOKS'" in problems[1]
    assert "NOT_A_POINT" in problems[2]
    assert "through its point" in problems[3]


def test_code_reads_extension_points_only_through_the_catalogue():
    assert find_problems(package_sources()) == []


def test_every_declared_point_is_read():
    sources = package_sources()
    used = {name for text in sources.values() for name in CATALOGUE_REFERENCE.findall(text)}
    unread = [
        f"{name} ({point.name})" for name, point in point_variables().items()
        if name not in used and not point.read_by_launcher and point.kind != "template"
    ]
    assert unread == [], f"declared in the catalogue but read by nothing: {unread}"


def test_points_read_outside_the_code_are_where_the_catalogue_says():
    base = (PACKAGE / "templates" / ep.BASE_TEMPLATE_BLOCKS.template).read_text()
    found = set(re.findall(r"{%\s*block\s+(\w+)\s*%}", base))
    assert found == set(ep.BASE_TEMPLATE_BLOCKS.blocks)
    assert (UPSTREAM / "services" / "app" / "supervisor.conf").is_file()
    assert [p.name for p in ep.catalogue() if p.read_by_launcher] == [ep.SERVICE_FOLDERS.name]


def test_every_config_point_has_a_documented_default():
    defaults = yaml.safe_load((UPSTREAM / "config.defaults.yaml").read_text())
    missing = []
    for point in ep.catalogue():
        if isinstance(point, ep.ConfigPoint):
            node = defaults
            for part in point.name.split("."):
                if not isinstance(node, dict) or part not in node:
                    missing.append(point.name)
                    break
                node = node[part]
    assert missing == []
    for point in ep.catalogue():
        assert point.receives and point.provides and point.example, point.name


def test_page_block_places_and_event_kinds_are_all_used():
    templates = "".join(p.read_text() for p in (PACKAGE / "templates").glob("*.html"))
    places = set(re.findall(r"""page_blocks\(\s*["']([\w.]+)["']""", templates))
    assert places == set(ep.PAGE_BLOCK_PLACES)
    domain = "".join(p.read_text() for p in (PACKAGE / "domain").glob("*.py"))
    kinds = set(re.findall(r"""Event\(\s*["']([\w.]+)["']""", domain))
    assert kinds == set(ep.EVENT_KINDS)


def test_the_catalogue_command_prints_every_point(tmp_path):
    config = write_config(tmp_path / "c.yaml", "postgresql://nobody@127.0.0.1:9/none", free_port())
    result = portal("extension_points", config=config)
    data = json.loads(result.stdout)
    assert [p["name"] for p in data["points"]] == [p.name for p in ep.catalogue()]
    assert set(data["event_kinds"]) == set(ep.EVENT_KINDS)


# -- a portal with the sample extension ---------------------------------------------------------------------------
EXTENSION_APP = {
    "title": "Sample Portal",
    "handler_modules": ["sample_extension"],
    "template_paths": [str(SAMPLE_TEMPLATES)],
    "nav_entries": [
        {"label": "Sample hello", "url": "/sample/hello"},
        {"label": "Observers only", "url": "/sample/observers", "acl": "Other ACL"},
    ],
    "page_blocks": {
        "source.actions": ["sample_source_action.html"],
        "source.panels": ["sample_source_panel.html"],
        "dashboard.panels": ["sample_dashboard_panel.html"],
        "candidates.actions": ["sample_candidates_action.html"],
        "candidates.columns": ["sample_candidates_column.html"],
    },
    "extra_acls": ["Sample ACL", "Other ACL"],
    "role_grants": {"Full user": ["Sample ACL"], "Observer": ["Other ACL", "Comment"]},
    "cli_modules": ["sample_extension"],
    "event_subscribers": ["sample_extension.failing_subscriber", "sample_extension.record_event"],
}


def extension_env(events_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH")) if p)
    env["ASTROPORTAL_TEST_EVENTS_FILE"] = str(events_file)
    return env


def run_portal(*args: str, config: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astroportal", *args, "--config", str(config)], cwd=UPSTREAM,
                          capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def ext(pg, tmp_path_factory):
    """A migrated database and a running portal with the sample extension: a namespace of what tests need."""
    root = tmp_path_factory.mktemp("extension")
    config = write_config(root / "config.yaml", pg.create_database("portal_extension"), free_port(), app=EXTENSION_APP)
    events = root / "events.jsonl"
    env = extension_env(events)
    assert run_portal("migrate", config=config, env=env).returncode == 0
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        server = Server(config)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    from astroportal import config as portal_config
    from astroportal.db import make_sessionmaker

    cfg = portal_config.load(config)
    ns = type("Ext", (), {})()
    ns.server, ns.url, ns.config, ns.events, ns.env, ns.cfg = server, server.url, config, events, env, cfg
    ns.db = make_sessionmaker(cfg)
    ns.admin_token = (root / "var" / "admin_token").read_text().strip()
    ns.log = root / "server.log"
    try:
        yield ns
    finally:
        server.stop()


def login(ext, username: str, role: str | None) -> requests.Session:
    """A browser-like session of a user with `role` (created here), through the debug login."""
    from astroportal.domain.accounts import create_user

    with ext.db() as s:
        create_user(s, username, [role] if role else [])
        s.commit()
    http = requests.Session()
    r = http.get(f"{ext.url}/debug_login", params={"username": username}, allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:300]
    return http


def token_for(ext, role: str) -> str:
    from astroportal.domain.accounts import create_token, create_user

    with ext.db() as s:
        user = create_user(s, f"tok-{uuid.uuid4().hex[:8]}", [role])
        _, token = create_token(s, user, "test")
        s.commit()
    return token


def role_acls(ext) -> dict[str, list[str]]:
    from sqlalchemy import text

    with ext.db() as s:
        rows = s.execute(text("SELECT role_id, acl_id FROM role_acls ORDER BY role_id, acl_id")).all()
    out: dict[str, list[str]] = {}
    for role, acl in rows:
        out.setdefault(role, []).append(acl)
    return out


def test_extension_routes_come_first_with_their_schemas_and_csp(ext):
    r = requests.get(ext.url + "/instruments", timeout=30)
    assert r.status_code == 200 and r.text == "sample instruments page"
    web = login(ext, f"web-{uuid.uuid4().hex[:6]}", "Full user")
    r = web.get(ext.url + "/sample/hello", timeout=30)
    assert r.status_code == 200 and 'id="sample-hello"' in r.text and "Sample Portal" in r.text
    assert r.headers["Content-Security-Policy"] == "default-src 'self'; img-src 'self' https://sky.example.org"
    assert web.get(ext.url + "/sources", timeout=30).headers["Content-Security-Policy"].startswith("default-src 'self'; script-src")
    doc = requests.get(ext.url + "/api/openapi.json", timeout=30).json()
    assert doc["info"]["title"] == "Sample Portal API"
    assert doc["components"]["schemas"]["SampleThing"]["properties"]["held"] == {"type": "boolean"}
    assert doc["paths"]["/api/sample/acl_check"]["get"]["x-acls"] == ["Sample ACL"]


def test_extra_acls_and_role_grants_are_in_the_database_and_enforced(ext):
    grants = role_acls(ext)
    assert "Sample ACL" in grants["Full user"] and "Other ACL" not in grants["Full user"]
    assert grants["Observer"] == ["Comment", "Other ACL"]
    assert {"Sample ACL", "Other ACL"} <= set(grants["Super admin"])
    assert "Sample ACL" not in grants.get("View only", [])
    status = requests.get(ext.url + "/api/sample/acl_check", headers={"Authorization": f"token {token_for(ext, 'View only')}"}, timeout=30)
    assert status.status_code == 403 and "Sample ACL" in status.json()["message"]
    ok = requests.get(ext.url + "/api/sample/acl_check", headers={"Authorization": f"token {token_for(ext, 'Full user')}"}, timeout=30)
    assert ok.status_code == 200 and ok.json()["data"] == {"held": True}
    vocabulary = json.loads(run_portal("vocabulary", config=ext.config, env=ext.env).stdout)
    assert "Observer" in vocabulary["roles"] and "Full user" in vocabulary["roles"]


def test_role_sync_is_idempotent_and_follows_the_configuration(ext, tmp_path):
    before = role_acls(ext)
    assert run_portal("bootstrap", config=ext.config, env=ext.env).returncode == 0
    assert run_portal("bootstrap", config=ext.config, env=ext.env).returncode == 0
    assert role_acls(ext) == before
    # The configuration is the record of every role it names: a grant taken out of it is withdrawn, the
    # portal's own ACLs included (a role holds exactly the portal's grants plus the configured ones).
    changed = yaml.safe_load(ext.config.read_text())
    changed["app"]["role_grants"] = {"Observer": ["Other ACL"]}
    other = tmp_path / "config.yaml"
    other.write_text(yaml.safe_dump(changed))
    try:
        result = run_portal("bootstrap", config=other, env=ext.env)
        assert result.returncode == 0, result.stderr
        after = role_acls(ext)
        assert "Sample ACL" not in after["Full user"]
        assert set(before["Full user"]) - {"Sample ACL"} == set(after["Full user"])
        assert after["Observer"] == ["Other ACL"]  # "Comment", granted before, is taken back
    finally:
        assert run_portal("bootstrap", config=ext.config, env=ext.env).returncode == 0
    assert role_acls(ext) == before
    # A grant of an ACL nobody declared is refused with the key and the way out.
    changed["app"]["role_grants"] = {"Full user": ["Solve images"]}
    other.write_text(yaml.safe_dump(changed))
    result = run_portal("bootstrap", config=other, env=ext.env)
    assert result.returncode == 2
    assert "app.role_grants.Full user" in result.stderr and "'Solve images'" in result.stderr
    assert "app.extra_acls" in result.stderr


def test_nav_entries_follow_the_viewers_acls(ext):
    member = login(ext, f"member-{uuid.uuid4().hex[:6]}", "Full user")
    text = member.get(ext.url + "/sample/hello", timeout=30).text
    assert '<a href="/sample/hello" data-nav-extra class="active" aria-current="page">Sample hello</a>' in text
    assert "Observers only" not in text
    observer = login(ext, f"observer-{uuid.uuid4().hex[:6]}", "Observer")
    text = observer.get(ext.url + "/sources", timeout=30).text
    assert '<a href="/sample/observers" data-nav-extra>Observers only</a>' in text
    assert '<a href="/sample/hello" data-nav-extra>Sample hello</a>' in text
    assert "Sample hello" not in requests.get(ext.url + "/login", timeout=30).text


def test_page_blocks_render_at_their_places_with_the_pages_context(ext):
    web = login(ext, f"blocks-{uuid.uuid4().hex[:6]}", "Full user")
    obj_id = unique("SMP")
    r = requests.post(ext.url + "/api/sources", json={"id": obj_id, "ra": 150.0, "dec": 2.5},
                      headers={"Authorization": f"token {ext.admin_token}"}, timeout=30)
    assert r.status_code == 200, r.text
    page = web.get(f"{ext.url}/source/{obj_id}", timeout=30).text
    header = page[page.index('class="page-header"'):page.index('class="grid two"')]
    assert f"Sample action for {obj_id}" in header
    panel = page.index('id="sample-source-panel"')
    assert panel > page.index('id="photometry-table"')
    assert f"{obj_id} at RA 150.000000" in page
    dash = web.get(ext.url + "/", timeout=30).text
    assert 'id="sample-dashboard-panel">Sample panel for blocks-' in dash
    cands = web.get(ext.url + "/candidates?pageNumber=3", timeout=30).text
    assert '<a id="sample-candidates-action" href="/sample/hello?page=3">' in cands
    assert '<div id="candidate-columns" hidden><template data-label="Sample column">' in cands


def test_a_missing_page_block_template_stops_the_app_naming_it(ext):
    import copy

    from astroportal.app import make_app

    bad = copy.deepcopy(ext.cfg)
    bad.path = ext.cfg.path
    bad["app"]["page_blocks"] = {"source.panels": ["no_such_panel.html"]}
    with pytest.raises(ep.ExtensionPointError, match=r"app\.page_blocks\.source\.panels: template 'no_such_panel.html'"):
        make_app(bad)
    bad["app"]["page_blocks"] = {"sauce.panels": []}
    with pytest.raises(ep.ExtensionPointError, match="unknown place 'sauce.panels'"):
        make_app(bad)
    bad["app"]["page_blocks"] = {}
    bad["app"]["nav_entries"] = [{"label": "x", "url": "javascript:alert(1)"}]
    with pytest.raises(ep.ExtensionPointError, match=r"app\.nav_entries\[0\]: `url` must be a path"):
        make_app(bad)


def test_contributed_commands(ext, tmp_path):
    result = run_portal("sample_echo", "--word", "hello", config=ext.config, env=ext.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello from Sample Portal"
    assert run_portal("sample_echo", "--word", "fail", config=ext.config, env=ext.env).returncode == 3
    help_text = subprocess.run([sys.executable, "-m", "astroportal", "--config", str(ext.config), "--help"],
                               cwd=UPSTREAM, capture_output=True, text=True, env=ext.env).stdout
    assert "sample_echo" in help_text and "print --word and the portal's title" in help_text
    missing = run_portal("sample_echo", config=ext.config, env=ext.env)
    assert missing.returncode == 2 and "--word" in missing.stderr
    clash = tmp_path / "clash.py"
    clash.write_text("from astroportal.extension_points import Command\n"
                     "COMMANDS = [Command(name='migrate', help='x', run=lambda a, c: 0)]\n")
    config = yaml.safe_load(ext.config.read_text())
    config["app"]["cli_modules"] = ["clash"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(ext.env, PYTHONPATH=str(tmp_path) + os.pathsep + ext.env["PYTHONPATH"])
    result = run_portal("vocabulary", config=path, env=env)
    assert result.returncode == 2 and "command 'migrate' is already a command of the portal" in result.stderr


# -- events ---------------------------------------------------------------------------------------------------------
def read_events(ext, after: int = 0) -> list[dict]:
    if not ext.events.exists():
        return []
    return [json.loads(line) for line in ext.events.read_text().splitlines()[after:]]


def wait_events(ext, after: int, count: int) -> list[dict]:
    deadline = time.time() + 10
    while time.time() < deadline:
        found = read_events(ext, after)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    return read_events(ext, after)


def api(ext, method: str, path: str, token: str, **kw):
    r = requests.request(method, ext.url + path, headers={"Authorization": f"token {token}"}, timeout=30, **kw)
    return r.status_code, r.json()


def test_api_writes_announce_events_after_commit(ext):
    from astroportal.models import Filter, Group, Instrument, Stream, Telescope
    from sqlalchemy import select

    token, tag = ext.admin_token, uuid.uuid4().hex[:6]
    with ext.db() as s:
        tel = Telescope(name=f"T {tag}", nickname=f"T-{tag}", diameter=1.0, lat=10.0, lon=10.0)
        s.add(tel)
        s.flush()
        inst = Instrument(name=f"I {tag}", type="imager", filters=["ztfg"], telescope_id=tel.id)
        group = Group(name=f"events-{tag}")
        stream = Stream(name=f"stream-{tag}")
        s.add_all([inst, group, stream])
        s.flush()
        filt = Filter(name=f"filter-{tag}", stream_id=stream.id, group_id=group.id)
        s.add(filt)
        s.commit()
        sitewide = s.scalar(select(Group.id).where(Group.name == "Sitewide Group"))
    start = len(read_events(ext))
    obj_id = unique("EVT")

    status, body = api(ext, "POST", "/api/sources", token, json={"id": obj_id, "ra": 10.0, "dec": -5.0,
                                                                  "group_ids": [sitewide]})
    assert status == 200, body
    [saved] = wait_events(ext, start, 1)
    assert saved["kind"] == "source.saved" and saved["obj_ids"] == [obj_id] and saved["group_ids"] == [sitewide]
    # Saved again to the same group: nothing new happened, nothing is announced.
    assert api(ext, "POST", "/api/sources", token, json={"id": obj_id, "group_ids": [sitewide]})[0] == 200

    status, body = api(ext, "POST", f"/api/sources/{obj_id}/comments", token, json={"text": "bright", "group_ids": [sitewide]})
    assert status == 200, body
    comment_id = body["data"]["comment_id"]
    point = {"obj_id": obj_id, "instrument_id": inst.id, "filter": "ztfg", "magsys": "ab", "mjd": [60000.1, 60000.2],
             "mag": [19.0, 19.5], "magerr": [0.1, 0.1], "limiting_mag": [21.0, 21.0], "group_ids": [sitewide]}
    status, body = api(ext, "POST", "/api/photometry", token, json=point)
    assert status == 200, body
    photometry_ids = body["data"]["ids"]
    candidate = {"id": obj_id, "filter_ids": [filt.id], "passed_at": "2026-01-02T03:04:05"}
    status, body = api(ext, "POST", "/api/candidates", token, json=candidate)
    assert status == 200, body
    candidate_ids = body["data"]["ids"]
    assert api(ext, "POST", "/api/candidates", token, json=candidate)[0] == 200  # the same pass again

    events = wait_events(ext, start, 4)
    assert [e["kind"] for e in events] == ["source.saved", "comment.added", "photometry.added", "candidate.passed"]
    comment, photometry, passed = events[1:]
    assert comment["ids"] == [comment_id] and comment["obj_ids"] == [obj_id] and comment["group_ids"] == [sitewide]
    assert photometry["ids"] == photometry_ids and photometry["obj_ids"] == [obj_id]
    assert photometry["group_ids"] == [sitewide]
    assert passed["ids"] == candidate_ids and passed["group_ids"] == [group.id]
    assert all(e["user_id"] == events[0]["user_id"] is not None for e in events)
    # The first subscriber failed on every event: logged, and the writes and the second subscriber went on.
    log = ext.log.read_text()
    assert "sample subscriber fails on comment.added" in log and "the write is kept" in log
    status, body = api(ext, "GET", f"/api/sources/{obj_id}/comments", token)
    assert status == 200 and [c["text"] for c in body["data"]] == ["bright"]


def test_list_forms_announce_what_the_single_forms_announce(ext):
    """A broker's batches (list bodies) reach subscribers like single writes: one source.saved per object newly
    saved, one candidate.passed per object and time of passing, one classification.added per new classification;
    nothing for what was already there."""
    from astroportal.models import Filter, Group, Stream
    from sqlalchemy import select

    token, tag = ext.admin_token, uuid.uuid4().hex[:6]
    with ext.db() as s:
        group, stream = Group(name=f"list-events-{tag}"), Stream(name=f"list-stream-{tag}")
        s.add_all([group, stream])
        s.flush()
        filt = Filter(name=f"list-filter-{tag}", stream_id=stream.id, group_id=group.id)
        s.add(filt)
        s.commit()
        sitewide = s.scalar(select(Group.id).where(Group.name == "Sitewide Group"))
    status, body = api(ext, "POST", "/api/taxonomy", token, json={
        "name": f"tax-{tag}", "version": "1", "group_ids": [sitewide],
        "hierarchy": {"class": "Transient", "subclasses": [{"class": "Kilonova"}]}})
    assert status == 200, body
    taxonomy = body["data"]["taxonomy_id"]
    a, b = unique("LST"), unique("LST")
    start = len(read_events(ext))

    sources = [{"id": a, "ra": 10.0, "dec": 1.0, "group_ids": [sitewide]},
               {"id": b, "ra": 11.0, "dec": 1.0, "group_ids": [sitewide, group.id]}]
    assert api(ext, "POST", "/api/sources", token, json=sources)[0] == 200
    passes = [{"id": o, "filter_ids": [filt.id], "passed_at": "2026-01-02T03:04:05"} for o in (a, b)]
    status, body = api(ext, "POST", "/api/candidates", token, json=passes)
    assert status == 200, body
    candidate_ids = [item["ids"] for item in body["data"]]
    status, body = api(ext, "POST", "/api/classification", token, json=[
        {"obj_id": o, "taxonomy_id": taxonomy, "classification": "Kilonova", "probability": 0.5,
         "group_ids": [sitewide]} for o in (a, b)])
    assert status == 200, body
    classification_ids = body["data"]["classification_ids"]
    # The same batches again: nothing new happened, nothing is announced.
    assert api(ext, "POST", "/api/sources", token, json=sources)[0] == 200
    assert api(ext, "POST", "/api/candidates", token, json=passes)[0] == 200

    events = wait_events(ext, start, 6)
    time.sleep(0.3)
    events = read_events(ext, start)
    assert [(e["kind"], e["obj_ids"]) for e in events] == [
        ("source.saved", [a]), ("source.saved", [b]), ("candidate.passed", [a]), ("candidate.passed", [b]),
        ("classification.added", [a]), ("classification.added", [b])]
    assert events[0]["group_ids"] == [sitewide] and events[1]["group_ids"] == sorted([sitewide, group.id])
    assert [e["ids"] for e in events[2:4]] == candidate_ids and events[2]["group_ids"] == [group.id]
    assert [e["ids"] for e in events[4:]] == [[i] for i in classification_ids]
    assert all(e["user_id"] == events[0]["user_id"] is not None for e in events)


def test_refused_writes_announce_nothing(ext):
    start = len(read_events(ext))
    obj_id = unique("EVT")
    token = ext.admin_token
    assert api(ext, "POST", "/api/sources", token, json={"id": obj_id, "ra": 10.0, "dec": -5.0})[0] == 200
    assert len(wait_events(ext, start, 1)) == 1
    # The photometry POST writes the batch, finds an existing point, and rolls back: nothing is announced.
    from astroportal.models import Instrument

    with ext.db() as s:
        inst_id = s.query(Instrument.id).order_by(Instrument.id).first()[0]
    point = {"obj_id": obj_id, "instrument_id": inst_id, "filter": "ztfg", "magsys": "ab", "mjd": 60001.0,
             "mag": 19.0, "magerr": 0.1, "limiting_mag": 21.0}
    assert api(ext, "POST", "/api/photometry", token, json=point)[0] == 200
    batch = dict(point, mjd=[60002.0, 60001.0], mag=[19.0, 19.0], magerr=[0.1, 0.1], limiting_mag=[21.0, 21.0])
    status, body = api(ext, "POST", "/api/photometry", token, json=batch)
    assert status == 400 and "already exist" in body["message"]
    assert api(ext, "POST", f"/api/sources/{obj_id}/comments", token, json={"text": ""})[0] == 400
    time.sleep(0.5)
    assert [e["kind"] for e in read_events(ext, start)] == ["source.saved", "photometry.added"]


REMEMBERED: list = []


def remember(event) -> None:
    """A subscriber for the test below (named in its configuration by dotted path)."""
    REMEMBERED.append(event)


def test_rolled_back_transactions_and_savepoints_announce_nothing(ext):
    """The mechanism itself, on a session of the configured kind: commit announces, rollback drops."""
    from sqlalchemy import text

    from astroportal import events
    from astroportal.extension_points import Event

    import copy

    from astroportal.db import make_sessionmaker

    seen = REMEMBERED
    seen.clear()
    cfg = copy.deepcopy(ext.cfg)
    cfg["app"]["event_subscribers"] = [f"{__name__}.remember"]
    db = make_sessionmaker(cfg)
    with db() as s:
        s.execute(text("SELECT 1"))
        events.record(s, Event("comment.added", obj_ids=("A",), ids=(1,)))
        s.rollback()
        assert seen == []
        s.execute(text("SELECT 1"))
        events.record(s, Event("comment.added", obj_ids=("B",), ids=(2,)))
        nested = s.begin_nested()
        events.record(s, Event("comment.added", obj_ids=("C",), ids=(3,)))
        nested.rollback()
        with s.begin_nested():
            events.record(s, Event("comment.added", obj_ids=("D",), ids=(4,)))
        assert seen == []  # nothing before the commit
        assert [e.obj_ids for e in events.pending(s)] == [("B",), ("D",)]
        s.commit()
        assert [e.obj_ids for e in seen] == [("B",), ("D",)]
        s.execute(text("SELECT 1"))
        events.record(s, Event("comment.added", obj_ids=("E",), ids=(5,)))
    # Closed without a commit: dropped.
    assert [e.obj_ids for e in seen] == [("B",), ("D",)]
    with pytest.raises(ValueError, match="not declared"):
        with db() as s:
            events.record(s, Event("comment.deleted"))


def test_candidates_columns_show_in_the_browser(ext, tmp_path):
    """A column of `candidates.columns` appears in the candidates table, filled per row, in real Chromium."""
    from datetime import datetime, timezone

    from test_browser import wait_js

    from astroportal.domain.accounts import create_user

    name = f"scanner-{uuid.uuid4().hex[:8]}"
    with ext.db() as s:
        uid = create_user(s, name, ["Full user"]).id
        s.commit()
    token, tag = ext.admin_token, uuid.uuid4().hex[:6]
    status, body = api(ext, "POST", "/api/streams", token, json={"name": f"stream-{tag}"})
    assert status == 200, body
    stream_id = body["data"]["id"]
    status, body = api(ext, "POST", "/api/groups", token, json={"name": f"scan-{tag}", "group_admins": [uid]})
    assert status == 200, body
    gid = body["data"]["id"]
    assert api(ext, "POST", f"/api/groups/{gid}/streams", token, json={"stream_id": stream_id})[0] == 200
    status, body = api(ext, "POST", "/api/filters", token, json={"name": f"f-{tag}", "stream_id": stream_id, "group_id": gid})
    assert status == 200, body
    obj_id = unique("COL")
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
    status, body = api(ext, "POST", "/api/candidates", token,
                       json={"id": obj_id, "ra": 12.0, "dec": 3.0, "filter_ids": [body["data"]["id"]], "passed_at": now})
    assert status == 200, body

    driver = browser(tmp_path / "chromium-profile")
    try:
        driver.get(f"{ext.url}/debug_login?username={name}")
        wait_js(driver, "return document.readyState === 'complete' && !!document.body.dataset.userId")
        driver.get(ext.url + "/candidates")
        row = f'#candidates-list tr[data-obj-id="{obj_id}"]'
        wait_js(driver, f"return !!document.querySelector('{row}')")
        headers = driver.execute_script(
            "return Array.from(document.querySelectorAll('#candidates-list th')).map(th => th.textContent)")
        assert headers[-1] == "Sample column"
        cell = driver.execute_script(
            f"const c = document.querySelector('{row}').lastElementChild;"
            "return [c.querySelector('.sample-cell').textContent, c.querySelector('.sample-ref').dataset.objId];")
        assert cell == [obj_id, obj_id]
    finally:
        driver.quit()


def browser(profile: Path):
    """A headless Chromium (Debian's chromium and chromium-driver) with a profile of its own."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    drv.set_page_load_timeout(60)
    return drv
