"""Production mode (`server.production: true`): what `run`, `restart` and `deploy` refuse to start with."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .config import Config, _leaves, read_file
from .errors import LauncherError
from .masking import is_secret

# Tracked files that may hold configuration: the layers, and any config*.yaml committed by mistake.
CONFIG_GLOBS = ("config*.yaml", "config*.yml", "*/config*.yaml", "*/config*.yml")


def tracked_files(root: Path) -> list[str] | None:
    """Files git tracks in the project (None when the project is not a git work tree)."""
    try:
        res = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", *CONFIG_GLOBS],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError:
        return None
    if res.returncode != 0:
        return None
    return [p for p in res.stdout.split("\0") if p]


def secrets_in_tracked_files(cfg: Config) -> list[str]:
    """'KEY in FILE' for every secret-looking key with a value in a configuration file git tracks."""
    root = cfg.project.root
    files = tracked_files(root)
    if files is None:  # not a git tree: the tracked layers are the two defaults files
        files = [str(p.relative_to(root)) for p in (cfg.project.upstream_defaults, cfg.project.distribution_defaults)]
    found = []
    for rel in sorted(set(files)):
        try:
            data = read_file(root / rel)
        except LauncherError:
            continue
        for key, value in _leaves(data, ""):
            if is_secret(key) and isinstance(value, (str, int, float)) and not isinstance(value, bool) \
                    and str(value) != "":
                found.append(f"{key} in {rel}")
    return found


def problems(cfg: Config) -> list[str]:
    """Why this configuration may not run in production mode (empty when it may, or when not in production)."""
    if not cfg.get("server.production"):
        return []
    out = []
    if cfg.get("server.auth.debug_login"):
        out.append(f"the debug login is on (server.auth.debug_login: true, set by "
                   f"{cfg.origin('server.auth.debug_login')}): anyone could log in as anyone; set it to false in "
                   "config.yaml and configure a login provider (server.auth.iam)")
    if not cfg.get("server.cookie_secret"):
        out.append("no cookie secret (server.cookie_secret): set a long random string in config.yaml (the same on "
                   "every app host), e.g. from `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`")
    for where in secrets_in_tracked_files(cfg):
        out.append(f"a secret is set in a tracked file: {where}; move it to config.yaml (git-ignored) or a "
                   "PORTAL__... environment variable, and remove it from git's history")
    return out


def check(cfg: Config) -> None:
    """Refuse to start in production mode with any of `problems`."""
    found = problems(cfg)
    if found:
        raise LauncherError("refusing to start in production mode (server.production: true):\n"
                            + "\n".join(f"  - {p}" for p in found), 2)
