"""No input makes the portal answer 5xx: every route of the OpenAPI document is walked with hostile values.

Each path parameter, query parameter and JSON body field in turn gets a value that once caused a 500 (a NUL
character, a lone surrogate, a very long string, integers beyond 64 bits, a far-future time, deeply nested
JSON); the answer must be a 4xx (or a success) whose message does not echo the whole value back.
Routes are given real objects that this module creates, so that bodies get past the lookups to the checks
and the database; DELETE routes only ever get hostile ids, so nothing the rest of the session uses is lost.
"""

from __future__ import annotations

import json
import secrets
import re
import uuid
from urllib.parse import quote

import pytest
import requests

from conftest import unique

# A body field far beyond any index row (2704 bytes) and any column limit. Random, because PostgreSQL
# compresses a value before indexing it: 200 kB of one letter would fit an index row.
LONG = secrets.token_hex(100_000)
URL_LONG = "y" * 20_000  # a URL part: long, but under the 64 KB URL limit
DEEP = 5000  # nesting levels of the deep JSON value

# (label, JSON value) for body fields
BODY_VALUES = [
    ("nul", "ab\x00cd"),
    ("surrogate", "ab\ud800cd"),
    ("long", LONG),
    ("huge int", 10**30),
    ("int64+1", 2**63),
    ("negative huge", -(10**30)),
    ("huge float", 1e308),
    ("far future", "9999-12-31T23:59:59"),
    ("list of nul", ["ab\x00"]),
    ("list of long", [LONG[:5000]]),
    ("object of nul", {"a\x00": "b\x00"}),
]
# (label, already percent-encoded text) for URL parts
URL_VALUES = [
    ("nul", "ab%00cd"),
    ("surrogate", "ab%ED%A0%80cd"),
    ("long", URL_LONG),
    ("huge int", "9" * 40),
    ("int64+1", str(2**63)),
    ("negative", "-" + "9" * 30),
    ("far future", quote("9999-12-31T23:59:59")),
    ("year 10000", "10000-01-01"),
    ("float overflow", "1e999"),
]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture(scope="module")
def world(api, admin_token):
    """Real objects for the routes' path parameters and body references: {name: value}."""
    tag = uuid.uuid4().hex[:8]

    def post(path, body):
        status, answer = api.post(path, admin_token, json=body)
        assert status == 200, (path, answer)
        return answer["data"]

    tel = post("/api/telescope", {"name": f"fuzz-tel-{tag}", "nickname": f"ft{tag}", "diameter": 1.0,
                                  "lat": 30.0, "lon": 10.0, "elevation": 100.0})["id"]
    inst = post("/api/instrument", {"name": f"fuzz-inst-{tag}", "type": "imager", "telescope_id": tel,
                                    "filters": ["ztfg", "ztfr"]})["id"]
    obj = unique("FUZZ")
    post("/api/sources", {"id": obj, "ra": 10.0, "dec": 20.0})
    point = post("/api/photometry", {"obj_id": obj, "mjd": 59000.0, "instrument_id": inst, "filter": "ztfg",
                                     "magsys": "ab", "mag": 19.0, "magerr": 0.1})["ids"][0]
    stream = post("/api/streams", {"name": f"fuzz-stream-{tag}"})["id"]
    group = post("/api/groups", {"name": f"fuzz-group-{tag}"})["id"]
    post(f"/api/groups/{group}/streams", {"stream_id": stream})
    filt = post("/api/filters", {"name": f"fuzz-filter-{tag}", "stream_id": stream, "group_id": group})["id"]
    user = post("/api/user", {"username": f"fuzz-user-{tag}"})["id"]
    comment = post(f"/api/sources/{obj}/comments", {"text": "fuzz"})["comment_id"]
    status, taxonomies = api.get("/api/taxonomy", admin_token)
    return {
        "obj_id": obj, "objId": obj, "id": unique("FUZZ"), "point_id": point, "telescope_id": tel,
        "instrument_id": inst, "stream_id": stream, "group_id": group, "filter_id": filt, "user_id": user,
        "userID": user, "comment_id": comment,
        "taxonomy_id": taxonomies["data"][0]["id"] if status == 200 and taxonomies["data"] else 1,
    }


PLAUSIBLE = {
    "mjd": 59001.5, "filter": "ztfr", "magsys": "ab", "mag": 19.5, "magerr": 0.1, "limiting_mag": 20.5,
    "ra": 11.0, "dec": 21.0, "name": f"fuzz-{uuid.uuid4().hex[:8]}", "username": f"fuzz-{uuid.uuid4().hex[:8]}",
    "nickname": f"fz{uuid.uuid4().hex[:6]}", "diameter": 1.0, "lat": 30.0, "lon": 10.0, "elevation": 10.0,
    "type": "imager", "filters": ["ztfg"], "text": "a comment", "classification": "Kilonova",
    "probability": 0.5, "list_name": "favorites", "passed_at": "2024-01-01T00:00:00",
    "hierarchy": {"class": "Kilonova"}, "version": "1", "filter_ids": [], "group_ids": [],
}


def base_value(name: str, schema: dict, world: dict, method: str):
    """A plausible value for body field `name`, so that the other fields do not stop the request early."""
    if name in PLAUSIBLE:
        return PLAUSIBLE[name]
    if name in world and not (name == "id" and method != "post"):
        return world[name]
    kind = schema.get("type")
    return {"integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}}.get(kind, "fuzz")


def fresh(body: dict) -> dict:
    """`body` with new unique names, so that a request is not refused only because an earlier one took the name."""
    out = dict(body)
    for key in ("name", "username", "nickname"):
        if key in out:
            out[key] = f"fz-{uuid.uuid4().hex[:10]}"
    if "id" in out and isinstance(out["id"], str):
        out["id"] = unique("FUZZ")
    return out


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield path, method, op


def body_schema(spec: dict, path: str, method: str, op: dict) -> dict:
    """The operation's JSON body schema with properties; a PUT/PATCH on /x/{id} without one borrows POST /x's."""
    schema = (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema") or {}
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if not schema.get("properties") and method in ("put", "patch"):
        parent = re.sub(r"/\{[^}]+\}$", "", path)
        post = spec["paths"].get(parent, {}).get("post")
        if post:
            return body_schema(spec, parent, "post", post)
    return schema


class Failures:
    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, what: str, send) -> None:
        try:
            r = send()
        except requests.ConnectionError as exc:
            self.items.append(f"{what}: connection dropped ({type(exc).__name__})")
            return
        if r.status_code >= 500:
            self.items.append(f"{what}: {r.status_code} {r.text[:200]}")
        elif "the database refused a value" in r.text:
            # the portal's last line of defence answered: no check before the database named the field
            self.items.append(f"{what}: refused only by the database, not by a check naming the field")
        elif len(r.content) > 10_000 and r.status_code >= 400:
            self.items.append(f"{what}: a {len(r.content)}-byte error answer echoes the value")


def test_no_route_answers_5xx_to_hostile_input(api, admin_token, world):
    spec = requests.get(api.base + "/api/openapi.json", timeout=30).json()
    http = requests.Session()
    http.headers["Authorization"] = f"token {admin_token}"
    failures = Failures()

    def url_for(path: str, method: str, override: dict[str, str]) -> str:
        def fill(m):
            name = m.group(1)
            if name in override:
                return override[name]
            if method == "delete":  # never delete a real object: a hostile id is all a DELETE gets
                return "999999999"
            return quote(str(world.get(name, "1")), safe="")
        return api.base + re.sub(r"\{([^}]+)\}", fill, path)

    for path, method, op in operations(spec):
        params = op.get("parameters") or []
        path_names = [p["name"] for p in params if p.get("in") == "path"]
        query_names = [p["name"] for p in params if p.get("in") == "query"]
        schema = body_schema(spec, path, method, op)
        props = schema.get("properties") or {}
        has_body = method in ("post", "put", "patch")
        base_body = {k: base_value(k, v, world, method) for k, v in props.items()
                     if k in (schema.get("required") or []) or k in PLAUSIBLE or k in world}
        if path == "/api/photometry":
            base_body = {k: base_value(k, props[k], world, method)
                         for k in ("obj_id", "mjd", "instrument_id", "filter", "magsys", "mag", "magerr")}

        def send(url, body=None, raw=None):
            data = raw if raw is not None else (json.dumps(body) if body is not None else None)
            return http.request(method.upper(), url, data=data, timeout=120)

        # path parameters
        for name in path_names:
            for label, text in URL_VALUES:
                url = url_for(path, method, {name: text})
                failures.check(f"{method.upper()} {path} path {name}={label}",
                               lambda url=url: send(url, base_body if has_body else None))
        if method == "delete":
            continue
        url = url_for(path, method, {})
        # query parameters
        for name in query_names:
            for label, text in URL_VALUES:
                failures.check(f"{method.upper()} {path} ?{name}={label}",
                               lambda text=text, name=name: send(f"{url}?{name}={text}"))
        if not has_body:
            continue
        # body fields
        for name in props:
            for label, value in BODY_VALUES:
                body = dict(fresh(base_body), **{name: value})
                failures.check(f"{method.upper()} {path} body {name}={label}", lambda body=body: send(url, body))
            failures.check(f"{method.upper()} {path} body {name}=deeply nested",
                           lambda name=name: send(url, raw=json.dumps(base_body)[:-1] + f', "{name}": {nested(DEEP)}}}'
                                                  if base_body else f'{{"{name}": {nested(DEEP)}}}'))
        failures.check(f"{method.upper()} {path} body=deeply nested", lambda: send(url, raw=nested(DEEP)))
        failures.check(f"{method.upper()} {path} body=NUL key", lambda: send(url, raw='{"a\\u0000": 1}'))
        failures.check(f"{method.upper()} {path} body=raw surrogate escape",
                       lambda: send(url, raw='{"name": "\\udfff"}'))
    assert not failures.items, f"{len(failures.items)} failures:\n" + "\n".join(failures.items)
