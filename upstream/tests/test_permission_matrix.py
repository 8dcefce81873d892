"""Who may call which mutating API endpoint: every role (and no token) against every POST/PUT/PATCH/DELETE route.

Two views of the same rule:
- the derived matrix is built from the app's routes and each method's `__acls__` (set by @permissions), so it
  grows with the API: 401 without a token, 403 for a role lacking one of the ACLs, neither otherwise;
- the explicit table below names the ACLs the core routes must need, independently of the decorators, so that
  dropping or weakening a decorator fails the test instead of silently changing the derived matrix.

Requests carry ids that do not exist and an empty JSON object, so a role that is let through gets a 4xx about
the input (400/404/405) and nothing is written.
"""

from __future__ import annotations

import re

import pytest

from astroportal.access_rules import RULES
from astroportal.permissions import ROLES

ROLE_NAMES = ["Super admin", "Group admin", "Full user", "View only"]
MUTATING = ("post", "put", "patch", "delete")
MISSING_ID = "999999999"

# Needed ACLs of the core routes ("login" = any logged-in user; the handler then checks the rule's scope), from
# the one table the handlers read too: astroportal/access_rules.py. Paths use {id} for any path parameter.
EXPECTED: dict[tuple[str, str], list[str] | str] = {
    rule.key: (rule.acls or "login") for rule in RULES
}

# The API modules whose routes the table covers (a missing one is reported by name).
CORE_MODULES = ["sources", "candidates", "listings", "photometry", "groups", "telescopes", "streams", "users",
                 "taxonomy", "classifications", "comments", "annotations", "service_tokens"]


def _load_routes():
    from astroportal import config as portal_config
    from astroportal.app import collect_routes

    # Routes do not depend on the database: the portal's defaults are enough to list them.
    return collect_routes(portal_config.load(None))


def _serving(routes, url: str):
    """The handler Tornado would pick for `url`: the first route whose pattern matches all of it."""
    from astroportal.openapi import _route_parts

    for route in routes:
        parts = _route_parts(route)
        if parts and re.fullmatch(parts[0], url):
            return parts
    return None


def mutating_endpoints() -> list[tuple[str, str, str, object]]:
    """[(METHOD, concrete url, {id} template, acls or "login" or None)] for every mutating /api route."""
    from astroportal.openapi import _route_parts, defined_methods, path_templates

    routes = _load_routes()
    seen: dict[tuple[str, str], tuple] = {}
    for route in routes:
        parts = _route_parts(route)
        if parts is None or not parts[0].lstrip("^").startswith("/api"):
            continue
        pattern, handler = parts
        for path, _params in path_templates(pattern):
            template = re.sub(r"\{[^}]+\}", "{id}", path)
            url = template.replace("{id}", MISSING_ID)
            if _serving(routes, url) != (pattern, handler):
                continue  # another route answers this URL
            for method in defined_methods(handler):
                if method not in MUTATING:
                    continue
                func = getattr(handler, method)
                need = getattr(func, "__acls__", None)
                if need is None:
                    need = "login" if getattr(func, "__auth__", False) else None
                seen.setdefault((method.upper(), url), (method.upper(), url, template, need))
    return sorted(seen.values(), key=lambda e: (e[1], e[0]))


ENDPOINTS = mutating_endpoints()


def expected_status_ok(role: str | None, need, status: int) -> tuple[bool, str]:
    """Whether `status` is right for `role` on an endpoint that needs `need`; and what was expected."""
    if role is None:
        return status == 401, "401"
    if need is None:
        return status not in (401,), "no 401 (the route needs no login)"
    if need == "login":
        return status not in (401, 403), "neither 401 nor 403"
    held = set(ROLES[role])
    if "System admin" in held or all(a in held for a in need):
        return status not in (401, 403), "neither 401 nor 403"
    return status == 403, "403"


def call(api, method: str, url: str, token: str | None):
    kwargs = {} if method == "DELETE" else {"json": {}}
    return api.request(method, url, token, **kwargs)


@pytest.mark.parametrize("method, url, template, need", ENDPOINTS, ids=[f"{e[0]} {e[2]}" for e in ENDPOINTS])
def test_derived_matrix(api, role_tokens, method, url, template, need):
    failures = []
    for role in [None] + ROLE_NAMES:
        status, body = call(api, method, url, role_tokens.get(role) if role else None)
        ok, wanted = expected_status_ok(role, need, status)
        if not ok:
            failures.append(f"{role or 'no token'}: got {status} ({body.get('message') if isinstance(body, dict) else body!r:.100}), want {wanted}")
    assert not failures, f"{method} {template} (needs {need}):\n  " + "\n  ".join(failures)


def test_every_mutating_api_route_needs_login():
    open_routes = [f"{m} {t}" for m, _, t, need in ENDPOINTS if need is None]
    assert not open_routes, f"mutating API routes without @auth_required or @permissions: {open_routes}"


def test_core_modules_present():
    from astroportal.app import core_handler_modules

    present = {name.rsplit(".", 1)[-1] for name in core_handler_modules()}
    missing = [m for m in CORE_MODULES if m not in present]
    assert not missing, f"API modules not written yet: {missing}"


@pytest.mark.parametrize("method, template", sorted(EXPECTED), ids=[f"{m} {t}" for m, t in sorted(EXPECTED)])
def test_explicit_table(api, role_tokens, method, template):
    """The core routes need exactly the ACLs in EXPECTED, checked by calling them (and against the decorator)."""
    need = EXPECTED[(method, template)]
    declared = {(m, t): n for m, _, t, n in ENDPOINTS}
    assert (method, template) in declared, f"{method} {template} is not served by the app"
    assert declared[(method, template)] == need, (
        f"{method} {template}: the handler declares {declared[(method, template)]!r}, the table expects {need!r}"
    )
    url = template.replace("{id}", MISSING_ID)
    failures = []
    for role in [None] + ROLE_NAMES:
        status, body = call(api, method, url, role_tokens.get(role) if role else None)
        ok, wanted = expected_status_ok(role, need, status)
        if not ok:
            failures.append(f"{role or 'no token'}: got {status}, want {wanted}")
    assert not failures, f"{method} {template}:\n  " + "\n  ".join(failures)


def test_every_mutating_api_route_is_in_the_rules_table():
    """A new mutating route must be written into access_rules.RULES and checked with @rule (a method that also
    answers a URL the table does not name, such as POST /api/telescope/{id}, refuses it with 405)."""
    routes = _load_routes()
    missing = [
        f"{m} {t}" for m, url, t, _ in ENDPOINTS
        if getattr(getattr(_serving(routes, url)[1], m.lower()), "__rule__", None) is None
    ]
    assert not missing, f"mutating API routes missing from astroportal/access_rules.py: {missing}"


def test_handlers_check_the_rule_of_their_route():
    from astroportal.openapi import _route_parts, path_templates

    wrong = []
    for route in _load_routes():
        parts = _route_parts(route)
        if parts is None:
            continue
        pattern, handler = parts
        for path, _ in path_templates(pattern):
            template = re.sub(r"\{[^}]+\}", "{id}", path)
            for method in MUTATING:
                func = getattr(handler, method, None)
                rule = getattr(func, "__rule__", None)
                if rule is not None and (method.upper(), template) in EXPECTED and rule.key != (method.upper(), template):
                    if _serving(_load_routes(), template.replace("{id}", MISSING_ID)) == (pattern, handler):
                        wrong.append(f"{method.upper()} {template} checks the rule of {rule.method} {rule.path}")
    assert not wrong, "\n".join(wrong)
