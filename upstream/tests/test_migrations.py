"""Only Alembic creates the schema: from empty to head, one step down and back, and no drift from the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from conftest import write_config, free_port


@pytest.fixture()
def fresh(pg, tmp_path):
    from astroportal import config as portal_config

    url = pg.create_database("migrations_test")
    return portal_config.load(write_config(tmp_path / "c.yaml", url, free_port()))


def tables(cfg) -> set[str]:
    from astroportal.db import engine_url

    engine = create_engine(engine_url(cfg.get("database.url")))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def schema(cfg) -> set[tuple]:
    """Every table's columns with their types, and its indexes: enough to see that a migration step did something."""
    from astroportal.db import engine_url

    engine = create_engine(engine_url(cfg.get("database.url")))
    try:
        insp = inspect(engine)
        out: set[tuple] = set()
        for table in insp.get_table_names():
            out |= {(table, c["name"], str(c["type"])) for c in insp.get_columns(table)}
            out |= {(table, "index", i["name"]) for i in insp.get_indexes(table)}
        return out
    finally:
        engine.dispose()


def drift(cfg) -> list:
    from astroportal.db import engine_url
    from astroportal.models import Base

    engine = create_engine(engine_url(cfg.get("database.url")))
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_from_empty_then_down_one_step_and_back(fresh):
    from astroportal import migrations

    assert tables(fresh) == set()
    heads = migrations.script_heads(fresh)
    assert migrations.upgrade(fresh) == heads
    created = tables(fresh)
    full = schema(fresh)
    assert {"objs", "sources", "photometry", "users", "groups", "tokens", "alembic_version"} <= created

    (head,) = heads
    previous = ScriptDirectory.from_config(migrations.alembic_config(fresh)).get_revision(head).down_revision
    migrations.downgrade(fresh, "-1")
    assert migrations.current_revisions(fresh) == ({previous} if previous else set())
    if previous is None:
        # Below the first revision nothing of the portal's schema is left, not even its enum type.
        assert tables(fresh) == {"alembic_version"}
    else:
        # The step down undid something: a table, a column's type or an index (a revision may change only those).
        assert schema(fresh) != full

    assert migrations.upgrade(fresh) == heads
    assert tables(fresh) == created and schema(fresh) == full


def test_models_and_migrations_do_not_drift(fresh):
    from astroportal import migrations

    migrations.upgrade(fresh)
    assert drift(fresh) == []


def test_check_migrated_names_the_missing_revision(fresh):
    from astroportal import migrations

    with pytest.raises(migrations.UnmigratedDatabase) as err:
        migrations.check_migrated(fresh)
    assert "python -m astroportal migrate" in str(err.value)


def test_a_branch_that_depends_on_the_portal_counts_as_migrated(fresh, tmp_path):
    """A deployment's own branch (database.migration_locations) depending on the portal's head: Alembic records
    only the branch's tip, and the serve-time check must still see every revision as applied."""
    from astroportal import migrations

    versions = tmp_path / "branch_versions"
    versions.mkdir()
    (versions / "b0001_branch.py").write_text(
        'revision = "b0001"\ndown_revision = None\nbranch_labels = ("mybranch",)\ndepends_on = "0001"\n\n'
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
    )
    fresh["database"]["migration_locations"] = [str(versions)]
    with pytest.raises(migrations.UnmigratedDatabase) as err:
        migrations.check_migrated(fresh)
    assert "0001" in str(err.value) and "b0001" in str(err.value)
    migrations.upgrade(fresh)
    assert "b0001" in migrations.current_revisions(fresh)
    migrations.check_migrated(fresh)  # does not raise
    assert migrations.pending_revisions(fresh) == []


def test_migrate_answers_json_with_heads_applied_and_current(pg, tmp_path):
    import json

    from conftest import portal

    path = write_config(tmp_path / "c.yaml", pg.create_database("migrate_json"), free_port())
    # --dry-run says what is pending and applies nothing.
    dry = json.loads(portal("migrate", "--json", "--dry-run", config=path).stdout)
    assert dry["current"] == [] and dry["upgraded"] == [] and set(dry["heads"]) <= set(dry["pending"])
    assert json.loads(portal("migrate", "--json", "--dry-run", config=path).stdout)["current"] == []
    first = json.loads(portal("migrate", "--json", config=path).stdout)
    assert first["heads"] and set(first["heads"]) <= set(first["applied"])
    assert first["current"] == first["heads"] and first["pending"] == []
    assert first["upgraded"] == first["applied"]  # from empty: everything was applied by this run
    again = json.loads(portal("migrate", "--json", config=path).stdout)
    assert again["upgraded"] == [] and again["applied"] == first["applied"]
    # Without --json, the line a person reads.
    assert portal("migrate", config=path).stdout.startswith("database at revision(s): ")

