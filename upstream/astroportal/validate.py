"""Hostile input refused in one place: JSON bodies, strings, integers and times that the database or astropy
would choke on (a 500) become a 400 that names the field and quotes at most the first 100 characters.

Why each rule exists:
- PostgreSQL text cannot hold NUL (psycopg2 raises before sending), and a lone surrogate cannot be encoded
  as UTF-8: both used to end in a 500. They are refused wherever a string enters (body, query, path).
- A btree index row holds at most about 2.7 kB: names, ids and origins are limited to NAME_MAX characters
  (the schema says the same since migration 0003), free text to TEXT_MAX.
- Integers beyond PostgreSQL's integer/bigint, and JSON nested deeper than MAX_JSON_DEPTH (Python's parser
  recurses), are refused before they reach the database or the parser's recursion limit.
- Error messages and log lines quote a bad value only up to SHOWN_CHARS characters: a 1 MB value echoed
  into the answer and the log let a handful of requests rotate the log history away.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from .errors import ApiError

SHOWN_CHARS = 100
MAX_JSON_DEPTH = 64
MAX_URL_BYTES = 64 * 1024  # longer request targets are answered 414
MAX_HEADER_BYTES = 1024 * 1024  # what the HTTP server reads of the request line and headers at most
MAX_MESSAGE_CHARS = 2000  # an error message is cut here, whatever put it together
NAME_MAX = 256  # names, object ids, origins, filters: anything an index holds
TEXT_MAX = 100_000  # free text: comments, descriptions
LINK_MAX = 2048  # URLs stored as links
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# Times the ephemeris routes compute for: astropy's tables (leap seconds, Earth orientation) and the
# ephemerides they use cover these years; far outside them it raises, or takes seconds for nothing.
TIME_MIN_YEAR = 1900
TIME_MAX_YEAR = 2100

_SURROGATE = re.compile("[\ud800-\udfff]")


def shown(value: Any) -> str:
    """`value` for a message: its repr, cut after SHOWN_CHARS characters with the full length said."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return f"{value[:SHOWN_CHARS]!r}... ({len(value)} characters)"
    text = repr(value)
    if len(text) > SHOWN_CHARS:
        return text[:SHOWN_CHARS] + f"... ({len(text)} characters)"
    return text


def cut(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` cut to `limit` characters (messages and log lines)."""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def string_problem(value: str) -> str | None:
    """What makes `value` impossible to store (NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which text cannot hold"
    if _SURROGATE.search(value):
        return "contains a lone UTF-16 surrogate, which is not a character"
    return None


def check_string(value: str, field: str, max_len: int | None = NAME_MAX) -> str:
    """`value` unchanged when it can be stored and is at most `max_len` characters; 400 naming `field` otherwise."""
    problem = string_problem(value)
    if problem:
        raise ApiError(400, f"`{field}` {problem}: {shown(value)}")
    if max_len is not None and len(value) > max_len:
        raise ApiError(400, f"`{field}` is {len(value)} characters long; at most {max_len} are allowed: {shown(value)}")
    return value


def _label(path: list) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the body"


# In JSON text a NUL or a surrogate can only come as a \u escape, and nesting needs brackets: a body whose text
# has neither needs no walk (a photometry batch of 100,000 points is checked in milliseconds rather than half a
# second). A match only means "walk to be sure". Integers are not looked for in the text (a regex over long runs
# of digits costs as much as the walk): the field checks bound every integer that reaches an integer column.
_MAYBE_BAD_STRING = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _needs_walk(raw: bytes) -> tuple[bool, bool]:
    """(walk at all, look at the strings when walking). A list of a few hundred objects has more brackets than
    MAX_JSON_DEPTH: its containers are walked for their depth, but its strings (a batch of cutouts holds
    megabytes of base64) need no look unless the text has an escape that could make a bad one."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw[:4]:  # UTF-16 or UTF-32 text: escapes are not ASCII
        return True, True
    # A body without a backslash has no escape at all (found at memchr speed; the regex reads every byte).
    if b"\\" in raw and _MAYBE_BAD_STRING.search(raw):
        return True, True
    return _more_brackets_than(raw, MAX_JSON_DEPTH), False


def _more_brackets_than(raw: bytes, limit: int) -> bool:
    """Whether `raw` holds more than `limit` of "[" and "{". Each is found at memchr speed, and the search stops
    at the first one past the limit: a batch of cutouts (megabytes of base64, a bracket every 15 KB) shows enough
    in its first megabyte, where counting read all of it twice."""
    seen = 0
    for bracket in (b"[", b"{"):
        at = raw.find(bracket)
        while at >= 0:
            seen += 1
            if seen > limit:
                return True
            at = raw.find(bracket, at + 1)
    return False


def check_json_tree(data: Any, raw: bytes | None = None) -> None:
    """400 naming the field when parsed JSON holds a NUL or a lone surrogate (in a key or a string) or is nested
    deeper than MAX_JSON_DEPTH (and, when it walks, an integer beyond 64 bits). Walks without recursion, and not
    at all when the JSON text `raw` it was parsed from shows it cannot hold a bad string or deep nesting."""
    walk, strings = _needs_walk(raw) if raw is not None else (True, True)
    if not walk:
        return
    stack: list[tuple[Any, tuple]] = [(data, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            raise ApiError(400, f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep (at `{_label(list(path[:3]))}`...)")
        if isinstance(node, dict):
            items: Any = node.items()
            for key in node if strings else ():
                problem = string_problem(key)
                if problem:
                    raise ApiError(400, f"a field name in `{_label(list(path))}` {problem}: {shown(key)}")
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            items = (((), node),)  # the top-level value itself
        for key, value in items:
            t = type(value)
            if t is float or t is bool or value is None:
                continue
            if t is str:
                if strings and ("\x00" in value or _SURROGATE.search(value)):
                    where = _label(list(path) + ([key] if key != () else []))
                    raise ApiError(400, f"`{where}` {string_problem(value)}: {shown(value)}")
            elif t is int:
                if not -INT64_MAX - 1 <= value <= INT64_MAX:
                    where = _label(list(path) + ([key] if key != () else []))
                    raise ApiError(400, f"`{where}` is an integer beyond 64 bits: {shown(value)}")
            elif t is dict or t is list:
                stack.append((value, path + (key,) if key != () else path))


def parse_json_body(body: bytes) -> Any:
    """The parsed JSON of a request body, checked by check_json_tree; 400 with a clear message otherwise."""
    if not body:
        raise ApiError(400, "the request needs a JSON body")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None  # read again below
    else:
        check_json_tree(data, body)
        return data
    # What orjson refuses, the standard library may take (NaN and Infinity, integers beyond 64 bits, escaped lone
    # surrogates, UTF-16 text): such a body is answered as it always was, the field checks naming the value.
    try:
        data = json.loads(body)
    except RecursionError:
        raise ApiError(400, f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {cut(str(exc), 200)}") from None
    check_json_tree(data, body)
    return data


def bounded_int(value: Any, field: str, low: int = -INT32_MAX, high: int = INT32_MAX) -> int:
    """An int within [low, high] (PostgreSQL's integer by default); 400 naming `field` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"`{field}` must be an integer between {low} and {high}, got {shown(value)}")
    return value


def small_id(raw: str | None) -> int | None:
    """An id or page number from URL text: digits within PostgreSQL's integer, else None. (int() of a long run
    of digits raises, or makes a number that neither the database nor the JSON encoder takes.)"""
    if raw is None or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if value <= INT32_MAX else None


def finite_float(raw: str) -> float:
    """float(raw) for query arguments, refusing infinities and NaN ("1e999" is not a coordinate)."""
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return value


def log_uri(uri: str, limit: int = 300) -> str:
    """A request target for a log line: long ones cut, with their length said."""
    return uri if len(uri) <= limit else uri[:limit] + f"...({len(uri)} bytes)"

