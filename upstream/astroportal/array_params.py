"""Columns of a batch as PostgreSQL array literals, for set-based writes whose SQL never changes with the batch.

A batch insert built as `insert().values([...rows...])` is a new statement for every batch size: SQLAlchemy
compiles it again (a bind parameter per cell) on each request, which costs more than the database's work. The
writers of batches instead use one constant `text()` statement that receives each column as a single array
literal and unnests them server-side:

    INSERT INTO t (a, b) SELECT r.a, r.b
    FROM unnest(CAST(:a AS text[]), CAST(:b AS integer[])) WITH ORDINALITY AS r(a, b, n) ORDER BY r.n

so the statement is compiled once per process, psycopg2 sends a handful of parameters, and rows keep the
batch's order (serial ids are drawn in that order). A column of per-row arrays is sent as text[] of array
literals (cast per row: `CAST(r.ids AS bigint[])`), a JSON column as text[] of JSON documents (`CAST(r.data AS
jsonb)`).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any, Iterable

import orjson


def _quoted(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _element(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return _quoted(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):  # also numpy integers go through int() below
        return str(int(v))
    if isinstance(v, float):
        return repr(float(v))  # round-trips exactly; nan/inf are spelled as PostgreSQL reads them
    if isinstance(v, (datetime, date)):
        return _quoted(v.isoformat())
    if isinstance(v, (list, tuple)):  # one row's array, cast by the statement (text[] of literals)
        return _quoted(array_literal(v))
    if hasattr(v, "__index__"):  # numpy integer
        return str(int(v))
    if hasattr(v, "__float__"):  # numpy float
        return repr(float(v))
    raise TypeError(f"no PostgreSQL array literal for {type(v).__name__} value {v!r:.40}")


_NUMBERS = frozenset({float, int, type(None)})


def values_of(values: list, kinds: set) -> list:
    """`values` without its None elements (for math.isnan and the like)."""
    return [v for v in values if v is not None] if type(None) in kinds else values


def array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal ('{...}') of strings, numbers, booleans, dates/times (naive) and None (NULL);
    a list or tuple element becomes the text of its own literal (for a text[] column of per-row arrays)."""
    values = values if isinstance(values, list) else list(values)
    # A photometry batch sends ~100,000 elements, mostly floats: the columns of plain numbers, and of plain
    # strings that need no escaping, are joined at C speed (the repr of a number never holds "None").
    kinds = set(map(type, values))
    if kinds <= _NUMBERS:
        # orjson writes the shortest digits that read back to the same float, as repr does, some twenty times
        # faster; its `null` is read as NULL (case-insensitive in an array literal). It would write a NaN or an
        # infinity as null too, and cannot write integers beyond 64 bits: those take repr's spelling.
        if float not in kinds or not (any(map(math.isnan, values_of(values, kinds)))
                                      or any(map(math.isinf, values_of(values, kinds)))):
            try:
                return "{" + orjson.dumps(values)[1:-1].decode() + "}"
            except orjson.JSONEncodeError:
                pass
        text = ",".join(map(repr, values))
        return "{" + (text.replace("None", "NULL") if type(None) in kinds else text) + "}"
    if kinds == {str}:
        whole = "\x00".join(values)
        if '"' not in whole and "\\" not in whole:
            return '{"' + '","'.join(values) + '"}'
    return "{" + ",".join(_element(v) for v in values) + "}"


def json_literal(documents: Iterable[Any]) -> str:
    """A text[] literal of JSON documents, encoded as SQLAlchemy's JSON types encode them (json.dumps; None is
    the JSON null, as a JSON column stores a Python None); cast each with CAST(x AS jsonb)."""
    return array_literal([json.dumps(d) for d in documents])
