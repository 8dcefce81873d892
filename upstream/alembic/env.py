"""Alembic environment: the portal's models (plus configured extra model modules) on its database."""

from alembic import context
from sqlalchemy import pool

from astroportal import config as portal_config
from astroportal.db import engine_url, import_model_modules
from astroportal.models import Base

ac = context.config
cfg = ac.attributes.get("portal_config") or portal_config.load()
import_model_modules(cfg)
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=cfg.get("database.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    from sqlalchemy import create_engine

    connectable = ac.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(engine_url(cfg.get("database.url")), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
