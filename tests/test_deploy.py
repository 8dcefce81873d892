"""deploy, rollback, backup and restore on a running instance (real PostgreSQL, supervisord, two app processes).

The instance's upstream/ and extensions/ are copies, so that a test can add an upstream migration, a
distribution migration, or a broken module, and deploy them. Tests run in order on one instance and leave
its sources as they found them.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import psycopg2
import pytest
import requests
import yaml

from conftest import CODE_ROOT, Instance, migration_heads

pytestmark = pytest.mark.e2e

# New revisions of the test's own, chained on today's heads (which move as the project gains migrations).
UPSTREAM_HEAD, DIST_HEAD = migration_heads()

UPSTREAM_EXTRA = '''"""a table of the new upstream version"""
from alembic import op
import sqlalchemy as sa

revision = "u9001"
down_revision = "''' + UPSTREAM_HEAD + '''"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("upstream_extra", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("upstream_extra")
'''

DIST_EXTRA = '''"""a table of the distribution's branch"""
from alembic import op
import sqlalchemy as sa

revision = "d9001"
down_revision = "''' + DIST_HEAD + '''"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("distribution_extra", sa.Column("id", sa.Integer, primary_key=True))
{extra}

def downgrade() -> None:
    op.drop_table("distribution_extra")
'''
FAILING = '    op.execute("SELECT 1/0")  # fails after creating its table\n'


class DeployInstance(Instance):
    def __init__(self) -> None:
        super().__init__()
        for name in ("upstream", "extensions"):
            (self.root / name).unlink()
            shutil.copytree(CODE_ROOT / name, self.root / name,
                            ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc"))
        config = yaml.safe_load((self.root / "config.yaml").read_text())
        config["server"]["processes"] = 2
        config["launcher"] = {"backups_kept": 3}
        (self.root / "config.yaml").write_text(yaml.safe_dump(config))

    @property
    def db_url(self) -> str:
        return yaml.safe_load((self.root / "patched" / "config.yaml").read_text())["database"]["url"]

    def sql(self, query: str) -> list[tuple]:
        conn = psycopg2.connect(self.db_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(query)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def tables(self) -> set[str]:
        return {r[0] for r in self.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}

    def revisions(self) -> set[str]:
        return {r[0] for r in self.sql("SELECT version_num FROM alembic_version")}

    def marker(self) -> list[int]:
        return [r[0] for r in self.sql("SELECT value FROM deploy_marker ORDER BY value")]

    def answers_with_token(self) -> bool:
        token = (self.var / "admin_token").read_text().strip()
        sysinfo = requests.get(self.url + "/api/sysinfo", timeout=5)
        me = requests.get(self.url + "/api/internal/profile", headers={"Authorization": f"token {token}"},
                          timeout=5)
        return sysinfo.status_code == 200 and me.status_code == 200


@pytest.fixture(scope="module")
def inst():
    i = DeployInstance()
    res = i.run("run")
    assert res.returncode == 0, res.stderr
    i.sql("CREATE TABLE deploy_marker (value integer)")
    i.sql("INSERT INTO deploy_marker VALUES (1), (2)")
    yield i
    i.cleanup()


def add(inst: Instance, rel: str, text: str) -> Path:
    path = inst.root / rel
    path.write_text(text)
    return path


class Poller(threading.Thread):
    """GET /api/sysinfo every 50 ms, counting the answers and the failures."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.ok, self.failed, self.done = url, 0, [], False

    def run(self) -> None:
        while not self.done:
            try:
                r = requests.get(self.url + "/api/sysinfo", timeout=5)
                if r.status_code == 200:
                    self.ok += 1
                else:
                    self.failed.append(r.status_code)
            except requests.RequestException as exc:
                self.failed.append(type(exc).__name__)
            time.sleep(0.05)


def test_backup_and_restore_round_trip(inst):
    res = inst.run("backup")
    assert res.returncode == 0, res.stderr
    dump = Path(res.stdout.strip())
    assert dump.parent == inst.var / "backups" and dump.stat().st_mode & 0o077 == 0
    inst.sql("DELETE FROM deploy_marker WHERE value = 1")
    inst.sql("CREATE TABLE made_after_backup (id integer)")
    # No terminal, no --yes: refused, nothing changed.
    refused = inst.run("restore", str(dump))
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert inst.marker() == [2]
    res = inst.run("restore", dump.name, "--yes")
    assert res.returncode == 0, res.stderr
    assert inst.marker() == [1, 2]
    assert "made_after_backup" not in inst.tables()
    assert inst.answers_with_token()
    # Not a dump: refused before anything is dropped.
    bogus = add(inst, "not-a-dump.dump", "hello")
    res = inst.run("restore", str(bogus), "--yes")
    assert res.returncode == 2 and "not a pg_dump archive" in res.stderr
    assert inst.marker() == [1, 2]


def test_backups_kept(inst):
    for _ in range(4):
        assert inst.run("backup").returncode == 0
    assert len(list((inst.var / "backups").glob("*.dump"))) == 3  # launcher.backups_kept


def test_deploy_applies_both_branches_even_when_killed_half_way(inst):
    add(inst, "upstream/alembic/versions/u9001_upstream_extra.py", UPSTREAM_EXTRA)
    add(inst, "extensions/alembic/versions_distribution/d9001_distribution_extra.py", DIST_EXTRA.format(extra=""))
    killed = inst.run("deploy", env={"PORTAL_DEPLOY_KILL_AT": "swapped"})
    assert killed.returncode != 0
    assert {"upstream_extra", "distribution_extra"} <= inst.tables()  # it had migrated before it died
    poller = Poller(inst.url)
    poller.start()
    res = inst.run("deploy")
    poller.done = True
    poller.join()
    assert res.returncode == 0, res.stderr
    assert "finishing the deploy" in res.stderr
    assert {"u9001", "d9001"} == inst.revisions()
    assert inst.marker() == [1, 2]
    assert (inst.root / "patched/alembic/versions/u9001_upstream_extra.py").exists()
    assert inst.answers_with_token()
    state = json.loads((inst.var / "deploy.json").read_text())
    assert state["phase"] == "done" and Path(state["backup"]).exists()
    assert state["previous_build"] != state["new_build"]
    # Two app processes restarted one at a time: the port answered throughout.
    assert poller.ok > 0 and poller.failed == [], poller.failed


def test_rollback_returns_to_the_build_and_database_before_the_deploy(inst):
    res = inst.run("rollback", "--yes")
    assert res.returncode == 0, res.stderr
    assert not (inst.root / "patched/alembic/versions/u9001_upstream_extra.py").exists()
    assert not {"upstream_extra", "distribution_extra"} & inst.tables()
    assert "u9001" not in inst.revisions()
    assert inst.marker() == [1, 2]
    assert inst.answers_with_token()
    again = inst.run("rollback", "--yes")
    assert again.returncode == 1 and "nothing to roll back" in again.stderr
    (inst.root / "upstream/alembic/versions/u9001_upstream_extra.py").unlink()
    (inst.root / "extensions/alembic/versions_distribution/d9001_distribution_extra.py").unlink()


def test_failed_migration_leaves_database_and_portal_as_before(inst):
    before = inst.revisions()
    path = add(inst, "extensions/alembic/versions_distribution/d9001_distribution_extra.py",
               DIST_EXTRA.format(extra=FAILING))
    try:
        res = inst.run("deploy")
    finally:
        path.unlink()
    assert res.returncode != 0
    assert "failed while migrating" in res.stderr and "division by zero" in res.stderr
    assert str(inst.var / "log" / "deploy.log") in res.stderr
    assert inst.revisions() == before and "distribution_extra" not in inst.tables()
    assert inst.marker() == [1, 2]
    assert not (inst.root / "patched/alembic/versions_distribution/d9001_distribution_extra.py").exists()
    assert inst.answers_with_token()


def test_unhealthy_build_is_replaced_by_the_previous_one(inst):
    before = inst.revisions()
    migration = add(inst, "extensions/alembic/versions_distribution/d9001_distribution_extra.py",
                    DIST_EXTRA.format(extra=""))
    broken = add(inst, "extensions/astroportal/broken_handlers.py", 'raise RuntimeError("this build cannot serve")\n')
    config_file = inst.root / "config.yaml"
    config_text = config_file.read_text()
    config = yaml.safe_load(config_text)
    config["app"] = {"handler_modules": ["astroportal.broken_handlers"]}
    config_file.write_text(yaml.safe_dump(config))
    try:
        res = inst.run("deploy")
    finally:
        migration.unlink()
        broken.unlink()
        config_file.write_text(config_text)
    assert res.returncode != 0
    assert "deploy failed" in res.stderr and "app_0.log" in res.stderr
    assert inst.revisions() == before and "distribution_extra" not in inst.tables()
    assert inst.marker() == [1, 2]
    assert not (inst.root / "patched/astroportal/broken_handlers.py").exists()
    assert inst.answers_with_token()
    status = inst.run("status")
    assert status.returncode == 0, status.stdout
