"""`./run.sh migrate`: Alembic, through the portal, on upstream's chain and the distribution's branch.

The portal reads its version directories from `database.migration_locations` (the distribution's
branch lives in extensions/alembic/versions_distribution/, built to patched/alembic/versions_distribution/).
"""

from __future__ import annotations

import json

from . import portal
from .config import Config
from .errors import LauncherError, info


def migrate(cfg: Config, answer: bool = False) -> dict:
    """Apply pending migrations; say "database at revision(s): ..." (on stdout when it is the command's
    `answer`, else with the progress on stderr) and return the portal's JSON answer
    ({"heads", "current", "applied", "pending", "upgraded"}: lists of revisions)."""
    info("migrate: applying pending migrations")
    res = portal.run(cfg, "migrate", "--json", capture=True, what="migrate")
    try:
        state = json.loads(res.stdout)
        heads, applied = list(state["heads"]), set(state["applied"])
    except (ValueError, KeyError, TypeError):
        raise LauncherError("the portal's `migrate --json` did not answer its JSON object: "
                            f"{res.stdout.strip()[:300]!r}") from None
    if state["upgraded"]:
        info(f"migrate: applied {', '.join(state['upgraded'])}")
    at = [h for h in heads if h in applied]
    line = "database at revision(s): " + (", ".join(sorted(at)) or "(empty)")
    if answer:
        print(line, flush=True)
    else:
        info(line)
    return state
