"""The embedded PostgreSQL: created under var/, loopback and password only, data kept across restarts;
an external database when the config names one; migrations incl. the distribution's own branch."""

import os
import pwd
import shutil
import socket
import stat
import sys

import psycopg2
import pytest
import yaml

from conftest import CODE_ROOT, Tree, free_port, launcher, link_real_layers, migration_heads, private_tmpdir

sys.path.insert(0, str(CODE_ROOT))
from launcher import config as launcher_config  # noqa: E402
from launcher import database  # noqa: E402
from launcher.paths import Project  # noqa: E402


class DbProject:
    def __init__(self) -> None:
        self.base = private_tmpdir("portal-db-")
        self.root = self.base / "project"
        link_real_layers(self.root)
        self.port = free_port()
        (self.root / "config.yaml").write_text(yaml.safe_dump(
            {"database": {"embedded": {"port": self.port, "settings": {"fsync": False}}}}))
        self.var = self.root / "var"

    def run(self, *args, **kw):
        return launcher(self.root, *args, **kw)

    def embedded(self, **env) -> database.Embedded:
        cfg = launcher_config.load(Project(self.root), env={**env})
        return database.Embedded(cfg)

    def url(self, **env) -> str:
        """database.url as the launcher derives it for the portal (the embedded cluster, with its password)."""
        return launcher_config.load(Project(self.root), env={**env}).get("database.url")


@pytest.fixture(scope="module")
def dbp():
    p = DbProject()
    yield p
    p.embedded().stop()
    shutil.rmtree(p.base, ignore_errors=True)


def test_migrate_creates_the_cluster_and_the_schema(dbp):
    res = dbp.run("migrate")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith("database at revision(s): ") and migration_heads()[0] in res.stdout
    assert "creating the embedded PostgreSQL cluster" in res.stderr
    pgdata = dbp.var / "pgdata"
    assert (pgdata / "PG_VERSION").exists()
    st = os.stat(pgdata)
    assert stat.S_IMODE(st.st_mode) == 0o700
    if os.geteuid() == 0:
        assert st.st_uid == pwd.getpwnam("postgres").pw_uid
    assert stat.S_IMODE(os.stat(dbp.var / "db-credentials.yaml").st_mode) == 0o600
    # started for the command only: nothing left running
    assert not dbp.embedded().running()
    # a second run finds everything in place
    res = dbp.run("migrate")
    assert res.returncode == 0 and "creating" not in res.stderr and "0001" in res.stdout


def test_data_is_kept_across_restarts_and_access_is_loopback_with_password(dbp):
    db = dbp.embedded()
    assert db.ensure() is True
    try:
        conn = psycopg2.connect(dbp.url())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS keepme (v text)")
            cur.execute("INSERT INTO keepme VALUES ('still here')")
            cur.execute("SHOW listen_addresses")
            assert cur.fetchone()[0] == "127.0.0.1"
            # The portal's role may switch the per-row foreign-key triggers off for its batch photometry
            # writes (which lock what they refer to instead), and is no superuser.
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone()[0] is False
            cur.execute("SET session_replication_role = replica")
            cur.execute("RESET session_replication_role")
        conn.close()
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(host="127.0.0.1", port=db.port, user=db.user, password="wrong", dbname=db.name)
    finally:
        db.stop()
    assert not db.running()
    db.start()
    try:
        conn = psycopg2.connect(dbp.url())
        with conn.cursor() as cur:
            cur.execute("SELECT v FROM keepme")
            assert cur.fetchall() == [("still here",)]
        conn.close()
    finally:
        db.stop()


def test_database_port_in_use_is_a_clear_error(dbp):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", dbp.port))
        s.listen()
        res = dbp.run("migrate")
    assert res.returncode == 1
    assert f"port {dbp.port}" in res.stderr and "database.embedded.port" in res.stderr
    assert not dbp.embedded().running()


def _version_rows(url: str) -> set[str]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def test_migrate_applies_upstreams_head_and_the_distributions_branch_idempotently(dbp):
    """extensions/alembic/versions_distribution/ opens the branch `distribution` (d0000) beside upstream's chain."""
    base = (CODE_ROOT / "extensions/alembic/versions_distribution/d0000_distribution_base.py").read_text()
    assert 'branch_labels = ("distribution",)' in base and 'depends_on = "0001"' in base
    env = {"PORTAL__DATABASE__EMBEDDED__NAME": "headsdb"}
    res = dbp.run("migrate", env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "database at revision(s): {}, {}".format(*migration_heads())
    # `upgrade heads` again: nothing to do, same heads
    res = dbp.run("migrate", env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "database at revision(s): {}, {}".format(*migration_heads())
    db = dbp.embedded(**env)
    db.ensure()
    try:
        # Alembic records each branch's tip; upstream's 0001 alone would be held through d0000's dependency on it.
        head, branch = migration_heads()
        assert _version_rows(dbp.url(**env)) == ({branch} if head == "0001" else {head, branch})
    finally:
        db.stop()


def test_distribution_branch_migration_is_applied(dbp, tmp_path):
    """A migration added to extensions/alembic/versions_distribution/ runs on the distribution's branch."""
    root = dbp.base / "branch-project"
    root.mkdir()
    for name in ("upstream", "services", "config.defaults.yaml", "config.yaml"):
        os.symlink(dbp.root / name, root / name)
    shutil.copytree(CODE_ROOT / "extensions", root / "extensions", symlinks=False)
    (root / "extensions/alembic/versions_distribution/d9001_branch_probe.py").write_text(
        '"""Probe of the distribution branch."""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        'revision = "d9001"\ndown_revision = "' + migration_heads()[1] + '"\n'
        'branch_labels = None\ndepends_on = None\n\n\n'
        'def upgrade():\n    op.create_table("branch_probe", sa.Column("id", sa.Integer, primary_key=True))\n\n\n'
        'def downgrade():\n    op.drop_table("branch_probe")\n'
    )
    env = {"PORTAL_VAR": str(dbp.var), "PORTAL__DATABASE__EMBEDDED__NAME": "branchdb"}
    res = launcher(root, "migrate", env=env)
    assert res.returncode == 0, res.stderr
    # the branch's head moved on; upstream's stays its own head
    assert res.stdout.strip() == f"database at revision(s): {migration_heads()[0]}, d9001"
    db = dbp.embedded(PORTAL__DATABASE__EMBEDDED__NAME="branchdb")
    db.ensure()
    try:
        conn = psycopg2.connect(dbp.url(PORTAL__DATABASE__EMBEDDED__NAME="branchdb"))
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('branch_probe') IS NOT NULL, to_regclass('users') IS NOT NULL")
            assert cur.fetchone() == (True, True)
        conn.close()
        head = migration_heads()[0]
        assert _version_rows(dbp.url(PORTAL__DATABASE__EMBEDDED__NAME="branchdb")) == (
            {"d9001"} if head == "0001" else {head, "d9001"})
    finally:
        db.stop()


def test_external_database_named_by_config_is_used_and_left_alone(dbp):
    db = dbp.embedded()
    db.ensure()
    try:
        conn = db.connect_admin()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS external_probe")
            cur.execute("CREATE DATABASE external_probe")
        conn.close()
        url = f"postgresql://postgres:{db.creds['superuser_password']}@127.0.0.1:{db.port}/external_probe"
        env = {"PORTAL__DATABASE__URL": url}
        res = dbp.run("config", "database.url", env=env)
        assert res.stdout.strip().endswith("# env PORTAL__DATABASE__URL")
        res = dbp.run("migrate", env=env)
        assert res.returncode == 0, res.stderr and "0001" in res.stdout
        assert "embedded" not in res.stderr
        # stop does not touch a server it does not own
        res = dbp.run("stop", env=env)
        assert res.returncode == 1 and "nothing is running" in res.stderr
        assert db.running()
    finally:
        db.stop()


def test_unreachable_external_database_is_a_clear_error(dbp):
    url = f"postgresql://nobody:pw@127.0.0.1:{free_port()}/nothing"
    res = dbp.run("migrate", env={"PORTAL__DATABASE__URL": url})
    assert res.returncode == 1
    assert "cannot reach the database" in res.stderr and "env PORTAL__DATABASE__URL" in res.stderr
    assert ":pw@" not in res.stderr


def test_as_root_a_project_the_postgres_user_cannot_reach_runs_without_a_chmod(tmp_path):
    """pytest's tmp dirs are 0700 root's, as a clone under /root: the cluster goes where postgres can reach it."""
    if os.geteuid() != 0:
        pytest.skip("only root hands the cluster to the postgres user")
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) & 0o001 == 0
    root = tmp_path / "project"
    link_real_layers(root)
    port = free_port()
    (root / "config.yaml").write_text(yaml.safe_dump({
        "server": {"port": port},
        "database": {"embedded": {"port": free_port(), "settings": {"fsync": False}}}}))
    var = root / "var"
    home = database.cluster_home(var)
    try:
        res = launcher(root, "run")
        assert res.returncode == 0, res.stderr
        assert "chmod" not in res.stderr and f"the cluster goes to {home}" in res.stderr
        assert res.stdout.strip() == f"http://127.0.0.1:{port}"
        # var/pgdata leads to the cluster, which the postgres user owns; the caller's directories are unchanged.
        assert (var / "pgdata").is_symlink() and (var / "pgdata" / "PG_VERSION").exists()
        assert os.stat(home / "pgdata").st_uid == pwd.getpwnam("postgres").pw_uid
        assert stat.S_IMODE(os.stat(tmp_path).st_mode) & 0o001 == 0
        assert "database system is ready" in launcher(root, "log", "postgresql", "-n", "100").stdout
        assert launcher(root, "stop").returncode == 0
        # Again, from the cluster it made: same place, data kept.
        res = launcher(root, "migrate")
        assert res.returncode == 0 and "creating the embedded PostgreSQL cluster" not in res.stderr, res.stderr
    finally:
        launcher(root, "stop")
        shutil.rmtree(home, ignore_errors=True)


def test_missing_server_binaries_are_a_clear_error(tmp_path):
    t = Tree(tmp_path / "nobin")
    t.write("upstream/config.defaults.yaml", f"server:\n  port: {free_port()}\n")
    t.write("config.defaults.yaml", f"database:\n  embedded:\n    port: {free_port()}\n    bindir: null\n")
    t.write("upstream/pkg/x.py", "")
    res = t.run("migrate", env={"PORTAL__DATABASE__EMBEDDED__BINDIR": str(tmp_path / "nothing"),
                                "PORTAL__DATABASE__EMBEDDED__PORT": str(free_port())})
    assert res.returncode == 1 and "server binaries (initdb, pg_ctl) not found" in res.stderr


# -- where the server binaries come from ----------------------------------------------------------------------
def _fake_package(site, name: str, bindir: str | None) -> None:
    """A package importable from `site`; with `bindir`, holding fake initdb and pg_ctl (PostgreSQL 16) there."""
    pkg = site / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    if bindir:
        put_fake_server(pkg / bindir)


def put_fake_server(bindir) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in ("initdb", "pg_ctl"):
        (bindir / tool).write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) 16.2'\n")
        (bindir / tool).chmod(0o755)


@pytest.fixture
def bare_machine(tmp_path, monkeypatch):
    """No pg_ctl on PATH, no Debian directories, and packages named like the pip servers that hold none
    (they shadow any real one): the machine as find_bindir sees it with nothing installed."""
    monkeypatch.setenv("PATH", "")
    site = tmp_path / "site"
    for name in ("pgserver", "postgresql"):
        _fake_package(site, name, None)
    monkeypatch.syspath_prepend(str(site))
    return site, tmp_path / "no-system-postgresql"


def test_a_pip_installed_pgserver_is_found_when_nothing_else_is(bare_machine):
    site, no_system = bare_machine
    put_fake_server(site / "pgserver/pginstall/bin")
    assert database.candidate_bindirs(None, system_root=no_system) == [site / "pgserver/pginstall/bin"]
    assert database.find_bindir(None, "16", install=None, system_root=no_system) == site / "pgserver/pginstall/bin"


def test_system_binaries_come_before_the_pip_package_newest_first(bare_machine, tmp_path):
    site, _ = bare_machine
    put_fake_server(site / "pgserver/pginstall/bin")
    system = tmp_path / "usr-lib-postgresql"
    for major in ("13", "15"):
        put_fake_server(system / major / "bin")
    assert database.candidate_bindirs(None, system_root=system) == [
        system / "15/bin", system / "13/bin", site / "pgserver/pginstall/bin"]
    # a configured directory is the only one looked at
    assert database.candidate_bindirs(str(system / "13/bin"), system_root=system) == [system / "13/bin"]


def test_with_nothing_found_the_launcher_installs_pgserver_once_and_uses_it(bare_machine):
    site, no_system = bare_machine
    calls = []

    def install():  # what `pip install pgserver` leaves in the environment
        calls.append(1)
        put_fake_server(site / "pgserver/pginstall/bin")

    assert database.find_bindir(None, install=install, system_root=no_system) == site / "pgserver/pginstall/bin"
    assert calls == [1]
    # found from now on: no second install
    assert database.find_bindir(None, install=install, system_root=no_system) == site / "pgserver/pginstall/bin"
    assert calls == [1]


def test_with_nothing_found_the_message_says_exactly_what_to_install(bare_machine):
    _, no_system = bare_machine
    assert database.candidate_bindirs(None, system_root=no_system) == []
    for install in (None, lambda: None):  # never installing, or an install that provided nothing
        with pytest.raises(database.LauncherError) as err:
            database.find_bindir(None, install=install, system_root=no_system)
        message = str(err.value)
        assert "server binaries (initdb, pg_ctl) not found" in message
        assert "`apt-get install postgresql`" in message
        assert f"`{os.path.dirname(sys.executable)}/pip install pgserver`" in message
        assert "database.embedded.bindir" in message
