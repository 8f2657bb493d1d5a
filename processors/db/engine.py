"""Engines and session factories, with SQLite tuned for several writer threads."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str, **kwargs) -> Engine:
    """An engine for the URL; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE so writers queue."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 30}, **kwargs)
        _tune_sqlite(engine)
        return engine
    return create_engine(database_url, pool_pre_ping=True, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    """Take the write lock at BEGIN: pysqlite's deferred BEGIN deadlocks when two readers both upgrade."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (handlers read them back)."""
    return sessionmaker(engine, expire_on_commit=False)
