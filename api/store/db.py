"""Engine, sessions and migrations. `Store(url)` is created per app (no module-level engine)."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_IMMEDIATE = "safewatch_write"


def make_engine(url: str) -> Engine:
    """An engine for `url`. SQLite: WAL, foreign keys, busy timeout, parent dir created. PostgreSQL: UTC session."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_sqlite_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "connect", _pg_utc)
    return engine


def _private_sqlite_file(path: Path) -> None:
    """The database holds webhook secrets: create it 0600 before SQLite opens it (SQLite gives the -wal and -shm
    files the database file's mode) and tighten one that an older release created 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if file.exists() and stat.S_IMODE(file.stat().st_mode) & 0o077:
                file.chmod(0o600)
        except OSError as exc:  # not our file: say so, SQLite decides whether it can be used
            log.warning("cannot make %s private (mode 0600): %s", file, exc.strerror or exc)


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    """Write transactions take the write lock up front (BEGIN IMMEDIATE): a deferred transaction that reads and then
    writes fails at once with SQLITE_BUSY when another connection wrote meanwhile, and the busy timeout cannot help."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")


def _pg_utc(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("SET TIME ZONE 'UTC'")
    cur.close()
    dbapi_conn.commit()


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration (programmatic `alembic upgrade head`, scripts inside the package)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    log.info("store migrated", extra={"url": engine.url.render_as_string(hide_password=True)})


class Store:
    """Engine + session factory + commit listeners (used to wake the SSE stream and the webhook dispatcher)."""

    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine.execution_options(**{_IMMEDIATE: True}), expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._listeners: list[Callable[[], None]] = []
        if run_migrations:
            migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-write session in one transaction: committed on success, rolled back on any error."""
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (on SQLite it does not take the write lock)."""
        with self.read_sessions.begin() as session:
            yield session

    def add_listener(self, callback: Callable[[], None]) -> None:
        """`callback()` runs after a commit that added events (from the committing thread)."""
        self._listeners.append(callback)

    def notify(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:  # a failing listener must not break the writer
                log.exception("store listener failed")

    def dispose(self) -> None:
        self.engine.dispose()
