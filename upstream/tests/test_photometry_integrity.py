"""Batch photometry writes keep every foreign key whole, whether they run with PostgreSQL's foreign-key triggers
off (the parents locked by the writer: domain/replica_writes.py) or, without the right to do so, with them on.

Each race is played for real: a second connection deletes a parent (object, instrument, group, uploader) while
a batch transaction holds its locks, or before the batch gets them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import psycopg2
import pytest
from conftest import unique
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.orm import sessionmaker

# Rows of photometry or photometry_groups whose parent is gone: what broken referential integrity looks like.
ORPHANS_SQL = """
SELECT (SELECT count(*) FROM photometry AS p
        WHERE NOT EXISTS (SELECT 1 FROM objs AS o WHERE o.id = p.obj_id)
           OR NOT EXISTS (SELECT 1 FROM instruments AS i WHERE i.id = p.instrument_id)
           OR (p.owner_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users AS u WHERE u.id = p.owner_id)))
     + (SELECT count(*) FROM photometry_groups AS l
        WHERE NOT EXISTS (SELECT 1 FROM photometry AS p WHERE p.id = l.photometry_id)
           OR NOT EXISTS (SELECT 1 FROM groups AS g WHERE g.id = l.group_id))"""


# ---------------------------------------------------------------------------------------------------------------
# set-up straight through the database
# ---------------------------------------------------------------------------------------------------------------
def make_instrument(db) -> int:
    from astroportal.models import Instrument, Telescope

    tag = uuid.uuid4().hex[:6]
    with db() as s:
        tel = Telescope(name=f"Integrity {tag}", nickname=f"INT-{tag}", diameter=1.0, lat=0.0, lon=0.0)
        s.add(tel)
        s.flush()
        inst = Instrument(name=f"Cam {tag}", type="imager", filters=["ztfg", "ztfr"], telescope_id=tel.id)
        s.add(inst)
        s.commit()
        return inst.id


def make_group(db, user_id: int) -> int:
    from astroportal.models import Group, GroupUser

    with db() as s:
        group = Group(name=f"integrity-{uuid.uuid4().hex[:8]}")
        s.add(group)
        s.flush()
        s.add(GroupUser(group_id=group.id, user_id=user_id, admin=True))
        s.commit()
        return group.id


def make_obj(db, group_id: int) -> str:
    from astroportal.models import Obj, Source

    obj_id = unique("INT")
    with db() as s:
        s.add(Obj(id=obj_id, ra=10.0, dec=-5.0))
        s.flush()
        s.add(Source(obj_id=obj_id, group_id=group_id))
        s.commit()
    return obj_id


@pytest.fixture()
def uploader(make_user, db):
    """A fresh Full user with a group of their own (both may be deleted by a test)."""
    uid, token = make_user("Full user")
    return {"id": uid, "token": token, "group": make_group(db, uid)}


@pytest.fixture()
def batch(db, uploader):
    """A batch of 2 objects x 30 points on a fresh instrument, shared with the uploader's group."""
    instrument = make_instrument(db)
    objs = [make_obj(db, uploader["group"]) for _ in range(2)]
    n = 30
    body = {
        "obj_id": [o for o in objs for _ in range(n)],
        "mjd": [59000.0 + i for _ in objs for i in range(n)],
        "instrument_id": instrument, "filter": "ztfg", "magsys": "ab", "origin": "integrity",
        "mag": 18.0, "magerr": 0.1, "limiting_mag": 20.0, "group_ids": [uploader["group"]],
    }
    return {"objs": objs, "instrument": instrument, "group": uploader["group"], "user": uploader["id"],
            "token": uploader["token"], "body": body, "n": len(objs) * n}


def sql(db, query: str, **params):
    with db() as s:
        value = s.execute(text(query), params).scalar()
        s.commit()
        return value


def points_of(db, obj_ids) -> int:
    return sql(db, "SELECT count(*) FROM photometry WHERE obj_id = ANY(:o)", o=list(obj_ids))


def links_of(db, obj_ids) -> int:
    return sql(db, "SELECT count(*) FROM photometry_groups AS l JOIN photometry AS p ON p.id = l.photometry_id "
                   "WHERE p.obj_id = ANY(:o)", o=list(obj_ids))


def orphans(db) -> int:
    return sql(db, ORPHANS_SQL)


# Deleting each parent of a batch, by hand, as an admin's tool or another portal process would.
DELETES = {
    "obj": ("DELETE FROM objs WHERE id = %s", lambda b: b["objs"][0]),
    "instrument": ("DELETE FROM instruments WHERE id = %s", lambda b: b["instrument"]),
    "group": ("DELETE FROM groups WHERE id = %s", lambda b: b["group"]),
    "uploader": ("DELETE FROM users WHERE id = %s", lambda b: b["user"]),
}


def backend_waits_for_a_lock(dsn: str, pid: int | None = None, timeout: float = 10.0) -> bool:
    """Whether backend `pid` (or any other backend of the database) is waiting for a row or transaction lock
    within `timeout` seconds."""
    watcher = psycopg2.connect(dsn)
    watcher.autocommit = True
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with watcher.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    " AND pid <> pg_backend_pid() AND (%(pid)s IS NULL OR pid = %(pid)s)", {"pid": pid}
                )
                if cur.fetchone()[0]:
                    return True
            time.sleep(0.05)
        return False
    finally:
        watcher.close()


class Deleter(threading.Thread):
    """Runs one DELETE in a transaction of its own on another connection; `begin()` returns once it started."""

    def __init__(self, dsn: str, statement: str, key, commit_at_once: bool = True) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg2.connect(dsn)
        self.pid = self.conn.get_backend_pid()
        self.statement, self.key, self.commit_at_once = statement, key, commit_at_once
        self.deleted: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute("SET lock_timeout = '60s'")
                cur.execute(self.statement, (self.key,))
                self.deleted = cur.rowcount
            if self.commit_at_once:
                self.conn.commit()
        except BaseException as e:  # reported by the test
            self.error = e

    def finish(self) -> None:
        self.join(60)
        assert not self.is_alive(), "the delete did not finish"
        if not self.commit_at_once and self.error is None:
            self.conn.commit()
        self.conn.close()
        assert self.error is None, self.error


def dsn_of(cfg) -> str:
    return cfg.get("database.url")


@pytest.fixture()
def statements(db):
    """The SQL the in-process portal code sends, in order (a listener on the test's engine)."""
    engine = db.kw["bind"]
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    yield seen
    event.remove(engine, "before_cursor_execute", listen)


def is_batch_write(statement: str) -> bool:
    return "INSERT INTO photometry (" in statement


def fast_path_taken(statements: list[str]) -> bool:
    """Whether the batch statement ran in replica mode (set just before it, put back just after it)."""
    [write] = [i for i, st in enumerate(statements) if is_batch_write(st)]
    before = "SET LOCAL session_replication_role = replica" in statements[write - 1]
    after = "SET LOCAL session_replication_role = origin" in statements[write + 1]
    assert before == after, statements[write - 1:write + 2]
    return before


def user(session, user_id):
    from astroportal.domain.accounts import user_with_acls

    return user_with_acls(session, user_id)


# ---------------------------------------------------------------------------------------------------------------
# the fast path is on where it may be, and only there
# ---------------------------------------------------------------------------------------------------------------
def test_the_migrated_schema_lets_batches_run_with_triggers_off(db):
    """The test database runs as a superuser, and photometry and photometry_groups carry no trigger, rule or
    foreign key but those the batch writer locks itself: nothing keeps the fast path off. (When this fails after
    a migration, the message says what the migration added; the writer then falls back to triggers on.)"""
    from astroportal.domain import replica_writes
    from astroportal.domain.photometry import PHOTOMETRY_WRITES

    with db() as s:
        assert replica_writes.blockers(s.connection(), PHOTOMETRY_WRITES) == []
        assert replica_writes.allowed(s, PHOTOMETRY_WRITES)


SCHEMA_CHANGES = {
    "trigger": (
        ["CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
         "CREATE TRIGGER audit_points AFTER INSERT ON photometry FOR EACH ROW EXECUTE FUNCTION pg_temp.noop()"],
        "photometry has the trigger audit_points",
    ),
    "foreign key": (
        ["ALTER TABLE photometry_groups ADD COLUMN stream_id integer REFERENCES streams(id)"],
        "foreign key photometry_groups.stream_id -> streams.id is not locked by the writer",
    ),
    "rule": (
        ["CREATE RULE no_links AS ON INSERT TO photometry_groups DO INSTEAD NOTHING"],
        "photometry_groups has the rule no_links",
    ),
    "deferrable unique key": (
        ["ALTER TABLE photometry ADD CONSTRAINT uq_alert UNIQUE (alert_id) DEFERRABLE"],
        "photometry has the internal trigger",
    ),
    "reference by a non-key column": (
        ["CREATE UNIQUE INDEX uq_alert_id ON photometry (alert_id)",
         "CREATE TABLE alert_notes (alert_id bigint REFERENCES photometry (alert_id))"],
        "alert_notes refers to photometry by other columns than its primary key",
    ),
    "partitions": (
        ["CREATE TABLE photometry_2026 () INHERITS (photometry)"],
        "photometry is not a plain table without children",
    ),
}


@pytest.mark.parametrize("change", sorted(SCHEMA_CHANGES))
def test_anything_else_on_the_tables_keeps_the_triggers_on(db, change):
    """A schema change that replica mode would silently skip (another trigger or rule, a foreign key the writer
    does not lock) is found, named, and switches the fast path off. (Each change is rolled back.)"""
    from astroportal.domain import replica_writes
    from astroportal.domain.photometry import PHOTOMETRY_WRITES

    ddl, expected = SCHEMA_CHANGES[change]
    with db() as s:
        for statement in ddl:
            s.execute(text(statement))
        problems = replica_writes.check_tables(s.connection(), PHOTOMETRY_WRITES)
        s.rollback()
    assert any(expected in p for p in problems), problems


def test_a_new_trigger_on_photometry_fires_for_every_point_of_a_batch(db, batch, monkeypatch, statements):
    """A trigger some later migration adds is not skipped: the batch goes through it, point by point."""
    from astroportal.domain import photometry as phot
    from astroportal.domain import replica_writes

    name = f"count_{uuid.uuid4().hex[:8]}"
    with db() as s:
        s.execute(text(f"CREATE TABLE {name} (n integer)"))
        s.execute(text(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
            f"'BEGIN INSERT INTO {name} VALUES (1); RETURN NEW; END'"
        ))
        s.execute(text(f"CREATE TRIGGER {name} AFTER INSERT ON photometry FOR EACH ROW EXECUTE FUNCTION {name}()"))
        s.commit()
    try:
        monkeypatch.setattr(replica_writes, "_decided", {})  # as in a portal process started after the migration
        with db() as s:
            result = phot.upsert_photometry(s, user(s, batch["user"]), batch["body"])
        assert len(result["ids"]) == batch["n"]
        assert sql(db, f"SELECT count(*) FROM {name}") == batch["n"]
        assert not fast_path_taken(statements)
    finally:
        with db() as s:
            s.execute(text(f"DROP TRIGGER {name} ON photometry"))
            s.execute(text(f"DROP FUNCTION {name}()"))
            s.execute(text(f"DROP TABLE {name}"))
            s.commit()


# ---------------------------------------------------------------------------------------------------------------
# races with deletes of the parents
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("parent", sorted(DELETES))
def test_a_parent_deleted_while_the_batch_is_written_waits_and_then_cascades(db, cfg, batch, statements, parent):
    """The batch locks its parents when it checks them: a delete that comes while the (trigger-less) insert runs
    waits for the batch to commit, and then cascades to what the batch wrote. No row is left pointing nowhere."""
    from astroportal.domain import photometry as phot

    statement, key = DELETES[parent]
    state: dict = {}

    def during_the_insert(conn, cursor, sql_text, parameters, context, executemany):
        if is_batch_write(sql_text) and "deleter" not in state:
            deleter = state["deleter"] = Deleter(dsn_of(cfg), statement, key(batch))
            deleter.start()
            state["waited"] = backend_waits_for_a_lock(dsn_of(cfg), deleter.pid)

    engine = db.kw["bind"]
    event.listen(engine, "before_cursor_execute", during_the_insert)
    try:
        with db() as s:
            result = phot.upsert_photometry(s, user(s, batch["user"]), batch["body"])
    finally:
        event.remove(engine, "before_cursor_execute", during_the_insert)
    state["deleter"].finish()

    assert len(result["ids"]) == batch["n"]
    assert state["waited"], f"the delete of the {parent} did not wait for the batch"
    assert state["deleter"].deleted == 1
    assert fast_path_taken(statements)
    assert orphans(db) == 0
    if parent == "obj":
        assert points_of(db, batch["objs"][:1]) == 0 and links_of(db, batch["objs"][:1]) == 0
        assert points_of(db, batch["objs"][1:]) == batch["n"] // 2
    elif parent == "instrument":
        assert points_of(db, batch["objs"]) == 0
    elif parent == "group":
        assert points_of(db, batch["objs"]) == batch["n"] and links_of(db, batch["objs"]) == 0
    else:
        assert sql(db, "SELECT count(*) FROM photometry WHERE id = ANY(:ids) AND owner_id IS NULL",
                   ids=result["ids"]) == batch["n"]


REFUSALS = {
    "obj": (400, "`obj_id`: no object"),
    "instrument": (400, "`instrument_id`: no instrument"),
    "group": (409, "deleted while the batch was checked; nothing was written"),
}


@pytest.mark.parametrize("parent", ["obj", "instrument", "group"])
def test_a_parent_deleted_just_before_the_batch_refuses_it_and_nothing_is_written(api, db, cfg, batch, parent):
    """A delete that has begun when the batch checks its parents makes the batch wait; once the delete commits,
    the batch is refused with a message naming what is gone, and writes nothing (of any object)."""
    statement, key = DELETES[parent]
    deleter = Deleter(dsn_of(cfg), statement, key(batch), commit_at_once=False)
    deleter.start()
    deleter.join(30)
    assert deleter.error is None and deleter.deleted == 1
    answer: dict = {}
    upload = threading.Thread(
        target=lambda: answer.update(zip(("status", "body"), api.put("/api/photometry", batch["token"], json=batch["body"])))
    )
    upload.start()
    try:
        assert backend_waits_for_a_lock(dsn_of(cfg)), "the batch did not wait for the delete"
    finally:
        deleter.conn.commit()
        deleter.conn.close()
        upload.join(60)
    status, words = REFUSALS[parent]
    assert answer["status"] == status, answer
    assert words in answer["body"]["message"], answer
    assert points_of(db, batch["objs"]) == 0
    assert orphans(db) == 0


def test_an_unknown_instrument_is_refused_and_nothing_is_written(api, db, batch):
    body = {**batch["body"], "instrument_id": 2**31 - 1}
    status, answer = api.put("/api/photometry", batch["token"], json=body)
    assert status == 400 and f"no instrument with id {2**31 - 1}" in answer["message"], answer
    status, answer = api.post("/api/photometry", batch["token"], json=body)
    assert status == 400 and f"no instrument with id {2**31 - 1}" in answer["message"], answer
    assert points_of(db, batch["objs"]) == 0


def test_an_object_deleted_after_its_batch_takes_its_points_and_links_along(api, db, batch):
    status, answer = api.put("/api/photometry", batch["token"], json=batch["body"])
    assert status == 200, answer
    assert points_of(db, batch["objs"]) == batch["n"] and links_of(db, batch["objs"]) == batch["n"]
    with db() as s:
        s.execute(text("DELETE FROM objs WHERE id = :o"), {"o": batch["objs"][0]})
        s.commit()
    assert points_of(db, batch["objs"][:1]) == 0 and links_of(db, batch["objs"][:1]) == 0
    assert points_of(db, batch["objs"][1:]) == batch["n"] // 2
    assert orphans(db) == 0


def test_a_point_deleted_while_it_is_sent_again_to_a_new_group_refuses_the_batch(api, db, cfg, batch, uploader):
    """PUT of existing points to a further group links them once they are locked: a point deleted by another
    transaction while the batch waits for it is not linked to anything, and the batch answers 409, writing
    nothing."""
    from astroportal.domain import photometry as phot
    from astroportal.errors import ApiError

    status, answer = api.put("/api/photometry", batch["token"], json=batch["body"])
    assert status == 200, answer
    extra = make_group(db, uploader["id"])
    doomed = answer["data"]["ids"][0]
    state: dict = {}

    def commit_once_the_batch_waits(batch_pid: int) -> None:
        state["waited"] = backend_waits_for_a_lock(dsn_of(cfg), batch_pid)
        state["deleter"].conn.commit()

    def before_the_statement(conn, cursor, sql_text, parameters, context, executemany):
        if is_batch_write(sql_text) and "deleter" not in state:
            # The point is deleted, not yet committed: the statement's snapshot still sees it.
            deleter = state["deleter"] = Deleter(dsn_of(cfg), "DELETE FROM photometry WHERE id = %s", doomed,
                                                 commit_at_once=False)
            deleter.start()
            deleter.join(30)
            committer = state["committer"] = threading.Thread(
                target=commit_once_the_batch_waits, args=(cursor.connection.get_backend_pid(),), daemon=True
            )
            committer.start()

    engine = db.kw["bind"]
    event.listen(engine, "before_cursor_execute", before_the_statement)
    try:
        with db() as s:
            with pytest.raises(ApiError) as refused:
                phot.upsert_photometry(s, user(s, batch["user"]), {**batch["body"], "group_ids": [extra]})
    finally:
        event.remove(engine, "before_cursor_execute", before_the_statement)
        state["committer"].join(30)
        state["deleter"].conn.close()
    assert state["waited"], "the batch did not wait for the point's delete"
    assert refused.value.status_code == 409 and "deleted concurrently" in refused.value.message
    assert sql(db, "SELECT count(*) FROM photometry_groups WHERE group_id = :g", g=extra) == 0
    assert points_of(db, batch["objs"]) == batch["n"] - 1
    assert orphans(db) == 0


# ---------------------------------------------------------------------------------------------------------------
# without the right to set replica mode: the triggers stay on
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture()
def role_sessions(cfg):
    """role_sessions(granted) -> a sessionmaker of the portal's code on the test database as a fresh role that is
    not a superuser, owning no table (as the launcher's `astroportal` role), and allowed to set
    session_replication_role when `granted` (PostgreSQL 15's GRANT SET ON PARAMETER)."""
    from astroportal.db import engine_url
    from astroportal.events import session_info

    admin = psycopg2.connect(dsn_of(cfg))
    admin.autocommit = True
    made: list[tuple[str, object]] = []

    def make(granted: bool = False):
        role = f"writer_{uuid.uuid4().hex[:8]}"
        with admin.cursor() as cur:
            cur.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER")
            cur.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
            cur.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
            if granted:
                cur.execute(f"GRANT SET ON PARAMETER session_replication_role TO {role}")
        engine = create_engine(engine_url(dsn_of(cfg)).replace("postgres@", f"{role}@", 1))
        made.append((role, engine))
        return sessionmaker(bind=engine, expire_on_commit=False, info=session_info(cfg))

    yield make
    for role, engine in made:
        engine.dispose()
        with admin.cursor() as cur:
            cur.execute(f"DROP OWNED BY {role}")
            cur.execute(f"DROP ROLE {role}")
    admin.close()


def test_without_the_right_to_set_replica_mode_batches_are_written_with_the_triggers_on(
    db, cfg, batch, role_sessions, caplog
):
    """A portal whose database role may not set session_replication_role writes batches as before, its
    foreign-key triggers on (a delete of an object still waits for the batch, then cascades), and says why at
    DEBUG."""
    from astroportal.domain import photometry as phot
    from astroportal.models import Photometry

    plain_role_sessions = role_sessions(granted=False)
    seen: list[str] = []
    engine = plain_role_sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", lambda c, cur, st, *rest: seen.append(st))
    state: dict = {}

    def during_the_insert(conn, cursor, sql_text, parameters, context, executemany):
        if is_batch_write(sql_text) and "deleter" not in state:
            deleter = state["deleter"] = Deleter(dsn_of(cfg), DELETES["obj"][0], batch["objs"][0])
            deleter.start()
            state["waited"] = backend_waits_for_a_lock(dsn_of(cfg), deleter.pid)

    event.listen(engine, "before_cursor_execute", during_the_insert)
    with caplog.at_level(logging.DEBUG, logger="astroportal.replica_writes"):
        with plain_role_sessions() as s:
            result = phot.upsert_photometry(s, user(s, batch["user"]), batch["body"])
    state["deleter"].finish()

    assert "may not set session_replication_role" in caplog.text
    assert not fast_path_taken(seen)
    assert len(result["ids"]) == batch["n"] and state["waited"]
    with db() as s:
        kept = s.scalar(select(func.count()).select_from(Photometry).where(Photometry.obj_id == batch["objs"][1]))
    assert kept == batch["n"] // 2 and points_of(db, batch["objs"][:1]) == 0
    assert links_of(db, batch["objs"][1:]) == batch["n"] // 2
    assert orphans(db) == 0


def test_a_role_granted_the_parameter_gets_the_fast_path(db, batch, role_sessions):
    """What a deployment whose portal role is not a superuser grants it (GRANT SET ON PARAMETER
    session_replication_role, PostgreSQL 15+) is enough: its batches run with the triggers off."""
    from astroportal.domain import photometry as phot

    sessions = role_sessions(granted=True)
    seen: list[str] = []
    event.listen(sessions.kw["bind"], "before_cursor_execute", lambda c, cur, st, *rest: seen.append(st))
    with sessions() as s:
        result = phot.upsert_photometry(s, user(s, batch["user"]), batch["body"])
    assert fast_path_taken(seen)
    assert len(result["ids"]) == batch["n"] and links_of(db, batch["objs"]) == batch["n"]
    assert orphans(db) == 0
