"""Admin commands: token, set_user_role and load_data (the portal's YAML loader over HTTP)."""

from __future__ import annotations

import os
from pathlib import Path

from . import config as configmod
from . import datacheck, portal
from .config import Config
from .errors import LauncherError, info


def token_path(cfg: Config) -> Path:
    """bootstrap.token_file, relative to paths.var (as the portal resolves it)."""
    p = Path(str(cfg.get("bootstrap.token_file") or "admin_token"))
    return p if p.is_absolute() else cfg.var_dir / p


def token(cfg: Config) -> str:
    path = token_path(cfg)
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        raise LauncherError(f"no admin token yet ({path} does not exist): ./run.sh run creates it on first start") \
            from None
    if not value:
        raise LauncherError(f"{path} is empty: remove it and restart (./run.sh restart) to get a new token")
    return value


def set_user_role(cfg: Config, user: str | None, role: str | None, list_: bool) -> str:
    if list_:
        args = ["set_user_role", "--list"]
    else:
        if not user or not role:
            raise LauncherError("set_user_role: give --user NAME and --role ROLE, or --list", 2)
        args = ["set_user_role", "--user", user, "--role", role]
    res = portal.run(cfg, *args, capture=True, what="set_user_role")
    return res.stdout


def data_files(cfg: Config) -> list[Path]:
    """The distribution's data: every data/*.yaml (and *.yml); load_data orders them by their references.

    Files in subfolders of data/ are not loaded on their own: they are there for `{file: ...}` includes.
    """
    data = cfg.project.data
    if not data.is_dir():
        return []
    return sorted(p for p in data.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def resolve_files(cfg: Config, names: list[str]) -> list[Path]:
    out = []
    for name in names:
        p = Path(name)
        candidates = [p] if p.is_absolute() else [Path.cwd() / p, cfg.project.data / p]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            looked = ", ".join(str(c.parent) for c in candidates)
            raise LauncherError(f"load_data: no such file: {name} (looked in {looked})", 2)
        out.append(found.resolve())
    return out


def load_data(cfg: Config, names: list[str] | None) -> int:
    """Load the named files (default: the distribution's data/) through the running portal; return how many."""
    files = resolve_files(cfg, names) if names else data_files(cfg)
    if not files:
        info(f"load_data: {cfg.project.data} holds no *.yaml file: nothing to load")
        return 0
    for f in files:  # a YAML error names the file and line before anything is sent
        configmod.parse_yaml(f.read_text(encoding="utf-8"), str(f))
    files = datacheck.check_files(cfg, files)  # every problem at once, and nothing sent; definitions first
    if not portal.answers(cfg):
        raise LauncherError("load_data sends the data through the portal's API, and the portal is not running: "
                            "./run.sh run first")
    info(f"load_data: loading {', '.join(os.path.relpath(f) for f in files)}")
    portal.run(cfg, "load_data", *[str(f) for f in files], what="load_data")
    return len(files)
