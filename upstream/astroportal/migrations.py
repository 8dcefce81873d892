"""Alembic, driven from the portal's configuration: upgrade, current revision, and the serve-time check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .config import Config
from .db import get_engine

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


class UnmigratedDatabase(Exception):
    """The database schema is not at the head revision(s) of the migration scripts."""


def alembic_config(cfg: Config) -> AlembicConfig:
    """An Alembic configuration whose version locations are upstream's plus `database.migration_locations`."""
    ac = AlembicConfig()
    ac.set_main_option("script_location", str(ALEMBIC_DIR))
    locations = [str(ALEMBIC_DIR / "versions")]
    base = cfg.path.parent if cfg.path else Path.cwd()
    for loc in cfg.get("database.migration_locations") or []:
        p = Path(loc)
        locations.append(str(p if p.is_absolute() else (base / p).resolve()))
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
    """Apply pending migrations; return the revisions the database is at afterwards."""
    command.upgrade(alembic_config(cfg), target)
    return current_revisions(cfg)


def downgrade(cfg: Config, target: str) -> set[str]:
    command.downgrade(alembic_config(cfg), target)
    return current_revisions(cfg)


def check_migrated(cfg: Config) -> None:
    """Raise UnmigratedDatabase unless the database is at every head of the migration scripts."""
    current, heads = current_revisions(cfg), script_heads(cfg)
    if current != heads:
        missing = ", ".join(sorted(heads - current)) or "none"
        raise UnmigratedDatabase(
            f"the database is at revision(s) {', '.join(sorted(current)) or '(empty)'} but the code expects "
            f"{', '.join(sorted(heads))} (missing: {missing}); run `python -m astroportal migrate` first"
        )
