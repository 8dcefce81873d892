"""`python -m astroportal load_data FILE...`: load YAML data files through the portal's REST API.

The format is SkyPortal's data loader's. A file maps API endpoints (relative to /api/) to lists of payloads:

    telescope:
      - {file: telescopes.yaml}          # a list kept in another file (path relative to this one)
      - name: Palomar 48 inch
        nickname: P48
        ...
        =id: P48                         # remember the id of this entry under the name P48
    instrument:
      - name: ZTF
        telescope_id: =P48               # replaced by the id remembered as P48
    groups/=team/users:                  # references work in path segments too
      - {userID: 3, admin: false}

Entries are sent one request each, in file order (files in the order given, sharing one set of names).
Loading is idempotent: for the endpoints the portal knows (NATURAL_KEYS: telescope and instrument by name,
groups by name, streams by name, filters by (name, group_id), sources by id, taxonomy by (name, version),
group members by user or stream id) an existing entry is found by its natural key, compared, and only its
changed fields are sent (PATCH, or PUT where the portal has no PATCH); other endpoints get a plain POST.
Fields an entry's GET does not show (such as `group_admins`) are creation options and are not compared.

Everything is checked before the first request (the files parse, entries are mappings, every reference is
defined by an earlier entry); the first refused request stops the run, so later entries that may depend
on it are not attempted. `{file: X}` inside a payload is replaced by X's content (parsed when YAML or JSON,
base64 otherwise, as SkyPortal does for thumbnails). A literal string starting with "=" is written "==...".
"""

from __future__ import annotations

import base64
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

import requests
import yaml

from .config import Config

ID_KEY = "=id"
INCLUDE_KEY = "file"
YAML_SUFFIXES = (".yaml", ".yml")
TIMEOUT = 120


class LoadError(Exception):
    """A data file or a request that cannot be loaded; the message is meant for the person running the loader."""


class _EntryError(Exception):
    """An entry that cannot be loaded; the loader adds which entry it is."""


# -- reading files -----------------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys: YAML would silently keep only the last one."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden by the keys beside it
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            seen[key] = key_node
        except TypeError:  # unhashable key: let the normal constructor report it
            pass
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def display(path: Path) -> str:
    """A path as the user would recognise it: relative to the working directory when below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_data_file(path: Path) -> Any:
    """Parse a YAML (or JSON) file, naming the file and line of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoadError(f"{display(path)}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"{display(path)}: cannot read: {exc}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{display(path)}:{mark.line + 1}" if mark else display(path)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        cmark = getattr(exc, "context_mark", None)
        if context and cmark is not None and (mark is None or cmark.line != mark.line):
            context += f" started at line {cmark.line + 1}"
        raise LoadError(f"{where}: invalid YAML: {problem}" + (f" ({context})" if context else "")) from None


def _is_include(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {INCLUDE_KEY} and isinstance(value[INCLUDE_KEY], str)


@dataclass
class Entry:
    """One payload to send: where it was written, its endpoint and its body, references not yet resolved."""

    file: Path
    index: int  # 1-based position in the list it was written in
    endpoint: str
    payload: Any

    @property
    def label(self) -> str:
        """`FILE entry N (endpoint "name")`: enough to find the entry in its file."""
        name = None
        if isinstance(self.payload, dict):
            for key in ("name", "id", "username", "obj_id", "userID", "user_id", "stream_id"):
                value = self.payload.get(key)
                if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                    name = value
                    break
        what = f'{self.endpoint} "{name}"' if name is not None else self.endpoint
        return f"{display(self.file)} entry {self.index} ({what})"


class _Reader:
    """Expands the files given and their `{file: ...}` includes into the ordered list of entries."""

    def __init__(self) -> None:
        self._stack: list[Path] = []

    def _include(self, base: Path, where: str, name: str) -> tuple[Path, Any]:
        target = (base.parent / name).resolve()
        if target in self._stack:
            chain = " -> ".join(display(p) for p in [*self._stack, target])
            raise LoadError(f"{where}: the include of {name} makes a cycle: {chain}")
        if not target.exists():
            raise LoadError(f"{where}: included file {name} does not exist (looked for {display(target)})")
        if target.suffix.lower() in (*YAML_SUFFIXES, ".json"):
            return target, read_data_file(target)
        # SkyPortal's loader sends other files (thumbnails, spectra) inline, base64-encoded.
        return target, base64.b64encode(target.read_bytes()).decode("ascii")

    def read(self, path: Path) -> list[Entry]:
        path = path.resolve()
        data = read_data_file(path)
        if data is None:
            return []
        if not isinstance(data, dict):
            raise LoadError(
                f"{display(path)}: the top level must map API endpoints (such as `telescope:`) to lists of entries; "
                f"found a {type(data).__name__}. A bare list belongs in a file included with `- file: {path.name}`"
            )
        self._stack.append(path)
        try:
            entries: list[Entry] = []
            for endpoint, items in data.items():
                if not isinstance(endpoint, str) or not endpoint.strip("/"):
                    raise LoadError(f"{display(path)}: top-level key {endpoint!r} is not an API endpoint")
                endpoint = _normalise_endpoint(endpoint)
                entries.extend(self._items(path, endpoint, items))
            return entries
        finally:
            self._stack.pop()

    def _items(self, path: Path, endpoint: str, items: Any) -> Iterator[Entry]:
        where = f"{display(path)}: {endpoint}"
        if _is_include(items):
            target, items = self._include(path, where, items[INCLUDE_KEY])
            self._stack.append(target)
            try:
                yield from self._items(target, endpoint, items)
            finally:
                self._stack.pop()
            return
        if items is None:
            return
        if not isinstance(items, list):
            raise LoadError(f"{where}: expected a list of entries, found a {type(items).__name__}")
        for i, item in enumerate(items, start=1):
            if _is_include(item):
                target, content = self._include(path, f"{where} entry {i}", item[INCLUDE_KEY])
                self._stack.append(target)
                try:
                    yield from self._items(target, endpoint, content if isinstance(content, list) else [content])
                finally:
                    self._stack.pop()
            else:
                yield Entry(path, i, endpoint, self._expand_nested(path, f"{where} entry {i}", item))

    def _expand_nested(self, path: Path, where: str, value: Any) -> Any:
        """Replace `{file: X}` inside a payload by X's content (parsed if YAML/JSON, else base64)."""
        if _is_include(value):
            target, content = self._include(path, where, value[INCLUDE_KEY])
            self._stack.append(target)
            try:
                return self._expand_nested(target, where, content)
            finally:
                self._stack.pop()
        if isinstance(value, dict):
            return {k: self._expand_nested(path, where, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._expand_nested(path, where, v) for v in value]
        return value


def _normalise_endpoint(endpoint: str) -> str:
    endpoint = endpoint.strip().strip("/")
    return endpoint[4:] if endpoint.startswith("api/") else endpoint


def read_entries(paths: list[Path]) -> list[Entry]:
    """All entries of the files, in order, with includes expanded."""
    reader = _Reader()
    entries: list[Entry] = []
    for path in paths:
        entries.extend(reader.read(Path(path)))
    return entries


# -- references ---------------------------------------------------------------------------------------------
def _reference(value: Any) -> str | None:
    """The name a string refers to (`"=NAME"` -> NAME), or None for other values and `"==literal"`."""
    if isinstance(value, str) and value.startswith("=") and not value.startswith("=="):
        return value[1:]
    return None


def _path_references(endpoint: str, known: Callable[[str], bool]) -> list[tuple[int, int, str]]:
    """(start, end, name) segment spans of references in an endpoint path.

    Reference names may contain "/" (telescope names such as `ShAO/T2m`), so the longest run of segments
    that forms a known name wins; an unknown one is reported as its single segment.
    """
    segments = endpoint.split("/")
    spans = []
    i = 0
    while i < len(segments):
        if _reference(segments[i]) is None:
            i += 1
            continue
        end = i + 1
        for j in range(len(segments), i, -1):
            if known("/".join(segments[i:j])[1:]):
                end = j
                break
        spans.append((i, end, "/".join(segments[i:end])[1:]))
        i = end
    return spans


def _value_references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _value_references(v)
    elif isinstance(value, list):
        for v in value:
            yield from _value_references(v)
    else:
        name = _reference(value)
        if name is not None:
            yield name


def check_entries(entries: list[Entry]) -> None:
    """Refuse, before any request, entries that are not mappings and references not defined earlier."""
    defined: dict[str, Entry] = {}
    later: dict[str, Entry] = {}
    for entry in entries:
        if isinstance(entry.payload, dict):
            name = entry.payload.get(ID_KEY)
            if name is not None:
                later.setdefault(str(name), entry)
    for entry in entries:
        if not isinstance(entry.payload, dict):
            kind = "nothing" if entry.payload is None else f"a {type(entry.payload).__name__} ({entry.payload!r:.60})"
            raise LoadError(f"{entry.label}: an entry must be a mapping of field: value, found {kind}")
        name = entry.payload.get(ID_KEY)
        if name is not None and not isinstance(name, (str, int)):
            raise LoadError(f"{entry.label}: `=id` must be a name, found {name!r}")
        refs = [ref for _, _, ref in _path_references(entry.endpoint, lambda n: n in defined)]
        refs += list(_value_references({k: v for k, v in entry.payload.items() if k != ID_KEY}))
        for ref in refs:
            if ref in defined:
                continue
            hint = ""
            if ref in later:
                hint = f"; it is defined only later, by {later[ref].label}"
            raise LoadError(
                f'{entry.label}: reference "={ref}" is not defined by an earlier entry (`=id: {ref}`){hint}'
            )
        if name is not None:
            defined[str(name)] = entry


def resolve(value: Any, ids: dict[str, Any]) -> Any:
    """`value` with every `"=NAME"` replaced by the id recorded as NAME (and `"==x"` unescaped to `"=x"`)."""
    if isinstance(value, dict):
        return {k: resolve(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ids) for v in value]
    if isinstance(value, str) and value.startswith("=="):
        return value[1:]
    name = _reference(value)
    return ids[name] if name is not None else value


def resolve_endpoint(endpoint: str, ids: dict[str, Any]) -> str:
    segments = endpoint.split("/")
    out: list[str] = []
    i = 0
    for start, end, name in _path_references(endpoint, lambda n: n in ids):
        out.extend(segments[i:start])
        out.append(quote(str(ids[name]), safe=""))
        i = end
    out.extend(segments[i:])
    return "/".join(out)


# -- talking to the portal ---------------------------------------------------------------------------------
class ApiCallError(Exception):
    """The portal refused a request (or answered something that is not its JSON envelope)."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} /api/{path} answered {status}: {message}")
        self.method, self.path, self.status, self.message = method, path, status, message


class Client:
    """A thin requests client of the portal's API: answers `data`, raises ApiCallError otherwise."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def call(self, method: str, path: str, json_body: Any = None, params: dict | None = None) -> Any:
        try:
            r = self.http.request(
                method, f"{self.url}/api/{path}", json=json_body, params=params, timeout=TIMEOUT
            )
        except requests.ConnectionError as exc:
            raise LoadError(
                f"the portal is not running at {self.url} (cannot connect: {_connection_reason(exc)}); "
                "start it, or give its address with --url"
            ) from None
        except requests.Timeout:
            raise LoadError(f"the portal at {self.url} did not answer {method} /api/{path} within {TIMEOUT} s") from None
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            snippet = " ".join(r.text.split())[:200]
            raise ApiCallError(method, path, r.status_code, f"not a portal API answer: {snippet!r}")
        if r.status_code >= 400 or body.get("status") != "success":
            raise ApiCallError(method, path, r.status_code, str(body.get("message") or r.reason))
        return body.get("data")

    def get(self, path: str, params: dict | None = None) -> Any:
        return self.call("GET", path, params=params)


def _connection_reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    match = re.search(r"\[Errno -?\d+\] ([^')\]]+)", text)
    return match.group(1) if match else text[:200]


def _as_list(data: Any, *keys: str) -> list[dict]:
    """The list in an answer: `data` itself, or `data[key]` for the first of `keys` present."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in keys:
            if isinstance(data.get(key), list):
                return data[key]
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    return []


# -- natural keys: how to find an entry that is already there ----------------------------------------------
Finder = Callable[[Client, str, dict], "dict | None"]


def _match(items: list[dict], payload: dict, keys: tuple[str, ...]) -> dict | None:
    for item in items:
        if isinstance(item, dict) and all(_same(payload[k], item.get(k)) for k in keys):
            return item
    return None


def _find_in_listing(keys: tuple[str, ...], *list_keys: str, query: str | None = None) -> Finder:
    """Find by `keys` in the endpoint's GET listing (narrowed by `?query=` when the API offers it)."""

    def find(client: Client, path: str, payload: dict) -> dict | None:
        if any(payload.get(k) is None for k in keys):
            return None  # the POST will say what is missing
        params = {query: payload[query]} if query else None
        return _match(_as_list(client.get(path, params), *list_keys), payload, keys)

    return find


def _find_group(client: Client, path: str, payload: dict) -> dict | None:
    if payload.get("name") is None:
        return None
    data = client.get("groups")
    groups = _as_list(data, "all_groups") if isinstance(data, dict) and "all_groups" in data else []
    groups = groups or _as_list(data, "user_accessible_groups", "user_groups")
    return _match(groups, payload, ("name",))


def _find_source(client: Client, path: str, payload: dict) -> dict | None:
    obj_id = payload.get("id")
    if not isinstance(obj_id, str) or not obj_id:
        return None
    try:
        return client.get(f"sources/{quote(obj_id, safe='')}")
    except ApiCallError as exc:
        if exc.status in (400, 404):  # SkyPortal answers 400 for an unknown source id
            return None
        raise


def _group_member_finder(member_list: str, *id_keys: str) -> Finder:
    """Find a user or stream among the members listed by GET /api/groups/ID."""

    def find(client: Client, path: str, payload: dict) -> dict | None:
        member_id = next((payload[k] for k in id_keys if payload.get(k) is not None), None)
        if member_id is None:
            return None
        group = client.get(path.rsplit("/", 1)[0])
        for item in _as_list(group, member_list) if isinstance(group, dict) and member_list in group else []:
            if isinstance(item, dict) and str(item.get("id")) == str(member_id):
                return item
        return None

    return find


def _sync_source_groups(client: Client, path: str, payload: dict, existing: dict) -> list[str]:
    """Save an existing source to the payload's groups it is not saved to yet (never unsaves)."""
    wanted = payload.get("group_ids")
    if not isinstance(wanted, list):
        return []
    saved = {g.get("id") for g in existing.get("groups") or [] if isinstance(g, dict)}
    missing = [g for g in wanted if g not in saved]
    if not missing:
        return []
    client.call("POST", "source_groups", {"objId": existing.get("id", payload.get("id")), "inviteGroupIds": missing})
    return ["group_ids"]


@dataclass(frozen=True)
class NaturalKey:
    """How entries of one endpoint are found again, compared and updated."""

    find: Finder
    update_methods: tuple[str, ...] = ("PATCH", "PUT")  # tried in order; the next on 405
    # Payload fields that are options of creation rather than stored attributes: never compared.
    ignore: frozenset[str] = frozenset()
    # The field of a found entry that is its id (recorded for `=id`, used in the update URL).
    id_field: str = "id"
    # Renames from payload fields to the found entry's fields, for comparison.
    aliases: dict[str, str] = field(default_factory=dict)
    # Brings what PATCH cannot change in line (client, path, payload, existing) -> names of the fields it changed.
    sync: Callable[[Client, str, dict, dict], list[str]] | None = None


NATURAL_KEYS: list[tuple[re.Pattern[str], NaturalKey]] = [
    (re.compile(r"telescope"), NaturalKey(_find_in_listing(("name",), "telescopes", query="name"))),
    (re.compile(r"instrument"), NaturalKey(_find_in_listing(("name",), "instruments", query="name"))),
    (re.compile(r"groups"), NaturalKey(_find_group, ignore=frozenset({"group_admins"}))),
    (
        re.compile(r"groups/[^/]+/users"),
        NaturalKey(
            _group_member_finder("users", "userID", "user_id"),
            ignore=frozenset({"userID", "user_id"}),
            aliases={"canSave": "can_save"},
        ),
    ),
    (
        re.compile(r"groups/[^/]+/streams"),
        NaturalKey(
            _group_member_finder("streams", "stream_id", "streamID"),
            update_methods=(),
            ignore=frozenset({"stream_id", "streamID"}),
        ),
    ),
    (re.compile(r"streams"), NaturalKey(_find_in_listing(("name",), "streams"))),
    (re.compile(r"filters"), NaturalKey(_find_in_listing(("name", "group_id"), "filters"))),
    (
        re.compile(r"sources"),
        NaturalKey(_find_source, ignore=frozenset({"id", "group_ids"}), sync=_sync_source_groups),
    ),
    (
        re.compile(r"taxonomy"),
        NaturalKey(
            _find_in_listing(("name", "version"), "taxonomies"),
            update_methods=("PUT", "PATCH"),
            ignore=frozenset({"group_ids"}),
        ),
    ),
]


def natural_key(path: str) -> NaturalKey | None:
    for pattern, key in NATURAL_KEYS:
        if pattern.fullmatch(path):
            return key
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    # The API keeps some numbers a file may give as text (a taxonomy's version 1 is stored as "1").
    if isinstance(a, (int, float)) and isinstance(b, str):
        return str(a) == b
    if isinstance(a, str) and isinstance(b, (int, float)):
        return a == str(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        scalars = all(isinstance(x, (str, int, float)) for x in [*a, *b])
        if scalars:  # lists of names (filters, aliases) are sets in meaning; the API may reorder them
            try:
                return all(_same(x, y) for x, y in zip(sorted(a), sorted(b)))
            except TypeError:
                pass
        return all(_same(x, y) for x, y in zip(a, b))
    return a == b


def changed_fields(payload: dict, existing: dict, key: NaturalKey) -> dict:
    """The payload's fields whose value differs from the existing entry's (fields it does not show are skipped)."""
    out = {}
    for name, value in payload.items():
        if name in key.ignore:
            continue
        stored = key.aliases.get(name, name)
        if stored not in existing:
            continue
        if not _same(value, existing[stored]):
            out[name] = value
    return out


# -- the run -------------------------------------------------------------------------------------------------
def _answer_id(data: Any, path: str) -> Any:
    """The id in a creation answer: `id`, or `<endpoint>_id` (`taxonomy_id`), or the one `*_id` field."""
    if not isinstance(data, dict):
        return None
    if data.get("id") is not None:
        return data["id"]
    last = path.rstrip("/").rsplit("/", 1)[-1]
    for key in (f"{last}_id", f"{last.rstrip('s')}_id"):
        if data.get(key) is not None:
            return data[key]
    candidates = [k for k in data if k.endswith("_id") and data[k] is not None]
    if len(candidates) == 1:
        return data[candidates[0]]
    if isinstance(data.get("ids"), list) and len(data["ids"]) == 1:
        return data["ids"][0]
    return None


@dataclass
class Outcome:
    entry: Entry
    action: str  # created | updated | unchanged
    id: Any = None
    fields: list[str] = field(default_factory=list)


class Loader:
    """Sends entries to the portal one request each, remembering `=id`s; stops at the first refusal."""

    def __init__(self, client: Client, out=None) -> None:
        self.client = client
        self.ids: dict[str, Any] = {}
        self.outcomes: list[Outcome] = []
        self.out = out or sys.stdout

    def load(self, entries: list[Entry]) -> list[Outcome]:
        check_entries(entries)
        for entry in entries:
            try:
                outcome = self.load_entry(entry)
            except ApiCallError as exc:
                raise LoadError(f"{entry.label}: {exc}; nothing of this entry was written") from None
            except _EntryError as exc:
                raise LoadError(f"{entry.label}: {exc}") from None
            self.outcomes.append(outcome)
            detail = f" ({', '.join(outcome.fields)})" if outcome.fields else ""
            ident = f" id={outcome.id}" if outcome.id is not None else ""
            print(f"{entry.label}: {outcome.action}{detail}{ident}", file=self.out, flush=True)
        return self.outcomes

    def load_entry(self, entry: Entry) -> Outcome:
        path = resolve_endpoint(entry.endpoint, self.ids)
        payload = resolve({k: v for k, v in entry.payload.items() if k != ID_KEY}, self.ids)
        key = natural_key(path)
        existing = key.find(self.client, path, payload) if key else None
        if existing is None:
            data = self.client.call("POST", path, payload)
            outcome = Outcome(entry, "created", _answer_id(data, path))
        else:
            ident = existing.get(key.id_field)
            changes = changed_fields(payload, existing, key)
            if changes:
                self._update(f"{path}/{quote(str(ident), safe='')}", changes, key)
            changed = sorted([*changes, *(key.sync(self.client, path, payload, existing) if key.sync else [])])
            if changed:
                outcome = Outcome(entry, "updated", ident, changed)
            else:
                outcome = Outcome(entry, "unchanged", ident)
        name = entry.payload.get(ID_KEY)
        if name is not None:
            if outcome.id is None:
                raise _EntryError(
                    f"the portal's answer has no id to record as `=id: {name}` "
                    "(the entry itself was written)"
                )
            self.ids[str(name)] = outcome.id
        return outcome

    def _update(self, path: str, changes: dict, key: NaturalKey) -> None:
        for method in key.update_methods:
            try:
                self.client.call(method, path, changes)
                return
            except ApiCallError as exc:
                if exc.status != 405:
                    raise
        raise _EntryError(
            f"the portal offers no way to change an existing /api/{path.rsplit('/', 1)[0]} entry, and this one "
            f"differs from the stored one in: {', '.join(sorted(changes))} (nothing was written)"
        )


def _summary(outcomes: list[Outcome], total: int) -> str:
    counts = {a: sum(o.action == a for o in outcomes) for a in ("created", "updated", "unchanged")}
    text = f"{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged"
    return f"{len(outcomes)} of {total} entries loaded: {text}"


def portal_url(cfg: Config, url: str | None = None) -> str:
    return (url or cfg.get("loader.url") or cfg.server_url).rstrip("/")


def portal_token(cfg: Config, token: str | None = None) -> str:
    if token:
        return token
    from .bootstrap import token_file

    path = token_file(cfg)
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        raise LoadError(
            f"no API token: pass --token, or run `python -m astroportal bootstrap` to write {path}"
        ) from None
    except OSError as exc:
        raise LoadError(f"cannot read the token file {path}: {exc.strerror}") from None
    if not value:
        raise LoadError(f"the token file {path} is empty")
    return value


def main(cfg: Config, files: list[str], url: str | None = None, token: str | None = None) -> int:
    """Load `files` into the portal; print one line per entry and a summary. Returns the exit status."""
    entries: list[Entry] = []
    loader: Loader | None = None
    try:
        entries = read_entries([Path(f) for f in files])
        check_entries(entries)
        loader = Loader(Client(portal_url(cfg, url), portal_token(cfg, token)))
        loader.load(entries)
    except LoadError as exc:
        print(f"load_data: error: {exc}", file=sys.stderr)
        if loader is not None and entries:
            left = len(entries) - len(loader.outcomes) - 1
            later = ""
            if left > 0:
                later = "; the later entry was not attempted" if left == 1 else f"; the {left} later entries were not attempted"
            print(f"load_data: stopped at the first error{later}; {_summary(loader.outcomes, len(entries))}",
                  file=sys.stderr)
        return 1
    print(f"load_data: {_summary(loader.outcomes, len(entries))}")
    return 0
