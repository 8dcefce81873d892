"""An OpenAPI 3.0 description of the API, built from the app's routes and its handlers' docstrings.

Convention (see handlers/api/sysinfo.py): a handler method's docstring is a summary line, perhaps some prose,
then a line `---`, then one YAML OpenAPI operation object (summary, tags, parameters, requestBody,
responses, ...). SkyPortal's `single:` / `multiple:` split is understood too: `single` describes the route
with its id in the path, `multiple` the route without it. Methods without a docstring are listed with a
generated summary, so that the document never silently misses a route. A response written `data: SCHEMA`
(instead of `content:`) is the shared success envelope (components/schemas/Success) whose `data` is SCHEMA.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import re
import sys
from itertools import product
from typing import Any, Iterable

import tornado.web
import yaml

from . import __version__
from . import extension_points as ep
from .config import Config

log = logging.getLogger("astroportal.openapi")

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_RESPONSE_KEYS_OK = re.compile(r"^([1-5]XX|[1-5]\d\d|default)$")

ENVELOPE_ERROR = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["error"]},
        "message": {"type": "string", "description": "What went wrong, for a person to read"},
        "data": {"type": "object"},
        "version": {"type": "string"},
    },
}

BASE_SCHEMAS: dict[str, dict] = {
    "Success": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["success"]},
            "data": {"type": "object"},
            "version": {"type": "string"},
        },
    },
    "Error": ENVELOPE_ERROR,
    "GroupRef": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "nickname": {"type": "string", "nullable": True}},
    },
}


def _error_response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


# -- routes ------------------------------------------------------------------------------------------------
def _route_parts(route: Any) -> tuple[str, type] | None:
    """(regex pattern, handler class) of a route given as a tuple, a URLSpec or a Rule."""
    if isinstance(route, (tuple, list)) and len(route) >= 2:
        pattern, handler = route[0], route[1]
    elif hasattr(route, "regex") and hasattr(route, "handler_class"):
        pattern, handler = route.regex.pattern, route.handler_class
    elif hasattr(route, "matcher") and hasattr(route.matcher, "regex"):
        pattern, handler = route.matcher.regex.pattern, route.target
    else:
        return None
    if hasattr(pattern, "pattern"):
        pattern = pattern.pattern
    if not isinstance(pattern, str) or not inspect.isclass(handler):
        return None
    return pattern, handler


def _is_api_route(pattern: str, handler: type) -> bool:
    from .handlers.base import APIHandler

    return pattern.lstrip("^").startswith("/api") or issubclass(handler, APIHandler)


def defined_methods(handler: type) -> list[str]:
    """The HTTP methods `handler` answers: those it (or a base other than RequestHandler) defines."""
    names = []
    for name in HTTP_METHODS:
        if name.upper() not in getattr(handler, "SUPPORTED_METHODS", ()):
            continue
        func = getattr(handler, name, None)
        if func is not None and func is not getattr(tornado.web.RequestHandler, name, None):
            names.append(name)
    return names


# -- regex -> path templates --------------------------------------------------------------------------------
class _Param:
    def __init__(self, index: int, name: str | None, regex: str) -> None:
        self.index, self.name, self.regex = index, name, regex


def _find_close(pattern: str, start: int) -> int:
    """Index of the parenthesis closing the one at `start`."""
    depth, i, in_class = 0, start, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced parentheses in {pattern!r}")


def _split_alternatives(body: str) -> list[str]:
    parts, depth, i, start, in_class = [], 0, 0, 0, False
    while i < len(body):
        c = body[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(body[start:i])
            start = i + 1
        i += 1
    parts.append(body[start:])
    return parts


class _TemplateParser:
    """Expands a Tornado route regex into the literal paths it stands for, with capture groups as parameters."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.count = 0  # capture groups seen, in Python's numbering order

    def expand(self, text: str) -> list[list]:
        variants: list[list] = []
        for alt in _split_alternatives(text):
            variants.extend(self._expand_seq(alt))
        return variants

    def _quantifier(self, text: str, i: int) -> tuple[bool, int]:
        """(optional?, index after the quantifier) for whatever quantifier follows position i."""
        if i < len(text) and text[i] in "?*+{":
            if text[i] == "{":
                end = text.index("}", i)
                optional = text[i + 1 : end].split(",")[0].strip() in ("", "0")
                i = end + 1
            else:
                optional = text[i] in "?*"
                i += 1
            if i < len(text) and text[i] in "?+":  # lazy or possessive marker
                i += 1
            return optional, i
        return False, i

    def _expand_seq(self, text: str) -> list[list]:
        pieces: list[list[list]] = []  # for each item, its alternative expansions
        i = 0
        while i < len(text):
            c = text[i]
            if c == "(":
                close = _find_close(text, i)
                inner = text[i + 1 : close]
                if inner.startswith("?:"):
                    alts = self.expand(inner[2:])
                elif inner.startswith("?P<"):
                    self.count += 1
                    name = inner[3 : inner.index(">")]
                    alts = [[_Param(self.count, name, inner[inner.index(">") + 1 :])]]
                    self._skip_nested(inner)
                elif inner.startswith("?"):  # lookarounds, flags: no text of their own
                    alts = [[]]
                else:
                    self.count += 1
                    alts = [[_Param(self.count, None, inner)]]
                    self._skip_nested(inner)
                optional, i = self._quantifier(text, close + 1)
            elif c == "\\" and i + 1 < len(text):
                nxt = text[i + 1]
                alts = [[nxt]] if not nxt.isalnum() else [[f"\\{nxt}"]]
                optional, i = self._quantifier(text, i + 2)
            elif c == "[":
                end = text.index("]", i + 1)
                alts = [[text[i : end + 1]]]
                optional, i = self._quantifier(text, end + 1)
            elif c in "^$":
                i += 1
                continue
            else:
                alts = [[c]]
                optional, i = self._quantifier(text, i + 1)
            if optional:
                alts = alts + [[]]
            pieces.append(alts)
        return [sum(combo, []) for combo in product(*pieces)] if pieces else [[]]

    def _skip_nested(self, inner: str) -> None:
        """Count capture groups nested inside a parameter, so that later groups keep Python's numbers."""
        i = 0
        while i < len(inner):
            if inner[i] == "\\":
                i += 2
                continue
            if inner[i] == "(" and not inner[i + 1 : i + 2] == "?":
                self.count += 1
            elif inner[i : i + 3] == "(?P":
                self.count += 1
            i += 1


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _param_schema(regex: str) -> dict:
    return {"type": "integer"} if regex in (r"\d+", "[0-9]+", r"[\d]+") else {"type": "string"}


def path_templates(pattern: str, declared_names: list[str] | None = None) -> list[tuple[str, list[_Param]]]:
    """The OpenAPI paths a route regex stands for: [(path, [params in order])], without duplicates.

    Unnamed groups take the names the handler's docstrings declare for its path parameters (in order) when
    they declare one per group, or else a name made from the path segment before them (sources -> source_id).
    """
    parser = _TemplateParser(pattern)
    variants = parser.expand(pattern)
    params_all: dict[int, _Param] = {}
    for v in variants:
        for part in v:
            if isinstance(part, _Param):
                params_all[part.index] = part
    ordered = [params_all[k] for k in sorted(params_all)]
    names: dict[int, str] = {}
    use_declared = declared_names is not None and len(declared_names) == len(ordered)
    for n, p in enumerate(ordered):
        if p.name:
            names[p.index] = p.name
        elif use_declared:
            names[p.index] = declared_names[n]  # type: ignore[index]
    result: list[tuple[str, list[_Param]]] = []
    seen: set[str] = set()
    for v in variants:
        text, params = "", []
        for part in v:
            if isinstance(part, _Param):
                if part.index not in names:
                    segment = [s for s in text.split("/") if s and not s.startswith("{")]
                    base = _singular(re.sub(r"\W", "_", segment[-1])) if segment else "param"
                    candidate = f"{base}_id"
                    k = 2
                    while candidate in names.values():
                        candidate, k = f"{base}_id{k}", k + 1
                    names[part.index] = candidate
                text += "{" + names[part.index] + "}"
                params.append(_Param(part.index, names[part.index], part.regex))
            else:
                text += part
        if len(text) > 1:
            text = text.rstrip("/") or "/"
        if not text.startswith("/"):
            text = "/" + text
        if text not in seen:
            seen.add(text)
            result.append((text, params))
    return result


# -- docstrings ---------------------------------------------------------------------------------------------
def parse_docstring(func: Any) -> tuple[str | None, str | None, dict | None, str | None]:
    """(first line, prose, the YAML operation or None, an error message or None) of a method's docstring."""
    doc = inspect.getdoc(func)
    if not doc:
        return None, None, None, None
    lines = doc.splitlines()
    cut = next((i for i, line in enumerate(lines) if line.strip() == "---"), None)
    head = lines if cut is None else lines[:cut]
    prose = list(head)
    while prose and not prose[0].strip():
        prose.pop(0)
    first = prose[0].strip() if prose else None
    rest = "\n".join(prose[1:]).strip() or None
    if cut is None:
        return first, rest, None, None
    try:
        op = yaml.safe_load("\n".join(lines[cut + 1 :]))
    except yaml.YAMLError as exc:
        return first, rest, None, f"invalid YAML after `---`: {exc}"
    if op is None:
        return first, rest, None, None
    if not isinstance(op, dict):
        return first, rest, None, "the YAML after `---` is not a mapping"
    return first, rest, op, None


def _declared_path_names(op: dict | None) -> list[str]:
    if not op:
        return []
    return [
        p["name"]
        for p in op.get("parameters") or []
        if isinstance(p, dict) and p.get("in") == "path" and isinstance(p.get("name"), str)
    ]


def _pick_operation(op: dict | None, n_params: int) -> dict | None:
    """SkyPortal's `single` (id in the path) / `multiple` split, or the operation itself."""
    if op and ("single" in op or "multiple" in op) and "responses" not in op:
        chosen = op.get("single" if n_params else "multiple") or op.get("multiple") or op.get("single")
        return chosen if isinstance(chosen, dict) else None
    return op


def _enveloped(resp: dict) -> dict:
    """A docstring's response written `data: SCHEMA` (what the answer's `data` holds) becomes the shared success
    envelope with that `data`, so that no handler repeats the envelope's own fields."""
    resp = dict(resp)
    data = resp.pop("data")
    schema = {"allOf": [{"$ref": "#/components/schemas/Success"}, {"type": "object", "properties": {"data": data}}]}
    resp["content"] = {"application/json": {"schema": schema}}
    return resp


def _normalise_responses(responses: Any) -> dict:
    out: dict[str, Any] = {}
    if isinstance(responses, dict):
        for code, resp in responses.items():
            key = str(code)
            if not _RESPONSE_KEYS_OK.match(key):
                continue
            if not isinstance(resp, dict):
                resp = {"description": str(resp)}
            elif "$ref" not in resp and "description" not in resp:
                resp = dict(resp, description="Response")
            if isinstance(resp, dict) and "data" in resp and "content" not in resp:
                resp = _enveloped(resp)
            out[key] = resp
    return out


PARAMETER_KEYS = {
    "name", "in", "description", "required", "deprecated", "allowEmptyValue", "style", "explode",
    "allowReserved", "schema", "example", "examples", "content",
}


def _normalise_parameters(
    params: Any, path_params: list[_Param], declared: list[str], problems: list[str]
) -> list[dict]:
    """Docstring parameters made valid for this path: path parameters renamed to the template's names.

    What cannot be an OpenAPI parameter is left out and described in `problems`.
    """
    rename: dict[str, str] = {}
    if len(declared) == len(path_params):
        rename = {old: p.name for old, p in zip(declared, path_params) if old != p.name}  # type: ignore[misc]
    wanted = {p.name: p for p in path_params}
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for p in params if isinstance(params, list) else []:
        if not isinstance(p, dict):
            problems.append(f"parameter {p!r} is not a mapping")
            continue
        if "$ref" in p:
            out.append(p)
            continue
        if not isinstance(p.get("name"), str) or p.get("in") not in ("query", "header", "path", "cookie"):
            problems.append(f"parameter {p!r} needs a `name` and an `in` of query, header, path or cookie")
            continue
        unknown = sorted(k for k in p if k not in PARAMETER_KEYS and not str(k).startswith("x-"))
        if unknown:
            problems.append(f"parameter {p['name']!r} has unknown key(s) {unknown}")
        p = {k: v for k, v in p.items() if k in PARAMETER_KEYS or str(k).startswith("x-")}
        if p["in"] == "path":
            p["name"] = rename.get(p["name"], p["name"])
            if p["name"] not in wanted:
                continue  # a parameter of another variant of this route
            p["required"] = True
        if "schema" not in p and "content" not in p:
            p["schema"] = {"type": "string"}
        key = (p["name"], p["in"])
        if key not in seen:
            seen.add(key)
            out.append(p)
    for name, param in wanted.items():
        if (name, "path") not in seen:
            out.append({"in": "path", "name": name, "required": True, "schema": _param_schema(param.regex)})
    return out


def build_operation(handler: type, method: str, path: str, path_params: list[_Param]) -> dict:
    """One operation object for `method` of `handler` served at `path`."""
    func = getattr(handler, method)
    first, prose, op_all, error = parse_docstring(func)
    op = copy.deepcopy(_pick_operation(op_all, len(path_params)) or {})
    declared = _declared_path_names(op)
    operation: dict[str, Any] = {k: v for k, v in op.items() if k not in ("parameters", "responses")}
    problems: list[str] = [error] if error else []
    parameters = _normalise_parameters(op.get("parameters"), path_params, declared, problems)
    operation["summary"] = str(op.get("summary") or first or f"{method.upper()} {path}")
    description = str(op.get("description") or prose or "")
    if not first and not op:
        description = f"Not documented yet: `{handler.__name__}.{method}` has no docstring."
    if problems:
        operation["x-docstring-error"] = "; ".join(problems)
        description = (description + f"\n\nThe docstring has problems: {'; '.join(problems)}").strip()
    acls = getattr(func, "__acls__", None)
    needs_auth = bool(getattr(func, "__auth__", False)) or acls is not None
    if acls:
        description = (
            description + f"\n\nNeeds the permission(s): {', '.join(acls)} (System admin holds every permission)."
        ).strip()
        operation["x-acls"] = list(acls)
    elif needs_auth:
        description = (description + "\n\nNeeds a login (API token or browser session).").strip()
    if description:
        operation["description"] = description
    tags = op.get("tags")
    if not isinstance(tags, list) or not tags:
        tags = [handler.__module__.rsplit(".", 1)[-1]]
    operation["tags"] = [str(t) for t in tags]
    operation["parameters"] = parameters
    responses = _normalise_responses(op.get("responses"))
    if not any(code.startswith("2") or code == "default" for code in responses):
        responses["200"] = {
            "description": "Success",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Success"}}},
        }
    if needs_auth:
        responses.setdefault("401", _error_response("Missing or invalid credentials (`Authorization: token <token>`)"))
    if acls:
        responses.setdefault("403", _error_response(f"Missing permission: {', '.join(acls)}"))
    operation["responses"] = responses
    if "security" in op and isinstance(op["security"], list):
        operation["security"] = op["security"]
    elif needs_auth:
        operation["security"] = [{"token": []}]
    operation["operationId"] = re.sub(r"[^A-Za-z0-9]+", "_", f"{method}_{path}").strip("_")
    return operation


def _declared_range(op: dict | None) -> tuple[int, int] | None:
    """(required, required + optional) path parameters a docstring declares, or None when it declares none."""
    params = [p for p in (op or {}).get("parameters") or [] if isinstance(p, dict) and p.get("in") == "path"]
    if not params:
        return None
    required = sum(1 for p in params if p.get("required", True) is not False)
    return required, len(params)


def _include(op_all: dict | None, n_params: int, handler_counts: set[int]) -> bool:
    """Whether a method belongs on a path (of its handler's routes) with `n_params` path parameters.

    A handler is often mounted twice (with and without an id) and each method serves one of the two; the
    docstring tells which: the path parameters it declares (and which of them are optional). A method that
    declares none belongs on the paths without parameters. When the docstring cannot tell, it goes everywhere.
    """
    if op_all and ("single" in op_all or "multiple" in op_all) and "responses" not in op_all:
        key = "single" if n_params else "multiple"
        return key in op_all or len(handler_counts) == 1
    declared = _declared_range(op_all)
    low, high = declared if declared else (0, 0)
    if not op_all:
        return True
    if any(low <= n <= high for n in handler_counts):
        return low <= n_params <= high
    return True


# -- the document -------------------------------------------------------------------------------------------
def _collect_refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for v in node.values():
            _collect_refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _collect_refs(v, found)


def _schema_keywords_30(node: Any) -> None:
    """Turn JSON Schema 2019+ spellings that docstrings use into OpenAPI 3.0's (in place).

    `exclusiveMaximum: 360` becomes `maximum: 360, exclusiveMaximum: true`, and `type: [number, "null"]`
    becomes `type: number, nullable: true`.
    """
    if isinstance(node, dict):
        for bound, flag in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
            value = node.get(flag)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                node[bound], node[flag] = value, True
        kind = node.get("type")
        if isinstance(kind, list):
            others = [t for t in kind if t not in ("null", None)]
            if len(others) == 1:
                node["type"] = others[0]
                if len(others) < len(kind):
                    node["nullable"] = True
        for value in node.values():
            _schema_keywords_30(value)
    elif isinstance(node, list):
        for value in node:
            _schema_keywords_30(value)


def _stringify_keys(node: Any) -> Any:
    """YAML reads `200:` as an integer; JSON (and OpenAPI) want string keys everywhere."""
    if isinstance(node, dict):
        return {str(k): _stringify_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_stringify_keys(v) for v in node]
    return node


def build_spec(routes: Iterable, *, title: str = "Astro Portal API", version: str = __version__, server_url: str | None = None) -> dict:
    """The OpenAPI 3.0 document for `routes` (Tornado route tuples, URLSpecs or Rules)."""
    paths: dict[str, dict] = {}
    canonical: dict[str, str] = {}  # "/api/sources/{}" -> the first spelling of that path
    schemas = copy.deepcopy(BASE_SCHEMAS)
    mounted: list[tuple[str, type, list]] = []
    handler_counts: dict[type, set[int]] = {}
    for route in routes:
        parts = _route_parts(route)
        if parts is None:
            continue
        pattern, handler = parts
        if not _is_api_route(pattern, handler):
            continue
        methods = defined_methods(handler)
        ops = [_pick_operation(parse_docstring(getattr(handler, m))[2], 1) for m in methods]
        try:
            n_groups = max((len(p) for _, p in path_templates(pattern)), default=0)
            # Name the route's parameters after a docstring that declares one per group, if any does.
            named = [d for d in (_declared_path_names(op) for op in ops) if len(d) == n_groups]
            variants = path_templates(pattern, named[0] if named else None)
        except ValueError as exc:
            log.warning("route %r left out of the OpenAPI document: %s", pattern, exc)
            continue
        mounted.append((pattern, handler, variants))
        handler_counts.setdefault(handler, set()).update(len(p) for _, p in variants)
        module = sys.modules.get(handler.__module__)
        for name, schema in (ep.OPENAPI_SCHEMAS.read(module) or {}).items():
            schemas.setdefault(name, copy.deepcopy(schema))

    for _pattern, handler, variants in mounted:
        methods = defined_methods(handler)
        docs = {m: parse_docstring(getattr(handler, m))[2] for m in methods}
        for path, params in variants:
            key = re.sub(r"\{[^}]+\}", "{}", path)
            if key in canonical and canonical[key] != path:
                # Same URL shape under other parameter names: keep the first spelling.
                names = re.findall(r"\{([^}]+)\}", canonical[key])
                params = [_Param(p.index, n, p.regex) for p, n in zip(params, names)]
                path = canonical[key]
            canonical.setdefault(key, path)
            item = paths.setdefault(path, {})
            for method in methods:
                # Tornado serves the first matching route: an earlier route's method wins.
                if method in item or not _include(docs[method], len(params), handler_counts[handler]):
                    continue
                item[method] = build_operation(handler, method, path, params)
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "SkyPortal-style REST API. Every answer is JSON: "
            '`{"status": "success", "data": ...}` or `{"status": "error", "message": ...}`.',
        },
        "paths": {p: paths[p] for p in sorted(paths) if paths[p]},
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "An API token, sent as `Authorization: token <token>`.",
                }
            },
            "schemas": schemas,
        },
        "security": [{"token": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    doc = _stringify_keys(doc)
    _schema_keywords_30(doc)
    # A docstring may name a schema nobody defined; a stand-in keeps the document valid (and visible).
    refs: set[str] = set()
    _collect_refs(doc, refs)
    for ref in sorted(refs):
        m = re.fullmatch(r"#/components/(schemas|responses|parameters|requestBodies)/([^/]+)", ref)
        if not m:
            continue
        section = doc["components"].setdefault(m.group(1), {})
        if m.group(2) not in section:
            section[m.group(2)] = {
                "schemas": {"type": "object", "description": "Not described in this document."},
                "responses": {"description": "Not described in this document."},
                "parameters": {"in": "query", "name": m.group(2), "schema": {"type": "string"}},
                "requestBodies": {"content": {"application/json": {"schema": {"type": "object"}}}},
            }[m.group(1)]
    return doc


def spec(cfg: Config) -> dict:
    """The document for the app that `cfg` configures (its extra handler modules included)."""
    from .app import collect_routes

    return build_spec(
        collect_routes(cfg),
        title=f"{ep.TITLE.read(cfg)} API",
        server_url=cfg.server_url,
    )


def spec_json(cfg: Config) -> str:
    """The document as JSON text (what `python -m astroportal openapi` prints)."""
    return json.dumps(spec(cfg), indent=2, default=str)
