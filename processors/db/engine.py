"""Engines and session factories, with SQLite tuned for several writer threads."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

# PostgreSQL session guards. A processor loop must never wait forever: not on a row lock held by a session whose
# client vanished (network cut, killed process), not on a transaction left open by one, not on a dead server.
# Each ends in an error the processors retry (OperationalError is transient). Generous enough for every
# legitimate wait: batches hold locks for milliseconds; a migration waiting behind them gives up after a minute.
# Every statement is planned for its own values (plan_cache_mode): a generic plan made while a table had no
# statistics yet (a fresh database, its first minute) looked up a batch's sent messages through the (vendor,
# client_ref) index, reading every row of the vendor, and kept doing so for the connection's life; half the
# backlog bench's runs took 5x the database CPU per event. Planning each lookup costs less than that by far.
POSTGRES_OPTIONS = ("-c lock_timeout=60s -c idle_in_transaction_session_timeout=300s "
                    "-c plan_cache_mode=force_custom_plan")
POSTGRES_CONNECT_ARGS = {
    "connect_timeout": 10,
    # the client notices a server that went away without a FIN after ~60 s instead of the kernel's 2 hours
    "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
}


def make_engine(database_url: str, **kwargs) -> Engine:
    """An engine for the URL; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE so writers queue."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 30}, **kwargs)
        _tune_sqlite(engine)
        return engine
    return create_engine(database_url, pool_pre_ping=True, connect_args=postgres_connect_args(database_url), **kwargs)


def postgres_connect_args(database_url: str) -> dict:
    """The session guards for a PostgreSQL URL; what the URL sets itself (e.g. `?options=`) wins."""
    url = make_url(database_url)
    if not url.get_backend_name().startswith("postgresql"):
        return {}
    connect_args = {k: v for k, v in POSTGRES_CONNECT_ARGS.items() if k not in url.query}
    if "options" not in url.query:
        connect_args["options"] = POSTGRES_OPTIONS
    return connect_args


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
