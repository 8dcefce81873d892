"""Portal groups that follow the identity provider's groups claim, updated at every login.

A login pipeline step, named in config `server.auth.pipeline_extra`. The mapping is the backend's setting
`group_mapping` (for the IAM backend: `server.auth.iam.group_mapping`), from a provider group to one portal
group or a list of them:

    group_mapping:
      grandma-kilonova: Kilonova
      grandma-shifters: [Shifters, Kilonova]

The portal groups named in the mapping are managed by the provider: at each login the person is added to
those their claim maps to (groups that do not exist yet are created) and removed from the others. Groups
that no mapping names are never touched. The claim is the one the backend's `groups_key` setting names
(social-core's `social_details` step reads it, from the validated ID token or the userinfo answer).
"""

from __future__ import annotations

import logging
from typing import Any

from social_core.exceptions import AuthConfigurationError
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from ..models import Group, GroupUser
from ..permissions import SITEWIDE_GROUP

log = logging.getLogger("astroportal.auth.group_mapping")


def mapping_targets(backend: Any, mapping: Any) -> dict[str, list[str]]:
    """`group_mapping` checked and normalised to {provider group: [portal group, ...]}."""
    problem = None
    if not isinstance(mapping, dict):
        problem = "must map provider group names to portal group names"
    else:
        out: dict[str, list[str]] = {}
        for source, targets in mapping.items():
            names = [targets] if isinstance(targets, str) else targets
            if (
                not isinstance(source, str)
                or not source
                or not isinstance(names, list)
                or not names
                or any(not isinstance(n, str) or not n.strip() for n in names)
            ):
                problem = f"entry {source!r}: a portal group name or a list of them is needed"
                break
            if SITEWIDE_GROUP in names:
                problem = f"entry {source!r}: the {SITEWIDE_GROUP!r} holds everyone and cannot follow a claim"
                break
            out[source] = [n.strip() for n in names]
        if problem is None:
            return out
    raise AuthConfigurationError(
        backend,
        f"server.auth.{backend.name}.group_mapping: {problem}",
        code="invalid_setting",
        parameter="GROUP_MAPPING",
        stage="pipeline",
    )


def sync_mapped_groups(
    strategy: Any, backend: Any, user: Any = None, groups: list[str] | None = None, *args: Any, **kwargs: Any
) -> dict[str, Any] | None:
    """Bring the user's memberships of the mapped portal groups in line with the provider's groups claim."""
    if user is None:
        return None
    mapping = mapping_targets(backend, backend.setting("GROUP_MAPPING") or {})
    if not mapping:
        return None
    if groups is None:
        raise AuthConfigurationError(
            backend,
            f"server.auth.{backend.name}.group_mapping needs server.auth.{backend.name}.groups_key "
            "(the claim that lists the person's groups)",
            code="missing_setting",
            parameter="GROUPS_KEY",
            stage="pipeline",
        )
    session = strategy.session
    managed = {name for names in mapping.values() for name in names}
    wanted = {name for group in groups for name in mapping.get(group, [])}

    # Concurrent first logins may create the same group: the database decides, nobody fails.
    for name in sorted(wanted):
        session.execute(insert(Group).values(name=name).on_conflict_do_nothing(index_elements=["name"]))
    rows = {g.name: g for g in session.scalars(select(Group).where(Group.name.in_(managed)))}
    personal = sorted(name for name, g in rows.items() if g.single_user_group)
    if personal:
        raise AuthConfigurationError(
            backend,
            f"server.auth.{backend.name}.group_mapping names a person's own group: {', '.join(personal)}",
            code="invalid_setting",
            parameter="GROUP_MAPPING",
            stage="pipeline",
        )

    member_of = set(
        session.scalars(
            select(GroupUser.group_id).where(
                GroupUser.user_id == user.id, GroupUser.group_id.in_([g.id for g in rows.values()])
            )
        )
    )
    added = sorted(name for name in wanted if rows[name].id not in member_of)
    removed = sorted(name for name in managed - wanted if name in rows and rows[name].id in member_of)
    for name in added:
        session.execute(
            insert(GroupUser)
            .values(group_id=rows[name].id, user_id=user.id, admin=False, can_save=True)
            .on_conflict_do_nothing(index_elements=["group_id", "user_id"])
        )
    if removed:
        session.execute(
            delete(GroupUser).where(
                GroupUser.user_id == user.id, GroupUser.group_id.in_([rows[name].id for name in removed])
            )
        )
    session.flush()
    # The user's relationships may have been loaded before these statements ran.
    session.expire(user, ["group_users"])
    if added or removed:
        log.info("groups of %s from %s's claim: added %s, removed %s", user.username, backend.name,
                 ", ".join(added) or "none", ", ".join(removed) or "none")
    return {"mapped_groups": sorted(wanted)}
