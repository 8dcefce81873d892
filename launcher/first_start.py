"""A first start that is ready to use: `run` on a new database does what `run --init` does.

"New" is decided by the portal itself: `python -m astroportal bootstrap --json` (run on every start; the
portal's processes run it too) answers `new_database: true` when the database held no user before it. Then
`run` loads data/ once the portal answers, as `--init` does. Until that load has succeeded, the marker file
var/first-start.pending stays, so a first start that failed half-way (data/ with an error, an app that did
not start) is finished by the next `run`; afterwards a plain `run` loads nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import admin, portal
from .config import Config
from .errors import LauncherError, info


def marker(cfg: Config) -> Path:
    return cfg.var.first_start_marker


def bootstrap(cfg: Config) -> bool:
    """Provision the database and the initial admin (idempotent); True when this is a first start: a new
    database, or an earlier first start that did not finish."""
    res = portal.run(cfg, "bootstrap", "--json", capture=True, what="bootstrap")
    try:
        answer = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise LauncherError(f"`python -m astroportal bootstrap --json` did not answer with its JSON line: "
                            f"{res.stdout.strip()[:200]!r}") from None
    if answer.get("created_admin"):
        info(f"bootstrap: created the initial admin (its token: ./run.sh token, file {answer.get('token_file')})")
    if answer.get("new_database"):
        marker(cfg).write_text("data/ is loaded on the next run (the first start did not finish)\n")
        info("first start on a new database: the initial admin, the services' tokens and data/ (as run --init)")
        return True
    if marker(cfg).exists():
        info(f"finishing the first start that did not complete ({marker(cfg)}): loading data/ again")
        return True
    return False


def check_data(cfg: Config) -> list[Path]:
    """Check data/ before anything starts (the portal's own dry run) and return its files; a problem says how
    the first start gets finished."""
    files = admin.data_files(cfg)
    if not files:
        info(f"load_data: {cfg.project.data} holds no *.yaml file: nothing to load")
        return []
    try:
        return admin.validate_data(cfg, files)
    except LauncherError as exc:
        raise LauncherError(f"{exc}\nfix data/, then ./run.sh run again: it finishes the first start",
                            exc.status) from None


def finished(cfg: Config) -> None:
    """The first start is complete: later plain runs load nothing."""
    marker(cfg).unlink(missing_ok=True)
