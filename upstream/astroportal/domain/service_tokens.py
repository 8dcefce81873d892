"""Service accounts: a bot user per service, holding exactly the ACLs the service declares, and its API token.

A service (a broker client, a notice listener, ...) talks to the portal over HTTP with a token of its own,
never an administrator's. Its bot user gets the ACLs as direct grants (no role), so that what it may do is
exactly the list it asked for and shows as such in the users API (`acls`, `roles: []`, `is_bot: true`).
Running the same request again brings the bot back to exactly that list and those groups (adding and
removing), so narrowing a service's ACLs is one more run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..models import ACL, Group, GroupUser, Token, User
from ..permissions import SITEWIDE_GROUP
from ..validate import NAME_MAX
from . import checks
from .accounts import create_token, create_user, hash_token

TOKEN_NAME = "service token"


def _names(value: Any, field: str) -> list[str]:
    """A list of non-empty names (duplicates dropped, order kept); 400 naming `field` otherwise."""
    items = checks.str_list({field: value}, field)
    return [] if items is checks.MISSING else items


def _acl_rows(session: Session, names: list[str]) -> list[ACL]:
    rows = list(session.scalars(select(ACL).where(ACL.id.in_(names))))
    unknown = [n for n in names if n not in {r.id for r in rows}]
    if unknown:
        known = ", ".join(sorted(session.scalars(select(ACL.id)))) or "none (run `python -m astroportal bootstrap`)"
        raise ApiError(400, f"`acls`: unknown ACL(s) {unknown}; known ACLs: {known}")
    return rows


def _group_rows(session: Session, names: list[str], create: bool) -> tuple[list[Group], set[int]]:
    """The named groups, and the ids of those created here (with `create`: a service's own groups, named in its
    configuration, new on its first run); without `create` an unknown name is refused."""
    rows = list(session.scalars(select(Group).where(Group.name.in_(names), Group.single_user_group.is_(False))))
    known = {g.name for g in rows}
    unknown = [n for n in names if n not in known]
    if unknown and not create:
        raise ApiError(400, f"`groups`: no group named {unknown}; create the group(s) first (POST /api/groups), "
                            "or leave them out")
    taken = set(session.scalars(select(Group.name).where(Group.name.in_(names), Group.single_user_group.is_(True))))
    if taken:
        raise ApiError(400, f"`groups`: {sorted(taken)} name(s) a user's own group; choose other group names")
    created = []
    for name in names:
        if name not in known:
            if len(name) > NAME_MAX:
                raise ApiError(400, f"`groups`: a group name has at most {NAME_MAX} characters, got {len(name)}")
            group = Group(name=name, nickname=name[:32])
            session.add(group)
            created.append(group)
    session.flush()
    return rows + created, {g.id for g in created}


def ensure_service_user(
    session: Session, name: str, acls: list[str], groups: list[str], *, create_groups: bool = False
) -> tuple[User, bool]:
    """Create, or bring back to exactly `acls` and `groups`, the bot user `name`; return it and whether it
    was created. Nothing is committed: the caller does.

    The bot keeps its own group and the sitewide group; it is taken out of any other group not named. A named
    group that does not exist is refused, or with `create_groups` created with the bot as its admin (a service's
    own group, on its first run).
    A user of that name who is not a bot is refused (a person's account never becomes a service's).
    """
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name.strip()):
        raise ApiError(400, f"`name`: a service name is one word without spaces, got {name!r}")
    name = name.strip()
    acl_rows = _acl_rows(session, acls)
    group_rows, new_groups = _group_rows(session, groups, create_groups)
    user = session.scalar(select(User).where(User.username == name))
    created = user is None
    if created:
        user = create_user(session, name, [], is_bot=True)
    elif not user.is_bot:
        raise ApiError(400, f"`name`: {name!r} is a person's account, not a service's bot; choose another name")
    # Direct grants only: a role would carry ACLs the service did not ask for (and roles change over time).
    user.roles = []
    user.extra_acls = acl_rows
    user.forget_acls()
    own = session.scalar(select(Group.id).where(Group.name == name, Group.single_user_group.is_(True)))
    sitewide = session.scalar(select(Group.id).where(Group.name == SITEWIDE_GROUP))
    keep = {g.id for g in group_rows} | ({own, sitewide} - {None})
    session.execute(delete(GroupUser).where(GroupUser.user_id == user.id, GroupUser.group_id.not_in(keep)))
    have = set(session.scalars(select(GroupUser.group_id).where(GroupUser.user_id == user.id)))
    for g in group_rows:
        if g.id not in have:
            # A group made here is the service's own (as if it had created it: its creator administers it, so
            # that a "Manage groups" grant lets it set up the group's filters); another group it only joins.
            session.add(GroupUser(group_id=g.id, user_id=user.id, admin=g.id in new_groups, can_save=True))
    session.flush()
    return user, created


def _answer(user: User) -> dict[str, Any]:
    return {"user_id": user.id, "username": user.username, "acls": sorted(a.id for a in user.extra_acls)}


def service_token_from_api(session: Session, data: dict) -> dict:
    """`POST /api/service_tokens` {name, acls, groups?}: the bot with exactly those ACLs, and a new token.

    The token text is in this answer only (the database keeps its hash); the bot's earlier tokens stay valid
    until revoked (DELETE /api/internal/tokens/ID), so a service running with one is not cut off.
    """
    checks.unknown_fields(data, {"name", "acls", "groups"})
    name = checks.text(data, "name", required=True, nullable=False)
    if "acls" not in data:
        raise ApiError(400, "missing required field `acls` (the list of ACLs the service's bot holds; may be [])")
    acls = _names(data["acls"], "acls")
    groups = _names(data.get("groups", []), "groups")
    with checks.unique_conflict(session, f"`name`: a user or group named {name!r} was created at the same time"):
        user, _ = ensure_service_user(session, name, acls, groups)
        _, text = create_token(session, user, TOKEN_NAME)
        session.commit()
    return {**_answer(user), "token": text}


def _token_still_valid(session: Session, user: User, path: Path) -> bool:
    """True when `path` holds a token that authenticates as `user` today."""
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, IsADirectoryError, PermissionError, UnicodeDecodeError):
        return False
    if not text:
        return False
    owner = session.scalar(select(Token.created_by_id).where(Token.token_hash == hash_token(text)))
    return owner == user.id


def service_token_to_file(
    session: Session, name: str, acls: list[str], groups: list[str], output: Path, *, create_groups: bool = False
) -> dict:
    """The command line's way (`python -m astroportal service_token`): ensure the bot as above and keep a
    token of it in `output` (mode 0600). A token already in the file that still authenticates as the bot
    is kept, so that a running service is not cut off; otherwise a new one is written.

    Returns {"user_id", "username", "acls", "created"}; commits.
    """
    from ..bootstrap import provision, write_private

    # The ACL rows come from bootstrap; provisioning (idempotent) lets this run on a just-migrated database.
    provision(session)
    user, created = ensure_service_user(session, name, _names(acls, "acls"), _names(groups, "groups"),
                                        create_groups=create_groups)
    if not _token_still_valid(session, user, output):
        _, text = create_token(session, user, TOKEN_NAME)
        # Written before the commit: should the write fail, the token is rolled back with the rest.
        write_private(output, text + "\n")
    output.chmod(0o600)
    session.commit()
    return {**_answer(user), "created": created}
