"""Checks of the distribution's data files (telescopes, instruments) before `load_data` sends anything.

The portal would refuse most mistakes too, but one request at a time: a bad entry in the middle of a file
leaves the entries before it loaded. Here every file is read first and every problem is reported at once,
each naming the file (and line), the entry and the field; when there is any, nothing is loaded.

What is checked, for the endpoints `telescope` and `instrument` of the loader's format (other endpoints are
left to the portal):
  - telescope: name and nickname (text), lat in [-90, 90], lon in [-180, 180], elevation in
    ELEVATION_RANGE metres, diameter in DIAMETER_RANGE metres (lat, lon and elevation are required unless
    `fixed_location: false`), robotic / fixed_location booleans, links http(s) URLs, no unknown field;
  - instrument: name, a type the portal knows, telescope_id naming a telescope entry (`=<its =id>`) of the
    files loaded (or a numeric id of a telescope already in the portal), filters from the portal's known
    bandpasses without repeats, no unknown field;
  - `=id` names unique across the files, telescope names unique, instrument names unique.

The known filters and instrument types are the portal's own: its public command `python -m astroportal
vocabulary` lists them (run through launcher/portal.py in the build, as a separate process: the launcher does
not import the portal). The files are returned in an order where
every `=NAME` reference comes after the entry defining it (data/instruments.yaml refers to
data/telescopes.yaml, which sorts after it).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import portal
from .errors import LauncherError

ID_KEY = "=id"
INCLUDE_KEY = "file"
# Metres. The portal accepts the same elevations; no optical telescope is larger than 50 m.
ELEVATION_RANGE = (-500.0, 6000.0)
DIAMETER_RANGE = (0.0, 50.0)  # exclusive below
TELESCOPE_FIELDS = ("name", "nickname", "lat", "lon", "elevation", "diameter", "robotic", "fixed_location",
                    "skycam_link", "weather_link")
INSTRUMENT_FIELDS = ("name", "type", "band", "telescope_id", "filters")
MAX_SHOWN = 50

@dataclass(frozen=True)
class Vocabulary:
    """What the portal accepts: bandpass names and instrument types."""

    filters: frozenset[str]
    instrument_types: tuple[str, ...]


def portal_vocabulary(cfg) -> Vocabulary:
    """The known filters and instrument types: the portal's public `vocabulary` command, run in the build."""
    try:
        data = portal.vocabulary(cfg)
    except LauncherError as exc:
        raise LauncherError(f"data check: cannot list the portal's known filters: {exc}") from None
    return Vocabulary(frozenset(data["filters"]), tuple(data["instrument_types"]))


# -- reading ------------------------------------------------------------------------------------------------
class _Mapping(dict):
    """A YAML mapping that remembers the line it starts on (1-based)."""

    line = 0


class _Loader(yaml.SafeLoader):
    """Safe YAML; mappings know their line; a repeated key is an error (YAML would keep the last one)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        except TypeError:
            pass
    out = _Mapping(loader.construct_mapping(node, deep=True))
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass
class Entry:
    """One payload of a data file, with where it was written."""

    file: Path  # the file that holds it (an included file, for an include)
    index: int  # 1-based position in its list
    endpoint: str
    payload: Any
    loaded_from: Path  # the file given to load_data that brought it in

    @property
    def line(self) -> int:
        return getattr(self.payload, "line", 0)

    def label(self) -> str:
        where = _shown(self.file) + (f":{self.line}" if self.line else "")
        name = self.payload.get("name") if isinstance(self.payload, dict) else None
        named = f' ("{name}")' if isinstance(name, (str, int, float)) and not isinstance(name, bool) else ""
        return f"{where}: {self.endpoint} entry {self.index}{named}"


@dataclass
class Report:
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _read(path: Path, report: Report) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        report.problems.append(f"{_shown(path)}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(f"{_shown(path)}: cannot read: {exc}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{_shown(path)}:{mark.line + 1}" if mark is not None else _shown(path)
        report.problems.append(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}")
    return None


def _is_include(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {INCLUDE_KEY} and isinstance(value[INCLUDE_KEY], str)


def _endpoint(key: Any) -> str:
    text = str(key).strip().strip("/")
    return text[4:] if text.startswith("api/") else text


def _collect(path: Path, given: Path, report: Report, stack: tuple[Path, ...] = ()) -> None:
    """Every entry of `path` (a file given to load_data), with `{file: ...}` includes followed."""
    data = _read(path, report)
    if data is None:
        return
    if not isinstance(data, dict):
        report.problems.append(f"{_shown(path)}: the top level must map endpoints (such as `telescope:`) to lists "
                               f"of entries, found a {type(data).__name__}")
        return
    for key, items in data.items():
        _items(path, given, _endpoint(key), items, report, (*stack, path.resolve()))


def _items(path: Path, given: Path, endpoint: str, items: Any, report: Report, stack: tuple[Path, ...]) -> None:
    if _is_include(items):
        items = [items]
    if items is None:
        return
    if not isinstance(items, list):
        report.problems.append(
            f"{_shown(path)}: {endpoint}: expected a list of entries, found a {type(items).__name__}")
        return
    for i, item in enumerate(items, start=1):
        if _is_include(item):
            target = (path.parent / item[INCLUDE_KEY]).resolve()
            if target in stack:
                report.problems.append(f"{_shown(path)}: {endpoint} entry {i}: the include of {item[INCLUDE_KEY]} "
                                       "makes a cycle")
                continue
            if target.suffix.lower() not in (".yaml", ".yml", ".json"):
                continue  # a thumbnail or spectrum sent inline: nothing to check here
            content = _read(target, report)
            if content is not None:
                _items(target, given, endpoint, content if isinstance(content, list) else [content], report,
                       (*stack, target))
        else:
            report.entries.append(Entry(path, i, endpoint, item, given))


# -- checking -----------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _reference(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("=") and not value.startswith("=="):
        return value[1:]
    return None


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


class _Checker:
    def __init__(self, report: Report, vocabulary: Vocabulary) -> None:
        self.report = report
        self.vocabulary = vocabulary
        self.ids: dict[str, Entry] = {}
        self.found: list[tuple[int, str]] = []
        self.position = {id(e): i for i, e in enumerate(report.entries)}

    def problem(self, entry: Entry, field_name: str | None, message: str) -> None:
        where = f"{field_name}: " if field_name else ""
        self.found.append((self.position[id(entry)], f"{entry.label()}: {where}{message}"))

    def unknown_fields(self, entry: Entry, known: tuple[str, ...]) -> None:
        for key in entry.payload:
            if key != ID_KEY and key not in known:
                self.problem(entry, str(key), f"unknown {entry.endpoint} field{_suggest(str(key), known)}; "
                             f"the fields are {', '.join(known)}")

    def text(self, entry: Entry, name: str, required: bool) -> None:
        value = entry.payload.get(name)
        if value is None:
            if required:
                self.problem(entry, name, "missing (required)")
        elif not isinstance(value, str) or not value.strip():
            self.problem(entry, name, f"must be non-empty text, got {value!r}")

    def number(self, entry: Entry, name: str, low: float, high: float, unit: str, required: bool,
               low_open: bool = False) -> None:
        value = entry.payload.get(name)
        if value is None:
            if required:
                self.problem(entry, name, "missing (required)")
            return
        if not _is_number(value):
            self.problem(entry, name, f"must be a number, got {value!r}")
            return
        if value < low or value > high or (low_open and value == low):
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
            self.problem(entry, name, f"{value!r} is outside {interval}{unit}")

    def boolean(self, entry: Entry, name: str) -> None:
        value = entry.payload.get(name)
        if value is not None and not isinstance(value, bool):
            self.problem(entry, name, f"must be true or false, got {value!r}")

    def link(self, entry: Entry, name: str) -> None:
        value = entry.payload.get(name)
        if value is None:
            return
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            self.problem(entry, name, f"must be an http(s) URL or null, got {value!r}")

    def telescope(self, entry: Entry) -> None:
        p = entry.payload
        self.unknown_fields(entry, TELESCOPE_FIELDS)
        self.text(entry, "name", required=True)
        self.text(entry, "nickname", required=True)
        fixed = p.get("fixed_location") is not False
        self.number(entry, "lat", -90, 90, " degrees", required=fixed)
        self.number(entry, "lon", -180, 180, " degrees", required=fixed)
        self.number(entry, "elevation", *ELEVATION_RANGE, " m", required=fixed)
        self.number(entry, "diameter", *DIAMETER_RANGE, " m", required=True, low_open=True)
        self.boolean(entry, "robotic")
        self.boolean(entry, "fixed_location")
        self.link(entry, "skycam_link")
        self.link(entry, "weather_link")

    def instrument(self, entry: Entry) -> None:
        p = entry.payload
        self.unknown_fields(entry, INSTRUMENT_FIELDS)
        self.text(entry, "name", required=True)
        self.text(entry, "band", required=False)
        kind = p.get("type")
        types = self.vocabulary.instrument_types
        if kind is None:
            self.problem(entry, "type", f"missing (required): one of {', '.join(types)}")
        elif kind not in types:
            self.problem(entry, "type", f"{kind!r} is not an instrument type: one of {', '.join(types)}"
                         f"{_suggest(str(kind), types)}")
        self.telescope_ref(entry, p.get("telescope_id"))
        self.filters(entry, p.get("filters"))

    def telescope_ref(self, entry: Entry, value: Any) -> None:
        if value is None:
            self.problem(entry, "telescope_id", "missing (required): `=<the telescope entry's =id>`")
            return
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return  # the id of a telescope already in the portal: the portal checks it
        name = _reference(value)
        if name is None:
            self.problem(entry, "telescope_id", f"must be `=<the telescope entry's =id>`, got {value!r}")
            return
        target = self.ids.get(name)
        if target is None:
            telescopes = [k for k, e in self.ids.items() if e.endpoint == "telescope"]
            self.problem(entry, "telescope_id", f"{value!r} names no telescope: no telescope entry of the files "
                         f"loaded has `=id: {name}`{_suggest(name, telescopes)}")
        elif target.endpoint != "telescope":
            self.problem(entry, "telescope_id", f"{value!r} is the {target.endpoint} entry {target.label()}, "
                         "not a telescope")

    def filters(self, entry: Entry, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            self.problem(entry, "filters", f"must be a list of bandpass names, got {value!r}")
            return
        seen: set[str] = set()
        known = self.vocabulary.filters
        for name in value:
            if not isinstance(name, str):
                self.problem(entry, "filters", f"{name!r} is not a bandpass name")
            elif name in seen:
                self.problem(entry, "filters", f"{name!r} is listed twice")
            elif name not in known:
                self.problem(entry, "filters", f"{name!r} is not a bandpass the portal knows{_suggest(name, known)}"
                             " (the portal's list: python -m astroportal vocabulary)")
            if isinstance(name, str):
                seen.add(name)

    def run(self) -> None:
        entries = self.report.entries
        names: dict[tuple[str, str], Entry] = {}
        for entry in entries:
            if not isinstance(entry.payload, dict):
                if entry.endpoint in ("telescope", "instrument"):
                    self.problem(entry, None, f"an entry must be a mapping of field: value, found {entry.payload!r}")
                continue
            ident = entry.payload.get(ID_KEY)
            if ident is not None:
                if isinstance(ident, bool) or not isinstance(ident, (str, int)) or str(ident) == "":
                    self.problem(entry, ID_KEY, f"must be a name, got {ident!r}")
                elif str(ident) in self.ids:
                    self.problem(entry, ID_KEY, f"{ident!r} is also the =id of {self.ids[str(ident)].label()}")
                else:
                    self.ids[str(ident)] = entry
            name = entry.payload.get("name")
            if entry.endpoint in ("telescope", "instrument") and isinstance(name, str):
                first = names.setdefault((entry.endpoint, name), entry)
                if first is not entry:
                    self.problem(entry, "name", f"{name!r} is also the name of {first.label()}: the portal finds "
                                 f"{entry.endpoint}s by name, so one would overwrite the other")
        for entry in entries:
            if isinstance(entry.payload, dict):
                if entry.endpoint == "telescope":
                    self.telescope(entry)
                elif entry.endpoint == "instrument":
                    self.instrument(entry)
        # In file order, each entry's problems together.
        self.report.problems.extend(message for _, message in sorted(self.found, key=lambda f: f[0]))


# -- order --------------------------------------------------------------------------------------------------
def _references(entry: Entry, known: set[str]) -> set[str]:
    """Names an entry refers to, in its values and in its endpoint's path (names may contain "/")."""
    out: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k != ID_KEY:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        else:
            ref = _reference(value)
            if ref is not None:
                out.add(ref)

    walk(entry.payload)
    segments = entry.endpoint.split("/")
    for i, seg in enumerate(segments):
        if _reference(seg) is not None:
            for j in range(len(segments), i, -1):
                candidate = "/".join(segments[i:j])[1:]
                if candidate in known:
                    out.add(candidate)
                    break
    return out


def load_order(files: list[Path], entries: list[Entry]) -> list[Path]:
    """`files` reordered (stably) so that a file comes after the files defining the names it refers to."""
    defined_in: dict[str, Path] = {}
    for e in entries:
        if isinstance(e.payload, dict) and e.payload.get(ID_KEY) is not None:
            defined_in.setdefault(str(e.payload[ID_KEY]), e.loaded_from)
    needs: dict[Path, set[Path]] = {f: set() for f in files}
    for e in entries:
        for ref in _references(e, set(defined_in)):
            source = defined_in.get(ref)
            if source is not None and source != e.loaded_from:
                needs[e.loaded_from].add(source)
    ordered: list[Path] = []
    left = list(files)
    while left:
        ready = next((f for f in left if needs[f] <= set(ordered)), None)
        if ready is None:  # files referring to each other: the loader names the reference it cannot resolve
            ordered.extend(left)
            break
        ordered.append(ready)
        left.remove(ready)
    return ordered


def validate(files: list[Path], vocabulary: Vocabulary) -> tuple[list[Path], list[str]]:
    """(the files in load order, every problem found); no problem means the files may be loaded."""
    report = Report()
    for f in files:
        _collect(Path(f), Path(f), report)
    if not report.problems:
        _Checker(report, vocabulary).run()
    return load_order([Path(f) for f in files], report.entries), report.problems


def check_files(cfg, files: list[Path]) -> list[Path]:
    """Validate the data files before loading; return them in load order, or raise naming every problem."""
    if not files:
        return files
    ordered, problems = validate(files, portal_vocabulary(cfg))
    if problems:
        shown = problems[:MAX_SHOWN]
        more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        raise LauncherError(
            f"the data files have {len(problems)} problem(s); nothing was loaded:\n  " + "\n  ".join(shown) + more, 2
        )
    return ordered
