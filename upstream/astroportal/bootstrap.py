"""First start: roles and ACLs, the sitewide group, and an initial admin with an API token in a private file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from . import extension_points as ep
from .config import Config
from .db import session_scope
from .domain.accounts import create_token, create_user
from .models import ACL, Group, Role, User
from .permissions import ACLS, ROLES, SITEWIDE_GROUP

# Any constant shared by the portal's processes serialises concurrent bootstraps.
_LOCK_KEY = 0x61737472


def token_file(cfg: Config) -> Path:
    p = Path(cfg.get("bootstrap.token_file") or "admin_token")
    return p if p.is_absolute() else cfg.var_dir / p


def configured_permissions(cfg: Config | None) -> tuple[list[str], dict[str, list[str]]]:
    """(the deployment's own ACLs, {role: ACLs it is granted}) from `app.extra_acls` and `app.role_grants`,
    checked: a grant must name a known ACL. Super admin is granted every extra ACL."""
    if cfg is None:
        return [], {}
    extra = ep.EXTRA_ACLS.names(cfg)
    grants_raw = ep.ROLE_GRANTS.read(cfg)
    if not isinstance(grants_raw, dict):
        raise ep.ExtensionPointError(f"{ep.ROLE_GRANTS.name}: expected a mapping of role to ACL names, got {grants_raw!r}")
    known = set(ACLS) | set(extra)
    grants: dict[str, list[str]] = {}
    for role, names in grants_raw.items():
        names = [names] if isinstance(names, str) else (names or [])
        if not isinstance(role, str) or not role.strip() or not isinstance(names, list):
            raise ep.ExtensionPointError(f"{ep.ROLE_GRANTS.name}: {role!r}: expected a role name and a list of ACLs")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ep.ExtensionPointError(
                f"{ep.ROLE_GRANTS.name}.{role}: unknown ACL(s) {unknown}; declare the deployment's own in "
                f"{ep.EXTRA_ACLS.name} (the portal's: {', '.join(ACLS)})"
            )
        grants[role.strip()] = list(dict.fromkeys(names))
    grants["Super admin"] = list(dict.fromkeys(grants.get("Super admin", []) + extra))
    return extra, grants


def provision(session: Session, cfg: Config | None = None) -> None:
    """Create missing ACLs and roles (and give each portal role exactly its ACLs), and the sitewide group.

    With `cfg`, the deployment's ACLs and grants too (app.extra_acls, app.role_grants): for its own ACLs the
    configuration is the record, so a grant it no longer lists is withdrawn; the portal's roles hold exactly
    their ACLs (an ACL a role no longer grants is taken back from databases made before).
    """
    extra, grants = configured_permissions(cfg)
    acls = {a.id: a for a in session.scalars(select(ACL))}
    for name in list(ACLS) + extra:
        if name not in acls:
            acls[name] = ACL(id=name)
            session.add(acls[name])
    session.flush()
    roles = {r.id: r for r in session.scalars(select(Role))}
    wanted = {name: list(acl_names) for name, acl_names in ROLES.items()}
    for name, acl_names in grants.items():
        wanted[name] = list(dict.fromkeys(wanted.get(name, []) + acl_names))
    for name, acl_names in wanted.items():
        role = roles.get(name) or Role(id=name)
        roles[name] = role
        # Exactly the listed ACLs: an ACL a portal's role no longer grants (Group admin's former "Manage
        # telescopes") is taken back from databases made before.
        role.acls = [acls[a] for a in acl_names]
        session.add(role)
    for role in roles.values():
        withdrawn = [a for a in role.acls if a.id in extra and a.id not in wanted.get(role.id, [])]
        if withdrawn:
            role.acls = [a for a in role.acls if a not in withdrawn]
    if session.scalar(select(Group.id).where(Group.name == SITEWIDE_GROUP)) is None:
        session.add(Group(name=SITEWIDE_GROUP, nickname="sitewide", description="Data shared with every user"))
    session.flush()


def write_private(path: Path, content: str) -> None:
    """Write `content` to a file only its owner can read, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Bootstrapped:
    """What bootstrap found and did."""

    created_admin: bool
    # No user at all before this run: a database nobody has started the portal on yet.
    new_database: bool


def bootstrap(cfg: Config) -> Bootstrapped:
    """Provision the database; create the initial admin and its token file when missing."""
    created = False
    with session_scope(cfg) as session:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        new_database = session.scalar(select(User.id).limit(1)) is None
        provision(session, cfg)
        name = cfg.get("bootstrap.admin_username") or "admin"
        admin = session.scalar(select(User).where(User.username == name))
        path = token_file(cfg)
        if admin is None:
            admin = create_user(session, name, ["Super admin"])
            created = True
        if created or not path.exists():
            # The stored hash cannot be turned back into a token: a lost file means a new token.
            _, token = create_token(session, admin, "initial admin token")
            write_private(path, token + "\n")
    return Bootstrapped(created_admin=created, new_database=new_database)
