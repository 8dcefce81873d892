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
