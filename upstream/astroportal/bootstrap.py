"""First start: roles and ACLs, the sitewide group, and an initial admin with an API token in a private file."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

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


def provision(session: Session) -> None:
    """Create missing ACLs and roles (and give each role exactly its ACLs), and the sitewide group."""
    acls = {a.id: a for a in session.scalars(select(ACL))}
    for name in ACLS:
        if name not in acls:
            acls[name] = ACL(id=name)
            session.add(acls[name])
    session.flush()
    roles = {r.id: r for r in session.scalars(select(Role))}
    for name, acl_names in ROLES.items():
        role = roles.get(name) or Role(id=name)
        # Exactly the listed ACLs: an ACL a portal's role no longer grants (Group admin's former "Manage
        # telescopes") is taken back from databases made before.
        role.acls = [acls[a] for a in acl_names]
        session.add(role)
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


def bootstrap(cfg: Config) -> bool:
    """Provision the database; create the initial admin and its token file when missing. Return True if created."""
    created = False
    with session_scope(cfg) as session:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        provision(session)
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
    return created
