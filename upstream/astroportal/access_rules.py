"""Who may change what: every mutating API route, the ACL it needs, and the scope in which that ACL counts.

One table, read by the handlers (the `@rule` decorator of handlers/base.py checks the ACL; the domain
functions check the scope through domain/access.py) and by the tests (tests/test_permission_matrix.py and
tests/test_access_matrix.py call every route as every role, with the thing in the caller's group, in
another group, and absent).

How to read a row: METHOD path -> ACL, SCOPE.
  ACL      the permission the caller must hold (LOGIN: any logged-in user). "System admin" holds every ACL.
  SCOPE    what else decides, for the thing the route names:
    SITEWIDE  shared data (telescopes, instruments, streams, users): the ACL alone decides, and only roles
              meant to manage the whole portal hold such an ACL (see permissions.ROLES).
    MEMBER    the caller writes into groups they are a member of (and may save to, for saves); a thing
              (object, taxonomy) in none of their groups is answered as absent (404, or 400 for a body field).
    GROUP     the caller is an admin of the group concerned (GroupUser.admin), or a system admin.
    OWNER     the caller made the thing (author, uploader, token owner), or holds MANAGE_SOURCES and is an admin
              of every group the thing is shared with, or is a system admin.
    OBJECT    changing an object's own fields (position, redshift, origin, alias): a system admin, or a caller
              holding MANAGE_SOURCES who administers every group the object is in, or one who saved it and is a
              member of every group it is in. Another group's object position is never the caller's to move.
    TAXONOMY  deleting a taxonomy: a system admin, or a caller holding the ACL who administers every group the
              taxonomy is shared with, and only when no classification in it lies outside what the caller reads
              (the refusal does not say how many).
    SELF      the caller's own record (their listings), nobody else's, not even a system admin's.
    SELF_OR_ADMIN  the caller's own record (their API tokens), or anyone's for a system admin.

Refusals: 401 without credentials; 403 when the thing is visible but the ACL or scope is missing; 404 (or the
body field's 400) when it is not visible, exactly as when it does not exist. A refusal never counts other
groups' data.
"""

from __future__ import annotations

from dataclasses import dataclass

LOGIN = "login"
SYSTEM_ADMIN = "System admin"
MANAGE_SOURCES = "Manage sources"

SITEWIDE, MEMBER, GROUP, OWNER, OBJECT, TAXONOMY = "sitewide", "member", "group", "owner", "object", "taxonomy"
SELF, SELF_OR_ADMIN = "self", "self or admin"


@dataclass(frozen=True)
class Rule:
    method: str
    path: str  # the route as the API documents it, path parameters written {id}
    acl: str  # an ACL name, or LOGIN
    scope: str
    what: str  # what the route does, for a reader

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    @property
    def acls(self) -> list[str]:
        """The ACLs the decorator demands ([] for LOGIN)."""
        return [] if self.acl == LOGIN else [self.acl]


# fmt: off
RULES: list[Rule] = [
    # -- objects, saves, candidates, listings -------------------------------------------------------------------
    Rule("POST",   "/api/sources",                        "Upload data",       MEMBER,   "save an object to groups one may save to (create it if new)"),
    Rule("PATCH",  "/api/sources/{id}",                   "Upload data",       OBJECT,   "change an object's position, redshift, origin, alias"),
    Rule("DELETE", "/api/sources/{id}",                   "Upload data",       MEMBER,   "unsave an object from one's groups"),
    Rule("POST",   "/api/source_groups",                  "Upload data",       MEMBER,   "save to / unsave from some of one's groups"),
    Rule("POST",   "/api/candidates",                     "Upload data",       MEMBER,   "record a pass through a filter of one's group"),
    Rule("POST",   "/api/listing",                        LOGIN,               MEMBER,   "put a visible object on one's own list"),
    Rule("DELETE", "/api/listing/{id}",                   LOGIN,               SELF,     "take an object off one's own list"),
    # -- photometry ------------------------------------------------------------------------------------------------
    Rule("POST",   "/api/photometry",                     "Upload data",       MEMBER,   "upload points of visible objects to one's groups"),
    Rule("PUT",    "/api/photometry",                     "Upload data",       MEMBER,   "upload or replace points (idempotent)"),
    Rule("PATCH",  "/api/photometry/{id}",                LOGIN,               OWNER,    "change a point"),
    Rule("DELETE", "/api/photometry/{id}",                LOGIN,               OWNER,    "delete a point"),
    # -- annotations --------------------------------------------------------------------------------------------------
    Rule("POST",   "/api/taxonomy",                       "Post taxonomy",     MEMBER,   "post a taxonomy shared with one's groups"),
    Rule("DELETE", "/api/taxonomy/{id}",                  "Post taxonomy",     TAXONOMY, "delete a taxonomy (and its classifications)"),
    Rule("POST",   "/api/thumbnail",                      "Upload data",       MEMBER,   "attach cutouts to a visible object"),
    Rule("POST",   "/api/classification",                 "Classify",          MEMBER,   "classify a visible object"),
    Rule("PUT",    "/api/classification/{id}",            "Classify",          OWNER,    "change a classification"),
    Rule("DELETE", "/api/classification/{id}",            "Classify",          OWNER,    "delete a classification"),
    Rule("POST",   "/api/sources/{id}/comments",          "Comment",           MEMBER,   "comment on a visible object"),
    Rule("PUT",    "/api/sources/{id}/comments/{id}",     "Comment",           OWNER,    "change a comment"),
    Rule("DELETE", "/api/sources/{id}/comments/{id}",     "Comment",           OWNER,    "delete a comment"),
    Rule("POST",   "/api/sources/{id}/annotations",       "Annotate",          MEMBER,   "annotate a visible object (one per origin)"),
    Rule("PUT",    "/api/sources/{id}/annotations/{id}",  "Annotate",          OWNER,    "change an annotation"),
    Rule("DELETE", "/api/sources/{id}/annotations/{id}",  "Annotate",          OWNER,    "delete an annotation"),
    Rule("POST",   "/api/annotations",                    "Annotate",          MEMBER,   "annotate many visible objects (upsert per origin)"),
    # -- telescopes and instruments: shared by everyone -------------------------------------------------------------
    Rule("POST",   "/api/telescope",                      "Manage telescopes", SITEWIDE, "create a telescope"),
    Rule("PATCH",  "/api/telescope/{id}",                 "Manage telescopes", SITEWIDE, "change a telescope"),
    Rule("PUT",    "/api/telescope/{id}",                 "Manage telescopes", SITEWIDE, "replace a telescope"),
    Rule("DELETE", "/api/telescope/{id}",                 "Manage telescopes", SITEWIDE, "delete a telescope"),
    Rule("POST",   "/api/instrument",                     "Manage telescopes", SITEWIDE, "create an instrument"),
    Rule("PATCH",  "/api/instrument/{id}",                "Manage telescopes", SITEWIDE, "change an instrument"),
    Rule("PUT",    "/api/instrument/{id}",                "Manage telescopes", SITEWIDE, "replace an instrument"),
    Rule("DELETE", "/api/instrument/{id}",                "Manage telescopes", SITEWIDE, "delete an instrument"),
    # -- GCN events (public science alerts: everyone logged in reads them) ---------------------------------------------
    Rule("POST",   "/api/gcn_event",                      "Manage GCNs",       SITEWIDE, "ingest a GCN notice (event, tags, sky maps)"),
    # -- groups, their members, streams and filters -------------------------------------------------------------------
    Rule("POST",   "/api/groups",                         "Manage groups",     SITEWIDE, "create a group (its creator becomes its admin)"),
    Rule("PATCH",  "/api/groups/{id}",                    LOGIN,               GROUP,    "rename a group, change its privacy"),
    Rule("DELETE", "/api/groups/{id}",                    LOGIN,               GROUP,    "delete a group"),
    Rule("POST",   "/api/groups/{id}/users",              LOGIN,               GROUP,    "add a member"),
    Rule("PATCH",  "/api/groups/{id}/users/{id}",         LOGIN,               GROUP,    "change a member's admin / can-save flags"),
    Rule("DELETE", "/api/groups/{id}/users/{id}",         LOGIN,               GROUP,    "remove a member (anyone may leave)"),
    Rule("POST",   "/api/groups/{id}/streams",            SYSTEM_ADMIN,        SITEWIDE, "give a group a stream (a stream's data rights are sitewide)"),
    Rule("DELETE", "/api/groups/{id}/streams/{id}",       SYSTEM_ADMIN,        SITEWIDE, "take a stream from a group"),
    Rule("POST",   "/api/streams",                        SYSTEM_ADMIN,        SITEWIDE, "create a stream"),
    Rule("PATCH",  "/api/streams/{id}",                   SYSTEM_ADMIN,        SITEWIDE, "change a stream"),
    Rule("DELETE", "/api/streams/{id}",                   SYSTEM_ADMIN,        SITEWIDE, "delete a stream"),
    Rule("POST",   "/api/filters",                        "Manage groups",     GROUP,    "create a filter for a group one administers"),
    Rule("PATCH",  "/api/filters/{id}",                   "Manage groups",     GROUP,    "change a filter of a group one administers"),
    Rule("DELETE", "/api/filters/{id}",                   "Manage groups",     GROUP,    "delete a filter of a group one administers"),
    # -- users, roles, tokens -----------------------------------------------------------------------------------------
    Rule("POST",   "/api/user",                           SYSTEM_ADMIN,        SITEWIDE, "create a user"),
    Rule("POST",   "/api/user/{id}/roles",                SYSTEM_ADMIN,        SITEWIDE, "give a user roles"),
    Rule("DELETE", "/api/user/{id}/roles/{id}",           SYSTEM_ADMIN,        SITEWIDE, "take a role from a user"),
    Rule("POST",   "/api/service_tokens",                 SYSTEM_ADMIN,        SITEWIDE, "create or narrow a service's bot and its token"),
    Rule("POST",   "/api/subscriptions",                  LOGIN,               SELF,     "subscribe oneself to events"),
    Rule("PATCH",  "/api/subscriptions/{id}",             LOGIN,               SELF,     "change one's own subscription"),
    Rule("DELETE", "/api/subscriptions/{id}",             LOGIN,               SELF,     "delete one's own subscription"),
    Rule("POST",   "/api/notifications/read",             LOGIN,               SELF,     "mark one's own notifications read"),
    Rule("POST",   "/api/internal/tokens",                LOGIN,               SELF,     "create an API token for oneself"),
    Rule("DELETE", "/api/internal/tokens/{id}",           LOGIN,     SELF_OR_ADMIN,     "revoke a token"),
]
# fmt: on

BY_KEY: dict[tuple[str, str], Rule] = {r.key: r for r in RULES}
assert len(BY_KEY) == len(RULES), "a route appears twice in access_rules.RULES"


def rule_for(method: str, path: str) -> Rule:
    """The rule of a route; KeyError names a route missing from the table."""
    try:
        return BY_KEY[(method.upper(), path)]
    except KeyError:
        raise KeyError(f"{method.upper()} {path} is not in astroportal/access_rules.py RULES") from None


def holds(acl_names: set[str], acl: str) -> bool:
    """Whether a user with `acl_names` holds `acl` (System admin holds every ACL; LOGIN needs none)."""
    return acl == LOGIN or acl in acl_names or SYSTEM_ADMIN in acl_names
