"""Admin commands: token, set_user_role and load_data, each driving the portal's own command."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import portal
from .config import Config
from .errors import LauncherError, info
from .paths import ADMIN_TOKEN

MAX_SHOWN = 50  # problems listed by load_data; the rest are counted


def token_path(cfg: Config) -> Path:
    """bootstrap.token_file, relative to paths.var (as the portal resolves it)."""
    p = Path(str(cfg.get("bootstrap.token_file") or ADMIN_TOKEN))
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


def set_user_role(cfg: Config, user: str | None, role: str | None, list_: bool, force: bool = False) -> str:
    """The portal's `set_user_role` with the same arguments: the portal checks them and answers."""
    args = ["set_user_role"]
    if list_:
        args.append("--list")
    if user is not None:
        args += ["--user", user]
    if role is not None:
        args += ["--role", role]
    if force:
        args.append("--force")
    return portal.run(cfg, *args, capture=True, what="set_user_role").stdout


def data_files(cfg: Config) -> list[Path]:
    """The distribution's data: every data/*.yaml (and *.yml); the portal's loader orders them by their references.

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


def validate_data(cfg: Config, files: list[Path]) -> list[Path]:
    """The portal's `load_data --dry-run --json` on `files`: return them in load order, or raise naming every
    problem (file, line, entry, field). Nothing is written and no running portal is needed."""
    res = portal.run(cfg, "load_data", "--dry-run", "--json", *[str(f) for f in files], capture=True,
                     what="checking the data files (load_data --dry-run)", ok_codes=(0, 1))
    try:
        answer = json.loads(res.stdout)
        problems = [p["text"] for p in answer["problems"]]
        ordered = [Path(f) for f in answer["files"]]
    except (ValueError, KeyError, TypeError):
        raise LauncherError("the portal's `load_data --dry-run --json` did not answer its JSON object: "
                            f"{(res.stdout or res.stderr).strip()[:300]!r}") from None
    if problems:
        shown = problems[:MAX_SHOWN]
        more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        raise LauncherError(
            f"the data files have {len(problems)} problem(s); nothing was loaded:\n  " + "\n  ".join(shown) + more, 2
        )
    return ordered


def load_data(cfg: Config, names: list[str] | None, dry_run: bool = False, validated: bool = False) -> int:
    """Validate, then load the named files (default: the distribution's data/) through the running portal.

    `validated`: the files were checked already (run --init checks them before starting anything).
    Returns how many files were loaded (or would be, for a dry run).
    """
    files = resolve_files(cfg, names) if names else data_files(cfg)
    if not files:
        info(f"load_data: {cfg.project.data} holds no *.yaml file: nothing to load")
        return 0
    if not validated:
        files = validate_data(cfg, files)  # every problem at once, and nothing sent
    if dry_run:
        info(f"load_data: {len(files)} file(s) checked, no problem found; nothing was loaded (--dry-run)")
        return len(files)
    if not portal.answers(cfg):
        raise LauncherError("load_data sends the data through the portal's API, and the portal is not running: "
                            "./run.sh run first")
    info(f"load_data: loading {', '.join(os.path.relpath(f) for f in files)}")
    portal.run(cfg, "load_data", *[str(f) for f in files], what="load_data")
    return len(files)
