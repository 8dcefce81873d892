"""Bulk statements run with PostgreSQL's foreign-key triggers off, when the caller has locked every parent row.

A foreign-key check is a trigger that, for each written row, looks the referenced row up and locks it FOR KEY
SHARE (about 10 µs a row and key). A batch writer that has already looked up every parent row of its batch can
take those same locks itself, once per parent, in the queries that look them up: no transaction can then delete
a parent or change its key before this one ends, which is all the per-row checks would have guaranteed. The
write statement then runs with `session_replication_role = replica`, in which PostgreSQL fires no trigger of
"origin" mode (the foreign-key checks among them), and the role goes back to `origin` right after it.

Replica mode turns off EVERY ordinary trigger and rule of the tables the statement writes, so it is used only when
`check_tables` finds nothing on them but the foreign keys the caller declares it has locked: any other trigger,
rule or foreign key (one added by a later migration) switches the fast path off rather than being skipped. It
also needs the right to set that parameter (a superuser, or GRANT SET ON PARAMETER); without it, and whenever the
check finds something, statements run as usual, with the triggers on. Both are found out once per process and
database (a migration is followed by a restart of the portal).

The statement run this way must only insert, and update columns that no foreign key refers to (never a primary
key or a referencing column): the triggers it skips on the parent side react only to deletes and key changes.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

log = logging.getLogger("astroportal.replica_writes")

INSUFFICIENT_PRIVILEGE = "42501"


@dataclass(frozen=True)
class ForeignKey:
    """table.column references ref_table.ref_column (single-column keys)."""

    table: str
    column: str
    ref_table: str
    ref_column: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column} -> {self.ref_table}.{self.ref_column}"


@dataclass(frozen=True)
class WriteShape:
    """The tables a bulk statement writes and the foreign keys of theirs whose parents the caller locks."""

    name: str
    tables: tuple[str, ...]
    foreign_keys: frozenset[ForeignKey]


# The catalog facts check_tables compares with a WriteShape, in one round trip.
_CATALOG_SQL = text(
    """
WITH t AS (SELECT name, to_regclass(name) AS rel FROM unnest(CAST(:tables AS text[])) AS name)
SELECT 'relation', t.name,
       CAST(c.relkind AS text) || CASE WHEN EXISTS (SELECT 1 FROM pg_inherits AS i WHERE i.inhparent = c.oid)
                                      THEN ' with children' ELSE '' END,
       CAST(NULL AS text), CAST(NULL AS text)
FROM t JOIN pg_class AS c ON c.oid = t.rel
UNION ALL
SELECT 'trigger', t.name, CAST(tg.tgname AS text), CAST(tg.tgisinternal AS text), CAST(con.contype AS text)
FROM t JOIN pg_trigger AS tg ON tg.tgrelid = t.rel LEFT JOIN pg_constraint AS con ON con.oid = tg.tgconstraint
UNION ALL
SELECT 'rule', t.name, CAST(r.rulename AS text), NULL, NULL
FROM t JOIN pg_rewrite AS r ON r.ev_class = t.rel WHERE r.rulename <> '_RETURN'
UNION ALL
-- the tables' own foreign keys (child side), as column lists
SELECT 'fk', t.name,
       (SELECT string_agg(CAST(a.attname AS text), ',' ORDER BY a.attnum) FROM pg_attribute AS a
        WHERE a.attrelid = con.conrelid AND a.attnum = ANY(con.conkey)),
       CAST(CAST(con.confrelid AS regclass) AS text),
       (SELECT string_agg(CAST(a.attname AS text), ',' ORDER BY a.attnum) FROM pg_attribute AS a
        WHERE a.attrelid = con.confrelid AND a.attnum = ANY(con.confkey))
FROM t JOIN pg_constraint AS con ON con.conrelid = t.rel WHERE con.contype = 'f'
UNION ALL
-- foreign keys that refer to the tables (parent side) by other columns than their primary key
SELECT 'referenced', CAST(CAST(con.conrelid AS regclass) AS text), CAST(con.conname AS text), t.name, NULL
FROM t JOIN pg_constraint AS con ON con.confrelid = t.rel
WHERE con.contype = 'f' AND NOT EXISTS (
    SELECT 1 FROM pg_constraint AS pk WHERE pk.conrelid = con.confrelid AND pk.contype = 'p'
      AND pk.conkey @> con.confkey AND pk.conkey <@ con.confkey)
"""
)


def check_tables(connection: Connection, shape: WriteShape) -> list[str]:
    """Why the tables of `shape` may not be written with triggers off (an empty list: they may).

    They may when each is a plain table without children, has no rule and no trigger but the internal ones of
    foreign keys, its foreign keys are exactly `shape.foreign_keys`, and every foreign key that refers to it
    refers to its primary key.
    """
    rows = connection.execute(_CATALOG_SQL, {"tables": list(shape.tables)}).all()
    problems: list[str] = []
    found_fks: set[ForeignKey] = set()
    seen_tables = set()
    for kind, a, b, c, d in rows:
        if kind == "relation":
            seen_tables.add(a)
            if b != "r":
                problems.append(f"{a} is not a plain table without children (relkind {b})")
        elif kind == "trigger":
            if c != "true":
                problems.append(f"{a} has the trigger {b}")
            elif d != "f":
                problems.append(f"{a} has the internal trigger {b}, not one of a foreign key")
        elif kind == "rule":
            problems.append(f"{a} has the rule {b}")
        elif kind == "fk":
            if "," in b or "," in d:
                problems.append(f"{a} has a multi-column foreign key ({b}) -> {c} ({d})")
            else:
                found_fks.add(ForeignKey(a, b, c, d))
        elif kind == "referenced":
            problems.append(f"{a} refers to {c} by other columns than its primary key ({b})")
    missing_tables = set(shape.tables) - seen_tables
    if missing_tables:
        problems.append(f"no table {', '.join(sorted(missing_tables))}")
    for fk in sorted(found_fks - shape.foreign_keys, key=str):
        problems.append(f"foreign key {fk} is not locked by the writer")
    for fk in sorted(shape.foreign_keys - found_fks, key=str):
        problems.append(f"foreign key {fk} is expected but absent")
    return problems


def _may_set_replica(connection: Connection) -> bool:
    """Whether this role may set session_replication_role (tried inside a transaction that is rolled back)."""
    try:
        with connection.begin_nested():
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            connection.execute(text("SET LOCAL session_replication_role = origin"))
    except DBAPIError as e:
        if getattr(e.orig, "pgcode", None) == INSUFFICIENT_PRIVILEGE:
            return False
        raise
    return True


def blockers(connection: Connection, shape: WriteShape) -> list[str]:
    """Everything that keeps `shape`'s statements from running with triggers off on this connection."""
    problems = [] if _may_set_replica(connection) else [
        "the database role may not set session_replication_role (needs superuser or GRANT SET ON PARAMETER)"
    ]
    return problems + check_tables(connection, shape)


_decided: dict[tuple[str, str], bool] = {}
_deciding = threading.Lock()


def allowed(session: Session, shape: WriteShape) -> bool:
    """Whether `shape`'s statements run with triggers off on this session's database: found out once per
    process (on a connection of its own), logged at DEBUG with the reasons when not."""
    engine = session.get_bind()
    key = (engine.url.render_as_string(hide_password=True), shape.name)
    decided = _decided.get(key)
    if decided is not None:
        return decided
    with _deciding:
        if key not in _decided:
            with engine.connect() as connection:
                problems = blockers(connection, shape)
                connection.rollback()
            if problems:
                log.debug("%s: foreign-key triggers stay on for its bulk writes: %s", shape.name, "; ".join(problems))
            else:
                log.debug("%s: bulk writes run with foreign-key triggers off (parents locked by the writer)", shape.name)
            _decided[key] = not problems
    return _decided[key]


@contextmanager
def triggers_off(session: Session, enabled: bool = True) -> Iterator[None]:
    """Run the statements of the block in replica mode (no trigger of origin mode fires), when `enabled`.

    The caller must hold FOR KEY SHARE locks on every parent row the block's rows refer to, and have checked that
    they exist. The role is set for the transaction only (SET LOCAL) and put back to origin as soon as the block
    ends; if the block fails, the transaction's rollback undoes it.
    """
    if not enabled:
        yield
        return
    session.execute(text("SET LOCAL session_replication_role = replica"))
    yield
    session.execute(text("SET LOCAL session_replication_role = origin"))
