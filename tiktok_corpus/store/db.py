"""Engines, sessions and the schema gate.

Every command opens the database through :func:`open_store`, which refuses a stale schema with a
one-line message (:class:`StaleSchemaError`) - except a SQLite database that does not exist yet or is
empty, which the tool created itself and may migrate on its own.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings, raw_at_in_password, redact_url
from ..errors import ConfigError, StaleSchemaError, disk_full
from .lock_waits import watching_lock_waits

if TYPE_CHECKING:
    from .workers import Presence

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The execution option of a connection whose SQLite transactions only read (:meth:`Store.consistent_read`).
_READS_ONLY = "corpus_reads_only"
# Postgres advisory lock that migrations of one database take in turn (any fixed 64-bit number).
MIGRATION_LOCK_KEY = 0x7469_6B74_6F6B  # "tiktok"


@functools.cache
def table_insert(dialect_name: str, model):
    return (sqlite if dialect_name == "sqlite" else postgresql).insert(model.__table__)


def _json_text(value: object) -> str:
    """JSON columns (media URLs on every sighted video) through orjson: a few times faster than json.dumps."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}
# TCP keepalives on Postgres connections (libpq's, unless the URL sets them): a connection idle for long, as
# a worker's presence is (store/workers.py), is kept through NATs and firewalls that drop silent ones.
# A server that takes the connection and never answers (or a firewall dropping it) is given up after
# connect_timeout seconds, not psycopg's 130 s of silence; libpq's own settings (PGCONNECT_TIMEOUT, a
# service file) and the URL's win.
_CONNECT_ARGS = {
    "keepalives": 1,
    "keepalives_idle": 60,
    "keepalives_interval": 15,
    "keepalives_count": 4,
    "connect_timeout": 10,
}


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (``sqlite:///path``); None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


def _refuse_a_folder(path: Path | None) -> None:
    """A SQLite path naming a folder (``--db sqlite:///data``, meant as the data dir): SQLite only says
    "unable to open database file", and a command that reads said there was no database."""
    if path is not None and path.is_dir():
        raise ConfigError(
            f"{path} is a folder, not a database file: give --db sqlite:///{path / 'corpus.db'}, or --data-dir {path}"
        )


def make_engine(url: str, *, immutable: bool = False) -> Engine:
    """An engine with the project's SQLite discipline: WAL, busy timeout, FKs, BEGIN IMMEDIATE.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock at the start of each transaction, so two processes
    never both read a queue row as free and then both claim it (SQLite has no ``SKIP LOCKED``); a
    reader's transaction (:meth:`Store.consistent_read`) begins deferred, holding no lock writers wait on.
    ``immutable`` opens a SQLite file that nothing writes as SQLite's ``immutable`` URI (see
    :func:`_on_read_only_media`).
    """
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        _refuse_a_folder(path)
        if path is not None and not immutable:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file where the folder should be, no permission
                raise ConfigError(f"cannot make the database's folder {path.parent}: {exc}") from None
        if immutable and path is not None:
            uri = f"{path.resolve().as_uri()}?immutable=1"
            connect = functools.partial(sqlite3.connect, uri, uri=True, check_same_thread=False)
            engine = create_engine("sqlite://", creator=connect, **_JSON_CODEC)
        else:
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **_JSON_CODEC)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no branch - one-liners
            dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below own transactions
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READS_ONLY) else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgres://"):  # libpq's and many hosts' spelling; SQLAlchemy knows postgresql://
        url = "postgresql+psycopg" + url.removeprefix("postgres")  # the driver installed, whatever the default
    if url.startswith("postgresql"):
        try:
            parsed = make_url(url)
            if raw_at_in_password(parsed):  # the driver's error then printed the rest ("host 'sssecret@db'")
                raise ConfigError(
                    f"cannot use the database URL {redact_url(url)}: it has an '@' in its password; write each "
                    "'@' of the password as %40 (use postgresql+psycopg://user:password@host:5432/database)"
                )
            given = set(parsed.query)
            if "PGCONNECT_TIMEOUT" in os.environ or "PGSERVICE" in os.environ or "service" in given:
                given.add("connect_timeout")
            return create_engine(
                url,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=10,
                connect_args={key: value for key, value in _CONNECT_ARGS.items() if key not in given},
                **_JSON_CODEC,
            )
        except (ValueError, ArgumentError, NoSuchModuleError, ImportError) as exc:  # a port, a driver not there
            # Said in words of our own: SQLAlchemy's quote the URL, or the part of it a stray "@" left unparsed.
            if isinstance(exc, ImportError):
                reason = f"its driver {exc.name or ''} is not installed"
            elif isinstance(exc, NoSuchModuleError):
                reason = f"SQLAlchemy has no driver {url.partition('://')[0]!r}"
            else:
                reason = "it cannot be read (is the port a number, and every '@' of the password written %40?)"
            raise ConfigError(
                f"cannot use the database URL {redact_url(url)}: {reason} "
                "(use postgresql+psycopg://user:password@host:5432/database)"
            ) from None
    scheme, has_scheme, _ = url.partition("://")
    named = f"database URL of scheme {scheme!r}" if has_scheme else "database URL: it has no scheme://"
    raise ConfigError(
        f"unsupported {named} (use sqlite:///path/to/corpus.db or postgresql+psycopg://user@host/database)"
    )


def alembic_config(engine: Engine | None = None) -> Config:
    """Alembic configuration pointing at the migration tree shipped inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(files("tiktok_corpus.migrations")))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migration tree has a single head"
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


@contextmanager
def reporting_connection_errors(url: str) -> Iterator[None]:
    """Turn "cannot reach / log in to the database" into one expected line, password masked.

    The driver's message is kept (it says why), with the password scrubbed should it ever appear.
    """
    try:
        yield
    except DBAPIError as exc:
        if exc.statement is not None:  # a failing statement on a live connection: not ours to soften
            raise
        if full := disk_full(exc):  # a commit (no statement) on a full disk: said as everywhere else
            raise full from None
        raise ConfigError(
            f"cannot open database {redact_url(url)}: {_driver_reason(exc, url)}{_unwritable_folder(url)}",
            kind="db_unreachable",
        ) from None


def _driver_reason(exc: DBAPIError, url: str) -> str:
    """The first line of the driver's message (it says why), with the password scrubbed should it appear."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    password = make_url(url).password
    return reason.replace(str(password), "***") if password else reason


def _unwritable_folder(url: str) -> str:
    """Why SQLite "cannot open" a file it can read: its folder takes no -wal (a corpus on a read-only
    medium, which a command that writes cannot use); empty where that is not it."""
    path = sqlite_file(url)
    if path is None or os.access(path.resolve().parent, os.W_OK):
        return ""
    return (
        f" ({path.resolve().parent} cannot be written: a read-only mount, or another user's folder; "
        "`corpus status` and `corpus browse` can read it)"
    )


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def hold_migration_lock(connection: Connection) -> None:
    """Make another migration of this Postgres database wait until this transaction ends.

    Machines started together against one Postgres would otherwise all find no schema and all create
    it (the losers crash on a duplicate table); the waiter then finds the schema current. SQLite needs
    nothing: its ``BEGIN IMMEDIATE`` already takes the write lock first.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def upgrade(engine: Engine, revision: str = "head") -> None:
    try:
        command.upgrade(alembic_config(engine), revision)
    except CommandError as exc:  # an unknown revision: the user's to correct
        raise ConfigError(f"cannot upgrade to {revision!r}: {exc}") from None


@contextmanager
def _short_lived_engine(settings: Settings, *, reads_only: bool = False) -> Iterator[Engine]:
    """An engine for one schema command, disposed after; connection failures become one line. One that
    only reads opens a corpus on a read-only medium as :func:`open_store` does."""
    url = settings.db_url or ""
    engine = make_engine(url, immutable=reads_only and _on_read_only_media(url))
    try:
        with reporting_connection_errors(url):
            yield engine
    finally:
        engine.dispose()


def upgrade_database(
    settings: Settings, revision: str = "head", *, on_lock_wait: Callable[[str], None] | None = None
) -> str:
    """``corpus db upgrade``: migrate the configured database; returns the revision it is at now.
    ``on_lock_wait`` hears who holds a lock the upgrade waits for (Postgres: :mod:`.lock_waits`)."""
    with _short_lived_engine(settings) as engine, ExitStack() as watching:
        if on_lock_wait is not None:  # a second engine and a thread only for a caller who listens
            watcher = watching.enter_context(_short_lived_engine(settings))
            watching.enter_context(watching_lock_waits(engine, watcher, on_lock_wait))
        _refuse_a_newer_schema(current_revision(engine), settings.safe_db_url)
        try:
            upgrade(engine, revision)
        except DBAPIError as exc:  # tables not as their revision says (a restored copy, a hand edit), a full disk
            if disk_full(exc):
                raise
            at = current_revision(engine) or "none"
            reason = _driver_reason(exc, settings.db_url or "")
            raise ConfigError(
                f"cannot upgrade {settings.safe_db_url} past revision {at}: a migration failed: {reason}"
            ) from None
        return current_revision(engine) or "none"


def database_revision(settings: Settings) -> str | None:
    """The configured database's schema revision (``None``: never migrated); a SQLite path with no
    file is refused, not created."""
    _require_sqlite_file(settings.db_url or "")
    with _short_lived_engine(settings, reads_only=True) as engine:
        return current_revision(engine)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


# The connection :meth:`Store.consistent_read` hands out, which a stage passes on to the store's reads.
Reader = Connection


@dataclass
class Store:
    """An open, schema-checked database: the one handle stages receive."""

    engine: Engine
    sessions: sessionmaker[Session]
    safe_url: str
    # This store's worker once it claims work (:mod:`.workers`), withdrawn when the store is disposed.
    presence: Presence | None = field(default=None, init=False, repr=False)
    presence_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def is_named_by(self, safe_url: str) -> bool:
        """Whether ``safe_url`` (a redacted URL another command recorded: an export's manifest) names this
        database: the same URL, or a SQLite path that resolves to this one's file from here (the default
        URL keeps ``--data-dir`` as typed, so ``data`` and ``/home/me/data`` are one corpus)."""
        if safe_url == self.safe_url:
            return True
        recorded, mine = sqlite_file(safe_url), sqlite_file(self.safe_url)
        return recorded is not None and mine is not None and recorded.resolve() == mine.resolve()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on any error."""
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def consistent_read(self) -> Iterator[Reader]:
        """A connection in one read-only transaction, for a reader of several queries (an export) whose
        reads must all see the database as of one moment, whatever commits meanwhile.

        Postgres: ``REPEATABLE READ``, whose snapshot is taken at the first query. SQLite: a deferred
        ``BEGIN``; in WAL mode a reader keeps the snapshot of its first read until the transaction ends,
        and writers go on meanwhile (``BEGIN IMMEDIATE`` would hold them off for the whole read).
        """
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            else:
                conn.execution_options(**{_READS_ONLY: True})
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        try:
            if self.presence is not None:
                self.presence.end()
        finally:
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()


def _is_empty(engine: Engine) -> bool:
    return not inspect(engine).get_table_names()


def open_store(
    settings: Settings, *, check_schema: bool = True, create: bool = True, reads_only: bool = False
) -> Store:
    """Open the configured database and make sure its schema is current.

    A brand-new SQLite database (missing file or no tables) is created at the head revision, unless
    ``create`` is off (the commands that only read: a mistyped path must not become an empty corpus).
    Anything else that is behind raises :class:`StaleSchemaError` naming the command to run.
    ``reads_only`` (browse, status): on SQLite every transaction is a deferred ``BEGIN``, which in WAL
    mode never holds off a writer (a crawl) nor waits for one; ``BEGIN IMMEDIATE`` would do both.
    """
    url = settings.db_url or ""
    if not create:
        _require_sqlite_file(url)
    engine = make_engine(url, immutable=reads_only and _on_read_only_media(url))
    if reads_only:
        engine = engine.execution_options(**{_READS_ONLY: True})
    store = Store(engine, sessionmaker(engine, expire_on_commit=False), redact_url(url))
    if check_schema:
        try:
            with reporting_connection_errors(url):
                _check_schema(store, create=create)
        except Exception:
            engine.dispose()
            raise
    return store


def _require_sqlite_file(url: str) -> None:
    """Refuse a SQLite path with no database file: connecting would create an empty one there."""
    path = sqlite_file(url)
    _refuse_a_folder(path)
    if path is not None and not path.is_file():
        raise ConfigError(
            f"no corpus database at {path}: check --data-dir / --db (a crawl or `corpus db upgrade` makes one)"
        )


def _on_read_only_media(url: str) -> bool:
    """Whether ``url`` is a SQLite file to read as immutable: one in a folder this process cannot write (a
    read-only mount, a corpus shared read-only) with no ``-shm`` file beside it. SQLite in WAL mode must
    make that file even to read, and there it cannot; immutable is exact while the write-ahead log is
    empty (a corpus closed cleanly). A log with pages in it and no ``-shm`` cannot be read there: refused,
    saying why. Where the ``-shm`` is there (a writer elsewhere keeps it), SQLite reads through it."""
    path = sqlite_file(url)
    if path is None:
        return False
    path = path.resolve()  # the -shm and -wal are made beside the file a link names
    if os.access(path.parent, os.W_OK) or path.with_name(f"{path.name}-shm").exists():
        return False
    wal = path.with_name(f"{path.name}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise ConfigError(
            f"cannot read {path} where it is: its folder is read-only and its write-ahead log {wal.name} "
            "holds writes that SQLite can only read by making a -shm file beside it; open it where it can be "
            "written, or copy the folder",
            kind="db_unreachable",
        )
    return True


def _refuse_a_newer_schema(current: str | None, safe_url: str) -> None:
    """A schema this version does not know was migrated by a newer one: nothing here can read or upgrade it
    (``db upgrade`` said only that Alembic "can't locate revision")."""
    if current is not None and current not in known_revisions():
        raise StaleSchemaError(
            f"database {safe_url} is at schema {current}, which this version of tiktok-corpus "
            f"does not know (it was migrated by a newer one): upgrade tiktok-corpus"
        )


def _check_schema(store: Store, *, create: bool) -> None:
    """Pass on a current schema; create a brand-new SQLite one where ``create``; refuse anything else,
    saying why."""
    current, head = current_revision(store.engine), head_revision()
    if current == head:
        return
    if create and current is None and store.dialect == "sqlite" and _is_empty(store.engine):
        upgrade(store.engine)
        return
    _refuse_a_newer_schema(current, store.safe_url)
    raise StaleSchemaError(
        f"database {store.safe_url} is at schema {current or 'none'}, this version needs {head}: "
        f"run `corpus db upgrade`"
    )
