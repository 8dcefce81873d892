"""The database engine and sessions."""

from __future__ import annotations

import select
from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from . import extension_points as ep
from .config import Config

_engines: dict[str, Engine] = {}


def import_model_modules(cfg: Config) -> None:
    """Import the extra model modules named in `app.model_modules` so that their tables join the metadata."""
    ep.MODEL_MODULES.modules(cfg)


def engine_url(url: str) -> str:
    """The portal speaks to PostgreSQL through psycopg2, whatever driver SQLAlchemy would pick by default."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def get_engine(cfg: Config) -> Engine:
    """One engine per database URL per process."""
    url = engine_url(cfg.get("database.url"))
    if url not in _engines:
        _engines[url] = create_engine(
            url,
            pool_size=int(cfg.get("database.pool_size") or 5),
            # Not SQLAlchemy's pre-ping (a `SELECT 1` round trip on every checkout, so on every request): a
            # checkout asks the socket instead (_check_on_checkout), and pings only when it looks gone.
            pool_pre_ping=False,
            # psycopg2's fast path for executemany with RETURNING.
            insertmanyvalues_page_size=1000,
        )
        event.listen(_engines[url], "checkout", _check_on_checkout)
        if not cfg.get("database.jit"):
            event.listen(_engines[url], "connect", _jit_off)
    return _engines[url]


def _jit_off(dbapi_connection: Any, connection_record: Any) -> None:
    """Turn PostgreSQL's JIT compilation off for the connection (`database.jit: false`, the default).

    The planner compiles a statement when its estimated cost passes jit_above_cost, which a batch write of ten
    thousand rows does (its input is costed by its length): compiling then took ~90 ms of a ~300 ms photometry
    batch, and a statement that runs once gains nothing back from it. The portal's queries are all short, so it
    is off for every statement. A SET, not a startup option, so that connection poolers accept it."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET jit = off")
    finally:
        cursor.close()
    # psycopg2 opened a transaction for the SET (autocommit is off): end it, or the pool's first checkout
    # would find the connection in a transaction the caller never began.
    dbapi_connection.commit()


def _socket_has_news(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has something to read, or is closed.

    Between transactions PostgreSQL sends nothing unprompted, except when the connection ends (a server restart
    or shutdown, pg_terminate_backend, an idle timeout: an error message and then end of file) or for a
    notification or notice; so an idle socket that is readable is probably dead. Costs a system call, no round
    trip."""
    if getattr(dbapi_connection, "closed", 0):
        return True
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # the driver already knows the connection is unusable
        return True
    if not hasattr(select, "poll"):  # no poll() on this platform: always ping, as pre-ping did
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _check_on_checkout(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """Refuse a pooled connection that the server has closed, so that the pool hands out a fresh one (raising
    DisconnectionError makes the pool discard it and try another).

    A readable socket is confirmed with a real `SELECT 1` (a notification or notice also makes it readable,
    and the connection is then fine). A connection lost without a word (a network cut with no reset) is not
    seen here; the statement using it fails, as it would after a pre-ping that passed a moment earlier.
    """
    if not _socket_has_news(dbapi_connection):
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except Exception as e:
        raise exc.DisconnectionError(f"pooled database connection is gone: {e}") from e


def make_sessionmaker(cfg: Config) -> sessionmaker[Session]:
    """Sessions on the configured database that announce their committed events to `app.event_subscribers`."""
    from .events import session_info
    from .live import feed  # noqa: F401 - its session listener writes each committed event's live row

    return sessionmaker(bind=get_engine(cfg), expire_on_commit=False, info=session_info(cfg))


@contextmanager
def session_scope(cfg: Config) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = make_sessionmaker(cfg)()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
