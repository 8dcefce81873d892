"""Where things are: the project root and the directories the launcher reads and writes.

PORTAL_ROOT names another project root (upstream/, extensions/, services/, data/, the config files,
patched/); PORTAL_VAR another runtime directory. Tests use both to run beside a developer's instance.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

LAUNCHER_DIR = Path(__file__).resolve().parent
CODE_ROOT = LAUNCHER_DIR.parent


@dataclass(frozen=True)
class Project:
    """The directories of one project instance (all absolute)."""

    root: Path

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Project":
        env = os.environ if env is None else env
        root = Path(env.get("PORTAL_ROOT") or CODE_ROOT).absolute()
        return cls(root)

    @property
    def upstream(self) -> Path:
        return self.root / "upstream"

    @property
    def extensions(self) -> Path:
        return self.root / "extensions"

    @property
    def services(self) -> Path:
        return self.root / "services"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def patched(self) -> Path:
        return self.root / "patched"

    @property
    def patched_staging(self) -> Path:
        """Where `deploy` builds and checks the new tree before swapping it with patched/."""
        return self.root / "patched.staging"

    @property
    def patched_rollback(self) -> Path:
        """The build a deploy replaced, kept for `rollback` (beside patched/: swapped back with one rename)."""
        return self.root / "patched.rollback"

    @property
    def patched_config(self) -> Path:
        return self.patched / "config.yaml"

    @property
    def upstream_defaults(self) -> Path:
        return self.upstream / "config.defaults.yaml"

    @property
    def distribution_defaults(self) -> Path:
        return self.root / "config.defaults.yaml"

    @property
    def local_config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def python(self) -> Path:
        """The interpreter of the environment the launcher runs in (.venv): the portal shares it."""
        return Path(sys.executable)

    @property
    def venv_bin(self) -> Path:
        return Path(sys.executable).parent


ADMIN_TOKEN = "admin_token"  # upstream's default bootstrap.token_file, relative to var/


@dataclass(frozen=True)
class VarLayout:
    """The runtime directory (var/ or PORTAL_VAR) and everything kept in it: defined here and nowhere else.

    Nothing here creates anything: the commands that need a directory or a file make it when they need it.
    """

    root: Path

    @property
    def pgdata(self) -> Path:
        """The embedded PostgreSQL cluster (or, as root, a link to where the postgres user can reach it)."""
        return self.root / "pgdata"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def run(self) -> Path:
        """Sockets, pid files, the assembled supervisord.conf and the lifecycle lock."""
        return self.root / "run"

    @property
    def tokens(self) -> Path:
        """Each service's API token, var/tokens/NAME.token (0600)."""
        return self.root / "tokens"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def first_start_marker(self) -> Path:
        """Present while a first start has not loaded data/ yet (launcher/first_start.py)."""
        return self.root / "first-start.pending"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    @property
    def deploy_state(self) -> Path:
        """What the last deploy did: its phase, the build it replaced, its backup (read by rollback and a rerun)."""
        return self.root / "deploy.json"

    @property
    def deploy_log(self) -> Path:
        """The log of the last deploy's steps (the portal's migrate output included)."""
        return self.log / "deploy.log"

    @property
    def nginx_dir(self) -> Path:
        """Where `./run.sh nginx` writes the site by default."""
        return self.root / "nginx"

    @property
    def systemd_dir(self) -> Path:
        """Where `./run.sh systemd` writes the unit and the logrotate file by default."""
        return self.root / "systemd"

    @property
    def cursors(self) -> Path:
        """Where services keep their place in a stream (the broker client's offsets)."""
        return self.root / "cursors"

    @property
    def db_credentials(self) -> Path:
        """Generated passwords of the embedded cluster (0600)."""
        return self.root / "db-credentials.yaml"

    @property
    def cookie_secret(self) -> Path:
        """The portal's generated cookie secret, when server.cookie_secret is not configured."""
        return self.root / "cookie_secret"

    @property
    def postgres_socket(self) -> Path:
        return self.run / "postgresql"

    @property
    def postgres_log(self) -> Path:
        return self.log / "postgresql.log"

    @property
    def supervisor_conf(self) -> Path:
        return self.run / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.run / "supervisor.sock"

    @property
    def supervisor_pid(self) -> Path:
        return self.run / "supervisord.pid"

    @property
    def supervisor_log(self) -> Path:
        return self.log / "supervisord.log"

    @property
    def supervisor_start_log(self) -> Path:
        """supervisord's own early errors (before it logs to supervisor_log)."""
        return self.log / "supervisord.start.log"

    @property
    def lifecycle_lock(self) -> Path:
        """flock'ed by run, stop, restart and the commands that start the database for a while."""
        return self.run / "lifecycle.lock"
