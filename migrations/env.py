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
    with engine.connect() as connection:
        # SQLite: batch mode rebuilds a table (copy, drop, rename), and with foreign keys enforced, dropping
        # `videos` deleted every row referring to it (snapshots, edges, targets). Enforcement is a setting
        # of the connection, outside any transaction: off for the migration, on again after it.
        sqlite = connection.connection.dbapi_connection if connection.dialect.name == "sqlite" else None
        if sqlite is not None:
            sqlite.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                hold_migration_lock(connection)
                context.configure(
                    connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True
                )
                context.run_migrations()
        finally:
            if sqlite is not None:
                sqlite.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `corpus db upgrade`")
run_migrations_online()
