"""Alembic, driven from the portal's configuration: upgrade, current revision, and the serve-time check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from . import extension_points as ep
from .config import Config
from .db import get_engine

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


class UnmigratedDatabase(Exception):
    """The database schema is not at the head revision(s) of the migration scripts."""


def alembic_config(cfg: Config) -> AlembicConfig:
    """An Alembic configuration whose version locations are upstream's plus `database.migration_locations`."""
    ac = AlembicConfig()
    ac.set_main_option("script_location", str(ALEMBIC_DIR))
    locations = [str(ALEMBIC_DIR / "versions")] + [str(p) for p in ep.MIGRATION_LOCATIONS.paths(cfg)]
    # The path separator option lets locations contain spaces.
    ac.set_main_option("path_separator", "os")
    ac.set_main_option("version_locations", __import__("os").pathsep.join(locations))
    ac.set_main_option("sqlalchemy.url", cfg.get("database.url").replace("%", "%%"))
    ac.attributes["portal_config"] = cfg
    return ac


def script_heads(cfg: Config) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(cfg)).get_heads())


def current_revisions(cfg: Config) -> set[str]:
    with get_engine(cfg).connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def upgrade(cfg: Config, target: str = "heads") -> set[str]:
    """Apply pending migrations; return the heads the database is at afterwards."""
    command.upgrade(alembic_config(cfg), target)
    return applied_heads(cfg)


def downgrade(cfg: Config, target: str) -> set[str]:
    command.downgrade(alembic_config(cfg), target)
    return current_revisions(cfg)


def _as_tuple(value) -> tuple[str, ...]:
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def applied_revisions(script: ScriptDirectory, current: set[str]) -> set[str]:
    """Every revision the database holds: the recorded ones and all they stand on, dependencies included.

    Alembic records only the tips: a branch that depends on another branch's revision keeps that revision out
    of alembic_version although it is applied.
    """
    applied: set[str] = set()
    stack = list(current)
    while stack:
        rev = script.get_revision(stack.pop())
        if rev is None or rev.revision in applied:
            continue
        applied.add(rev.revision)
        stack.extend(_as_tuple(rev.down_revision))
        stack.extend(script.get_revision(dep).revision for dep in _as_tuple(rev.dependencies))
    return applied


def pending_revisions(cfg: Config) -> list[str]:
    """The revisions of the migration scripts that the database does not hold yet."""
    script = ScriptDirectory.from_config(alembic_config(cfg))
    applied = applied_revisions(script, current_revisions(cfg))
    return sorted(rev.revision for rev in script.walk_revisions() if rev.revision not in applied)


def applied_heads(cfg: Config) -> set[str]:
    """The heads of the migration scripts that the database holds (what a person expects `migrate` to report)."""
    script = ScriptDirectory.from_config(alembic_config(cfg))
    applied = applied_revisions(script, current_revisions(cfg))
    return {head for head in script.get_heads() if head in applied}


def state(cfg: Config) -> dict[str, list[str]]:
    """Where the database stands, for `migrate --json`: the scripts' heads, the revisions recorded in
    alembic_version (current), every revision the database holds (applied), and those it lacks (pending)."""
    script = ScriptDirectory.from_config(alembic_config(cfg))
    current = current_revisions(cfg)
    applied = applied_revisions(script, current)
    every = {rev.revision for rev in script.walk_revisions()}
    return {"heads": sorted(script.get_heads()), "current": sorted(current), "applied": sorted(applied),
            "pending": sorted(every - applied)}


def check_migrated(cfg: Config) -> None:
    """Raise UnmigratedDatabase unless every migration script is applied to the database."""
    pending = pending_revisions(cfg)
    if pending:
        current = current_revisions(cfg)
        raise UnmigratedDatabase(
            f"the database is at revision(s) {', '.join(sorted(current)) or '(empty)'} and lacks "
            f"{', '.join(pending)}; run `python -m astroportal migrate` first"
        )
