"""The OpenAPI document: valid, complete (every API route and method), ACLs marked, served without login."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate

from conftest import portal


def sample_url(path: str) -> str:
    """A concrete URL for a templated path: every parameter becomes "1" (which any id pattern accepts)."""
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture(scope="module")
def served(api):
    status, body = api.get("/api/openapi.json")
    assert status == 200, body
    return body


@pytest.fixture(scope="module")
def app_routes(cfg):
    from astroportal.app import collect_routes
    from astroportal.openapi import _is_api_route, _route_parts

    out = []
    for route in collect_routes(cfg):
        pattern, handler = _route_parts(route)
        if _is_api_route(pattern, handler):
            out.append((pattern, handler))
    return out


def test_served_without_login_and_valid(served):
    validate(served)
    assert served["openapi"].startswith("3.0")
    assert served["paths"]


def test_cli_prints_same_document(config_path, served):
    result = portal("openapi", config=config_path)
    printed = json.loads(result.stdout)
    validate(printed)
    assert sorted(printed["paths"]) == sorted(served["paths"])


def test_token_security_scheme(served):
    scheme = served["components"]["securitySchemes"]["token"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "Authorization"}
    assert "token <token>" in scheme["description"]
    assert served["security"] == [{"token": []}]
    assert served["paths"]["/api/sysinfo"]["get"]["security"] == []
    assert served["paths"]["/api/openapi.json"]["get"]["security"] == []


def test_every_api_route_and_method_is_listed(served, app_routes):
    """Each route matches some documented path, and each handler method is documented on one of its routes."""
    from astroportal.openapi import defined_methods

    documented = [(sample_url(p), m) for p, item in served["paths"].items() for m in item]
    by_handler: dict[type, list[str]] = {}
    for pattern, handler in app_routes:
        by_handler.setdefault(handler, []).append(pattern)
        assert any(re.fullmatch(pattern, url) for url, _ in documented), f"route {pattern} is not in the document"
    missing = []
    for handler, patterns in by_handler.items():
        for method in defined_methods(handler):
            if not any(m == method and any(re.fullmatch(p, url) for p in patterns) for url, m in documented):
                missing.append(f"{method.upper()} {patterns} ({handler.__module__}.{handler.__name__})")
    assert not missing, "undocumented: " + "; ".join(missing)


def test_path_parameters_and_acls(served):
    put = served["paths"]["/api/sources/{obj_id}/comments/{comment_id}"]["put"]
    assert [(p["name"], p["in"], p["required"]) for p in put["parameters"]] == [
        ("obj_id", "path", True),
        ("comment_id", "path", True),
    ]
    assert put["x-acls"] == ["Comment"] and "Comment" in put["description"]
    post = served["paths"]["/api/taxonomy"]["post"]
    assert post["x-acls"] == ["Post taxonomy"] and "Post taxonomy" in post["description"]
    assert "403" in post["responses"] and "401" in post["responses"]
    get = served["paths"]["/api/taxonomy"]["get"]
    assert "x-acls" not in get and "401" in get["responses"]
    # every method guarded by @permissions says so
    for path, item in served["paths"].items():
        for method, op in item.items():
            if "x-acls" in op:
                assert all(acl in op["description"] for acl in op["x-acls"]), (path, method)


def test_app_docstrings_read_cleanly(served):
    """Every handler docstring's YAML is a valid operation (the generator repairs what it can, and says so)."""
    problems = [
        f"{m.upper()} {p}: {op['x-docstring-error']}"
        for p, item in served["paths"].items()
        for m, op in item.items()
        if "x-docstring-error" in op
    ]
    assert not problems, "\n".join(problems)


# -- the generator on routes made up for the test ----------------------------------------------------------
def test_method_without_docstring_is_listed(app_routes):
    import tornado.web

    from astroportal.handlers.base import APIHandler, permissions
    from astroportal.openapi import build_spec

    class NoDocs(APIHandler):
        def get(self, thing_id):
            pass

        @permissions(["Upload data"])
        def delete(self, thing_id):
            pass

    class BadYaml(APIHandler):
        def post(self):
            """
            Broken
            ---
            summary: [unclosed
            """

    doc = build_spec(app_routes + [(r"/api/things/(\d+)", NoDocs), tornado.web.url(r"/api/broken", BadYaml)])
    validate(doc)
    item = doc["paths"]["/api/things/{thing_id}"]
    assert item["get"]["summary"] == "GET /api/things/{thing_id}"
    assert "no docstring" in item["get"]["description"]
    assert item["get"]["parameters"] == [{"in": "path", "name": "thing_id", "required": True, "schema": {"type": "integer"}}]
    assert item["delete"]["x-acls"] == ["Upload data"]
    broken = doc["paths"]["/api/broken"]["post"]
    assert broken["summary"] == "Broken" and "invalid YAML" in broken["x-docstring-error"]


def test_optional_groups_named_groups_and_single_multiple():
    from astroportal.handlers.base import APIHandler
    from astroportal.openapi import build_spec, path_templates

    assert [p for p, _ in path_templates(r"/api/widget(?:/(\d+))?/?")] == ["/api/widget/{widget_id}", "/api/widget"]
    assert [p for p, _ in path_templates(r"/api/a/(?P<alpha>[^/]+)/b/([0-9]+)$")] == ["/api/a/{alpha}/b/{b_id}"]
    assert [p for p, _ in path_templates(r"/api/widget/([^/]+)", ["name"])] == ["/api/widget/{name}"]

    class Widgets(APIHandler):
        def get(self, widget_id=None):
            """
            ---
            single:
              summary: One widget
              parameters:
                - {in: path, name: wid, required: true, schema: {type: integer}}
              responses: {200: {description: the widget}}
            multiple:
              summary: All widgets
              responses: {200: {description: the widgets}}
            """

        def post(self, widget_id=None):
            """
            Make a widget
            ---
            summary: Make a widget
            responses: {200: {description: made}}
            """

    doc = build_spec([(r"/api/widget(?:/(\d+))?", Widgets)])
    validate(doc)
    assert doc["paths"]["/api/widget"]["get"]["summary"] == "All widgets"
    single = doc["paths"]["/api/widget/{wid}"]["get"]
    assert single["summary"] == "One widget" and single["parameters"][0]["name"] == "wid"
    # a method declaring no path parameter belongs on the route without one
    assert "post" in doc["paths"]["/api/widget"] and "post" not in doc["paths"]["/api/widget/{wid}"]
