"""Each service's own API token: a bot user holding exactly the ACLs its `service.yaml` declares.

A service folder may hold `service.yaml`:

    acls: [Upload data, Classify]              # exactly the ACLs its bot user gets
    groups_key: services.broker.group_names    # optional: dotted config key listing the groups it joins

For every enabled service that declares ACLs, `run` and `restart` have the portal create (or bring back to
exactly those ACLs and groups) the bot user named like the service and keep its token in
var/tokens/NAME.token (0600), through the portal's own command (`python -m astroportal service_token`);
a token still valid is kept, so a running service is never cut off. The program file hands the path over
with the placeholder {token_file}. No service is ever given the admin's token.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import config as configmod
from . import portal
from .config import Config
from .errors import LauncherError, info

SERVICE_FILE = "service.yaml"
KEYS = {"acls", "groups_key"}


@dataclass(frozen=True)
class Declaration:
    """What a service asks of the portal in its service.yaml."""

    acls: list[str]
    groups_key: str | None


def tokens_dir(cfg: Config) -> Path:
    return cfg.var.tokens


def token_path(cfg: Config, name: str) -> Path:
    """Where the token of service `name` is kept: var/tokens/NAME.token."""
    return tokens_dir(cfg) / f"{name}.token"


def declaration(service_dir: Path) -> Declaration | None:
    """The service's service.yaml, checked; None when it has none or declares no ACL (then: no token)."""
    path = service_dir / SERVICE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = configmod.parse_yaml(text, str(path))
    if data is None:
        return None
    if not isinstance(data, dict):
        raise LauncherError(f"{path}: expected a mapping such as `acls: [Upload data]`, got {type(data).__name__}", 2)
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise LauncherError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})", 2)
    acls = data.get("acls") or []
    if not isinstance(acls, list) or not all(isinstance(a, str) and a.strip() for a in acls):
        raise LauncherError(
            f"{path}: `acls` must be a list of ACL names such as [Upload data, Classify], got {acls!r}", 2)
    groups_key = data.get("groups_key")
    if groups_key is not None and (not isinstance(groups_key, str) or not groups_key.strip()):
        raise LauncherError(f"{path}: `groups_key` must be a dotted configuration key, got {groups_key!r}", 2)
    if not acls:
        return None
    return Declaration([a.strip() for a in acls], groups_key.strip() if groups_key else None)


def group_names(cfg: Config, name: str, decl: Declaration) -> list[str]:
    """The groups the service's bot joins: the list at its `groups_key` (none without one)."""
    if decl.groups_key is None:
        return []
    key = decl.groups_key
    if not cfg.has(key):
        raise LauncherError(f"services/{name}/{SERVICE_FILE}: groups_key {key!r} names no configuration key; "
                            f"set it (a list of group names, or []) in config.yaml", 2)
    value = cfg.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(g, str) and g.strip() for g in value):
        raise LauncherError(f"{key}: expected a list of group names for the service {name}, got {value!r} "
                            f"(set by {cfg.origin(key)})", 2)
    return [g.strip() for g in value]


def declared_services(cfg: Config) -> dict[str, Declaration]:
    """Every enabled service that declares ACLs."""
    from .supervisor import enabled_services

    out = {}
    for name, service_dir in enabled_services(cfg).items():
        decl = declaration(service_dir)
        if decl is not None:
            out[name] = decl
    return out


def ensure_tokens(cfg: Config) -> list[str]:
    """Bring every enabled service's bot to its declared ACLs and groups and keep its token file; return the
    names. The database must be up and migrated."""
    services = declared_services(cfg)
    if not services:
        return []
    directory = tokens_dir(cfg)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    for name, decl in services.items():
        groups = group_names(cfg, name, decl)
        args = ["service_token", name, "--acls", *decl.acls, "--output", str(token_path(cfg, name))]
        if groups:
            # The groups of the service's configuration are its own: made on its first run, the bot their admin.
            args += ["--groups", *groups, "--create-groups"]
        try:
            res = portal.run(cfg, *args, capture=True, what="creating its token")
        except LauncherError as exc:
            raise LauncherError(f"the service {name} (services/{name}/{SERVICE_FILE}): {exc}", exc.status) from None
        try:
            answer = json.loads(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise LauncherError(f"`python -m astroportal service_token {name}` did not answer with its JSON line: "
                                f"{res.stdout.strip()[:200]!r}") from None
        info(f"service token: {name} ({'new bot user' if answer.get('created') else 'bot user'} "
             f"{answer.get('user_id')}, ACLs: {', '.join(answer.get('acls') or [])}"
             + (f"; groups: {', '.join(groups)}" if groups else "") + f") -> {token_path(cfg, name)}")
    return list(services)


def placeholder(cfg: Config, name: str, service_dir: Path, where: str) -> str:
    """The value of {token_file} in service `name`'s program file: its token file, which must exist.

    Computed only for a program that uses the placeholder, so that other services need no service.yaml.
    """
    if declaration(service_dir) is None:
        raise LauncherError(f"{where}: {{token_file}} is used, but the service {name} declares no ACL, so it has no "
                            f"token: declare them in services/{name}/{SERVICE_FILE} (`acls: [Upload data, ...]`)", 2)
    path = token_path(cfg, name)
    if not path.is_file():
        raise LauncherError(f"{where}: {{token_file}}: the token of the service {name} ({path}) does not exist yet: "
                            "./run.sh run or ./run.sh restart creates it", 2)
    return str(path)
