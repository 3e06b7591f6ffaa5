"""Alembic environment: one migration tree for SQLite and Postgres (batch mode, named constraints)."""

from alembic import context
from sqlalchemy import create_engine

from tiktok_corpus.store.db import hold_migration_lock
from tiktok_corpus.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:  # plain `alembic` CLI use: the URL comes from the ini / -x option
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        hold_migration_lock(connection)
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True
        )
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `corpus db upgrade`")
run_migrations_online()
