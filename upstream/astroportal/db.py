"""The database engine and sessions."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine
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
            pool_pre_ping=True,
            # psycopg2's fast path for executemany with RETURNING.
            insertmanyvalues_page_size=1000,
        )
    return _engines[url]


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
