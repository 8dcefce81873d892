"""`./run.sh migrate`: Alembic, through the portal, on upstream's chain and the distribution's branch.

The portal reads its version directories from `database.migration_locations` (the distribution's
branch lives in extensions/alembic/versions_distribution/, built to patched/alembic/versions_distribution/).
"""

from __future__ import annotations

from . import portal
from .config import Config
from .errors import info


def migrate(cfg: Config) -> str:
    """Apply pending migrations; print and return the portal's "database at revision(s): ..." line."""
    info("migrate: applying pending migrations")
    res = portal.run(cfg, "migrate", capture=True, what="migrate")
    line = next((l for l in res.stdout.splitlines() if l.startswith("database at revision")), res.stdout.strip())
    print(line, flush=True)
    return line
