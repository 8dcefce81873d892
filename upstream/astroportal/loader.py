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
import json
import math
import re
import sys
from collections import defaultdict
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
    mapping = _LineDict(yaml.SafeLoader.construct_mapping(loader, node, deep=deep))
    mapping.line = node.start_mark.line + 1
    return mapping


class _LineDict(dict):
    """A YAML mapping that remembers the line it starts on (1-based), for messages about an entry."""

    line = 0


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
    line: int = 0  # where the entry starts in its file (0: unknown)

    @property
    def name(self) -> Any:
        """What the entry is called (its name, id, username ...), or None."""
        if isinstance(self.payload, dict):
            for key in ("name", "id", "username", "obj_id", "userID", "user_id", "stream_id"):
                value = self.payload.get(key)
                if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                    return value
        return None

    @property
    def what(self) -> str:
        """`entry N (endpoint "name")`."""
        kind = f'{self.endpoint} "{self.name}"' if self.name is not None else self.endpoint
        return f"entry {self.index} ({kind})"

    @property
    def label(self) -> str:
        """`FILE entry N (endpoint "name")`: enough to find the entry in its file."""
        return f"{display(self.file)} {self.what}"


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
                yield Entry(path, i, endpoint, self._expand_nested(path, f"{where} entry {i}", item),
                            getattr(item, "line", 0))

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


def read_files(paths: list[Path]) -> dict[Path, list[Entry]]:
    """Each file's entries, with includes expanded (files in the order given)."""
    reader = _Reader()
    return {Path(path): reader.read(Path(path)) for path in paths}


def read_entries(paths: list[Path]) -> list[Entry]:
    """All entries of the files, with includes expanded, files in load order (see order_files)."""
    by_file = read_files(paths)
    return [e for path in order_files(by_file) for e in by_file[path]]


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


def order_files(by_file: dict[Path, list[Entry]]) -> list[Path]:
    """The files, reordered (stably) so that a file comes after the files defining the names it refers to.

    data/instruments.yaml refers to data/telescopes.yaml, which sorts after it: it is loaded second. Files
    that refer to each other keep their order (check_entries names the reference that cannot be resolved).
    """
    defined_in: dict[str, Path] = {}
    for path, entries in by_file.items():
        for e in entries:
            if isinstance(e.payload, dict) and e.payload.get(ID_KEY) is not None:
                defined_in.setdefault(str(e.payload[ID_KEY]), path)
    needs: dict[Path, set[Path]] = {path: set() for path in by_file}
    for path, entries in by_file.items():
        for e in entries:
            for ref in _entry_references(e, lambda n: n in defined_in):
                source = defined_in.get(ref)
                if source is not None and source != path:
                    needs[path].add(source)
    ordered: list[Path] = []
    left = list(by_file)
    while left:
        ready = next((p for p in left if needs[p] <= set(ordered)), None)
        if ready is None:
            ordered.extend(left)
            break
        ordered.append(ready)
        left.remove(ready)
    return ordered


def _entry_references(entry: Entry, known: Callable[[str], bool]) -> list[str]:
    refs = [ref for _, _, ref in _path_references(entry.endpoint, known)]
    if isinstance(entry.payload, dict):
        refs += list(_value_references({k: v for k, v in entry.payload.items() if k != ID_KEY}))
    return refs


@dataclass
class Problem:
    """One reason an entry (or a file) cannot be loaded."""

    message: str
    entry: Entry | None = None
    field: str | None = None
    file: Path | None = None  # for a file that cannot be read at all

    @property
    def body(self) -> str:
        """The message, led by the field unless it names it already (the portal's checks do)."""
        if self.field and f"`{self.field}`" not in self.message:
            return f"{self.field}: {self.message}"
        return self.message

    @property
    def text(self) -> str:
        """`FILE entry N (endpoint "name"): message`, as the loader reports its first problem."""
        head = self.entry.label if self.entry else (display(self.file) if self.file else "")
        return f"{head}: {self.body}" if head else self.body

    @property
    def located(self) -> str:
        """The same with the line: `FILE:LINE: entry N (endpoint "name"): field: message`."""
        if not self.entry:
            return self.text
        where = display(self.entry.file) + (f":{self.entry.line}" if self.entry.line else "")
        return f"{where}: {self.entry.what}: {self.body}"

    def as_json(self) -> dict:
        e = self.entry
        return {
            "file": str(e.file if e else self.file) if (e or self.file) else None,
            "line": e.line if e and e.line else None,
            "entry": e.index if e else None,
            "endpoint": e.endpoint if e else None,
            "name": e.name if e else None,
            "field": self.field,
            "message": self.message,
            "text": self.located,
        }


def entry_problems(entries: list[Entry]) -> list[Problem]:
    """Entries that are not mappings, bad or repeated `=id`s, and references not defined by an earlier entry."""
    found: list[Problem] = []
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
            found.append(Problem(f"an entry must be a mapping of field: value, found {kind}", entry))
            continue
        name = entry.payload.get(ID_KEY)
        if name is not None and (isinstance(name, bool) or not isinstance(name, (str, int))):
            found.append(Problem(f"`=id` must be a name, found {name!r}", entry))
            name = None
        for ref in _entry_references(entry, lambda n: n in defined):
            if ref in defined:
                continue
            hint = ""
            if ref in later:
                hint = f"; it is defined only later, by {later[ref].label}"
            found.append(Problem(f'reference "={ref}" is not defined by an earlier entry (`=id: {ref}`){hint}', entry))
        if name is not None:
            if str(name) in defined:
                found.append(Problem(f"`=id: {name}` is also the =id of {defined[str(name)].label}: a reference to it "
                                     "would be ambiguous", entry, ID_KEY))
            else:
                defined[str(name)] = entry
    return found


def check_entries(entries: list[Entry]) -> None:
    """Refuse, before any request, entries that are not mappings and references not defined earlier."""
    found = entry_problems(entries)
    if found:
        raise LoadError(found[0].text)


# What a reference in these fields must name: an entry of this endpoint.
REFERENCE_TARGETS = {"telescope_id": "telescope", "instrument_id": "instrument"}


def _validators() -> list[tuple[re.Pattern[str], Callable[[dict], list[tuple[str | None, str]]]]]:
    """The portal's own field checks of an endpoint's POST, for those that need no database."""
    from .domain.telescopes import instrument_problems, telescope_problems

    return [(re.compile(r"telescope"), telescope_problems), (re.compile(r"instrument"), instrument_problems)]


def validate(entries: list[Entry]) -> list[Problem]:
    """Every problem found without writing anything or asking the portal (the dry run).

    Structure and references first (as check_entries), then, for each entry of an endpoint the portal can
    check offline (telescope, instrument), every field its POST would refuse, with references standing for
    ids; a reference must name an entry of the right endpoint (REFERENCE_TARGETS); two entries with the same
    natural key (telescope or instrument name, ...) would overwrite each other. What needs the database (that a
    numeric id names an existing row, that a name is free) is checked by the real load.
    """
    found = entry_problems(entries)
    by_id = {str(e.payload[ID_KEY]): e for e in entries
             if isinstance(e.payload, dict) and isinstance(e.payload.get(ID_KEY), (str, int))}
    validators = _validators()
    seen_keys: dict[tuple, Entry] = {}
    placeholder_ids = defaultdict(lambda: 1)  # a reference stands for some id: its definition is checked apart
    for entry in entries:
        if not isinstance(entry.payload, dict):
            continue
        payload = {k: v for k, v in entry.payload.items() if k != ID_KEY}
        for name, endpoint in REFERENCE_TARGETS.items():
            ref = _reference(payload.get(name))
            target = by_id.get(ref) if ref is not None else None
            if target is not None and target.endpoint != endpoint:
                found.append(Problem(f'"={ref}" is {target.label}, not a {endpoint}', entry, name))
        key = natural_key(entry.endpoint)
        if key is not None and key.keys and all(isinstance(payload.get(k), (str, int, float)) for k in key.keys):
            ident = (entry.endpoint, *(str(payload[k]) for k in key.keys))
            first = seen_keys.setdefault(ident, entry)
            if first is not entry:
                same = " and ".join(f"`{k}` {payload[k]!r}" for k in key.keys)
                found.append(Problem(f"{same}: also that of {first.label}; the portal finds {entry.endpoint} entries "
                                     "by it, so the second would overwrite the first", entry, key.keys[0]))
        for pattern, check in validators:
            if pattern.fullmatch(entry.endpoint):
                resolved = resolve(payload, placeholder_ids)
                found.extend(Problem(message, entry, field) for field, message in check(resolved))
    position = {id(e): i for i, e in enumerate(entries)}
    # In file order, each entry's problems together.
    return sorted(found, key=lambda p: position.get(id(p.entry), -1))


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
    # The payload fields that identify an entry (two entries of one load with the same values collide).
    keys: tuple[str, ...] = ()
    # The field of a found entry that is its id (recorded for `=id`, used in the update URL).
    id_field: str = "id"
    # Renames from payload fields to the found entry's fields, for comparison.
    aliases: dict[str, str] = field(default_factory=dict)
    # Brings what PATCH cannot change in line (client, path, payload, existing) -> names of the fields it changed.
    sync: Callable[[Client, str, dict, dict], list[str]] | None = None


NATURAL_KEYS: list[tuple[re.Pattern[str], NaturalKey]] = [
    (re.compile(r"telescope"), NaturalKey(_find_in_listing(("name",), "telescopes", query="name"), keys=("name",))),
    (re.compile(r"instrument"), NaturalKey(_find_in_listing(("name",), "instruments", query="name"), keys=("name",))),
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
    (re.compile(r"streams"), NaturalKey(_find_in_listing(("name",), "streams"), keys=("name",))),
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


def dry_run(files: list[str], as_json: bool = False, out=None, err=None) -> int:
    """Validate `files` as a load would, writing nothing and asking no portal; report every problem.

    Text: one line per problem on stderr, a summary on stdout. JSON (stdout, one object):
    {"ok": bool, "files": [paths in load order], "entries": N, "problems": [{"file", "line", "entry",
    "endpoint", "name", "field", "message", "text"}]}. Returns 0 when the files may be loaded, 1 otherwise.
    """
    out, err = out or sys.stdout, err or sys.stderr
    paths = [Path(f) for f in files]
    by_file: dict[Path, list[Entry]] = {}
    problems: list[Problem] = []
    reader = _Reader()
    for path in paths:  # every unreadable file is reported, not only the first
        try:
            by_file[path] = reader.read(path)
        except LoadError as exc:
            problems.append(Problem(str(exc)))
    order = order_files(by_file)
    entries = [e for path in order for e in by_file[path]]
    if not problems:
        problems = validate(entries)
    if as_json:
        print(json.dumps({"ok": not problems, "files": [str(p) for p in order], "entries": len(entries),
                          "problems": [p.as_json() for p in problems]}, indent=1), file=out)
    else:
        for p in problems:
            print(f"load_data: {p.located}", file=err)
        verdict = f"{len(problems)} problem(s)" if problems else "no problem found"
        print(f"load_data: dry run: {len(entries)} entries in {len(order)} file(s), {verdict}; nothing was written",
              file=out)
    return 1 if problems else 0


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
