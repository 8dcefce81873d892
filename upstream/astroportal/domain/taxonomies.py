"""Taxonomies: named, versioned trees of classes that classifications must come from, shared with groups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.orm import Session

from ..errors import ApiError, forbidden
from ..models import Classification, Group, Taxonomy, User, classification_groups, taxonomy_groups
from .access import accessible_group_ids, administers_all, target_group_ids
from ..validate import check_string, shown

TAXONOMY_FIELDS = {"name", "hierarchy", "version", "provenance", "group_ids", "isLatest"}
# A node's keys: the tree itself, plus the descriptive keys of tdtax (SkyPortal's default taxonomy).
NODE_KEYS = {"class", "subclasses", "tags", "other names", "url"}


# -- the hierarchy tree ----------------------------------------------------------------------------
def validate_hierarchy(node: Any, path: str = "hierarchy") -> list[str]:
    """Check a tree of {"class": str, "subclasses": [...]} nodes; return its class names in tree order.

    Nodes may also carry tdtax's descriptive `tags`, `other names` and `url`.

    A malformed node gives a 400 naming its path (for example `hierarchy.subclasses[1].subclasses[0]`),
    so that the author of a large tree can find the mistake. A class name used twice is refused too: a
    classification names its class alone, so the tree must not be ambiguous.
    """
    names: list[str] = []
    seen: dict[str, str] = {}
    # Iterative walk: a deeply nested tree must not exhaust Python's recursion limit.
    stack: list[tuple[Any, str]] = [(node, path)]
    while stack:
        current, where = stack.pop()
        if not isinstance(current, dict):
            raise ApiError(400, f"`{where}` must be an object {{\"class\": ..., \"subclasses\": [...]}}, got {current!r:.80}")
        extra = sorted(set(current) - NODE_KEYS)
        if extra:
            raise ApiError(400, f"`{where}` has unknown key(s) {extra}; a node may have {sorted(NODE_KEYS)}")
        for key in ("tags", "other names"):
            value = current.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ApiError(400, f"`{where}.{key}` must be a list of strings, got {value!r:.80}")
        if current.get("url") is not None and not isinstance(current["url"], str):
            raise ApiError(400, f"`{where}.url` must be a string, got {current['url']!r:.80}")
        name = current.get("class")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, f"`{where}.class` must be a non-empty string, got {name!r:.80}")
        if name in seen:
            raise ApiError(400, f"`{where}.class`: class {shown(name)} already appears at `{seen[name]}`")
        seen[name] = where
        names.append(name)
        subclasses = current.get("subclasses", [])
        if subclasses is None:
            subclasses = []
        if not isinstance(subclasses, list):
            raise ApiError(400, f"`{where}.subclasses` must be a list of nodes, got {subclasses!r:.80}")
        for i in reversed(range(len(subclasses))):
            stack.append((subclasses[i], f"{where}.subclasses[{i}]"))
    return names


def taxonomy_classes(hierarchy: dict) -> set[str]:
    """Every class name in a (valid) hierarchy."""
    return set(validate_hierarchy(hierarchy))


# -- visibility --------------------------------------------------------------------------------------
def visible_taxonomy_clause(groups: set[int] | None):
    """A condition on Taxonomy: shared with one of `groups` (None: every taxonomy)."""
    if groups is None:
        return None
    return exists().where(taxonomy_groups.c.taxonomy_id == Taxonomy.id, taxonomy_groups.c.group_id.in_(groups))


def get_visible_taxonomy(session: Session, user: User, taxonomy_id: int, *, field: str | None = None) -> Taxonomy:
    """The taxonomy if `user` may see it. Unknown or invisible: 404, or 400 naming `field` for a body field."""
    query = select(Taxonomy).where(Taxonomy.id == taxonomy_id)
    clause = visible_taxonomy_clause(accessible_group_ids(session, user))
    if clause is not None:
        query = query.where(clause)
    taxonomy = session.scalar(query)
    if taxonomy is None:
        if field:
            raise ApiError(400, f"unknown `{field}` {taxonomy_id}: no such taxonomy is shared with you")
        raise ApiError(404, f"taxonomy {taxonomy_id} not found")
    return taxonomy


def groups_by_owner(session: Session, link_table, owner_column: str, owner_ids: list[int]) -> dict[int, list[dict]]:
    """{owner id: [{"id", "name", "nickname"}, ...]} through a *_groups link table, in one query."""
    result: dict[int, list[dict]] = {i: [] for i in owner_ids}
    if not owner_ids:
        return result
    owner = link_table.c[owner_column]
    rows = session.execute(
        select(owner, Group.id, Group.name, Group.nickname)
        .join(Group, Group.id == link_table.c.group_id)
        .where(owner.in_(owner_ids))
        .order_by(owner, Group.id)
    )
    for owner_id, gid, name, nickname in rows:
        result[owner_id].append({"id": gid, "name": name, "nickname": nickname})
    return result


def serialize_taxonomy(taxonomy: Taxonomy, groups: list[dict]) -> dict:
    return {
        "id": taxonomy.id,
        "name": taxonomy.name,
        "hierarchy": taxonomy.hierarchy,
        "version": taxonomy.version,
        "provenance": taxonomy.provenance,
        "isLatest": taxonomy.isLatest,
        "groups": groups,
        "created_at": taxonomy.created_at,
        "modified": taxonomy.modified,
    }


def list_taxonomies(session: Session, user: User) -> list[dict]:
    """The taxonomies shared with the user's groups (every one for system admins), newest first."""
    query = select(Taxonomy).order_by(Taxonomy.name, Taxonomy.created_at.desc(), Taxonomy.id.desc())
    clause = visible_taxonomy_clause(accessible_group_ids(session, user))
    if clause is not None:
        query = query.where(clause)
    rows = list(session.scalars(query))
    groups = groups_by_owner(session, taxonomy_groups, "taxonomy_id", [t.id for t in rows])
    return [serialize_taxonomy(t, groups[t.id]) for t in rows]


def get_taxonomy(session: Session, user: User, taxonomy_id: int) -> dict:
    taxonomy = get_visible_taxonomy(session, user, taxonomy_id)
    groups = groups_by_owner(session, taxonomy_groups, "taxonomy_id", [taxonomy.id])
    return serialize_taxonomy(taxonomy, groups[taxonomy.id])


# -- writing -------------------------------------------------------------------------------------------
def _text(data: dict, field: str, *, required: bool) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise ApiError(400, f"missing required field `{field}`")
        return None
    # SkyPortal clients sometimes send a numeric version (1 rather than "1"); keep it as text.
    if field == "version" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"`{field}` must be a non-empty string, got {value!r:.80}")
    check_no_nul(value, field)
    return check_string(value.strip(), field)


def check_no_nul(value: Any, field: str) -> None:
    """PostgreSQL cannot store NUL characters in text or JSONB: refuse them here rather than fail later."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ApiError(400, f"`{field}` must not contain NUL characters")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def create_taxonomy(session: Session, user: User, data: dict) -> int:
    """Validate and store a taxonomy; a new latest version of a name demotes the older ones. Returns its id."""
    extra = sorted(set(data) - TAXONOMY_FIELDS)
    if extra:
        raise ApiError(400, f"unknown field(s) {extra}; accepted fields: {sorted(TAXONOMY_FIELDS)}")
    name = _text(data, "name", required=True)
    version = _text(data, "version", required=True)
    provenance = _text(data, "provenance", required=False)
    if "hierarchy" not in data:
        raise ApiError(400, "missing required field `hierarchy`")
    validate_hierarchy(data["hierarchy"])
    check_no_nul(data["hierarchy"], "hierarchy")
    is_latest = data.get("isLatest", True)
    if not isinstance(is_latest, bool):
        raise ApiError(400, f"`isLatest` must be true or false, got {is_latest!r:.80}")
    group_ids = target_group_ids(session, user, data.get("group_ids"), default="all")

    # The same name and version twice would make "which one?" unanswerable for classifications.
    existing = session.scalar(select(Taxonomy.id).where(Taxonomy.name == name, Taxonomy.version == version))
    if existing is not None:
        raise ApiError(409, f"a taxonomy named {shown(name)} with version {shown(version)} already exists", {"taxonomy_id": existing})

    if is_latest:
        session.execute(update(Taxonomy).where(Taxonomy.name == name).values(isLatest=False))
    taxonomy = Taxonomy(name=name, hierarchy=data["hierarchy"], version=version, provenance=provenance, isLatest=is_latest)
    session.add(taxonomy)
    session.flush()
    session.execute(insert(taxonomy_groups), [{"taxonomy_id": taxonomy.id, "group_id": g} for g in group_ids])
    session.commit()
    return taxonomy.id


def check_may_delete_taxonomy(session: Session, user: User, taxonomy_id: int) -> None:
    """Scope TAXONOMY of access_rules.py. A taxonomy is shared: only a system admin, or an admin of every group
    it is shared with, may delete it; and never when classifications the deleter cannot read would go with it
    (the refusal does not say how many there are)."""
    groups = session.scalars(select(taxonomy_groups.c.group_id).where(taxonomy_groups.c.taxonomy_id == taxonomy_id))
    if not administers_all(session, user, groups):
        raise forbidden(
            f"taxonomy {taxonomy_id} is shared with groups you do not administer; ask a system admin to delete it"
        )
    readable = accessible_group_ids(session, user)
    if readable is None:
        return
    cg = classification_groups
    unreadable = exists().where(
        Classification.taxonomy_id == taxonomy_id,
        ~exists().where(cg.c.classification_id == Classification.id, cg.c.group_id.in_(readable or [-1])),
    )
    if session.scalar(select(unreadable)):
        raise ApiError(
            409,
            f"taxonomy {taxonomy_id} holds classifications of groups you cannot read, which deleting it would "
            "delete; ask a system admin",
        )


def delete_taxonomy(session: Session, user: User, taxonomy_id: int) -> None:
    """Delete a taxonomy the user can see, with the classifications made in it.

    When the latest version goes, the newest remaining version of the same name becomes the latest.
    """
    taxonomy = get_visible_taxonomy(session, user, taxonomy_id)
    check_may_delete_taxonomy(session, user, taxonomy.id)
    name, was_latest = taxonomy.name, taxonomy.isLatest
    session.execute(delete(Taxonomy).where(Taxonomy.id == taxonomy.id))
    if was_latest:
        newest = session.scalar(
            select(Taxonomy.id).where(Taxonomy.name == name).order_by(Taxonomy.created_at.desc(), Taxonomy.id.desc()).limit(1)
        )
        if newest is not None:
            session.execute(update(Taxonomy).where(Taxonomy.id == newest).values(isLatest=True))
    session.commit()
