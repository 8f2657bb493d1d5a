"""Database layer of the processors: models, engine, unit of work, upserts and migrations."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str):
    """An Alembic Config pointing at our migrations and the given URL, built in code (no ini file)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


# the migration that added the report aggregates: a database that had rows before it needs them computed once
AGGREGATES_REVISION = "0008"


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` (what `smshooks db upgrade` runs).

    Crossing AGGREGATES_REVISION on a database that already holds messages fills the report aggregates from its
    rows in the same run, so reports never read empty aggregates after an upgrade (a fresh database has none).
    """
    from alembic import command

    from processors.db.engine import make_engine
    from processors.reports.aggregates import rebuild

    engine = make_engine(database_url)
    try:
        before = current_revision(engine)
        command.upgrade(alembic_config(database_url), revision)
        if before is not None and before < AGGREGATES_REVISION <= (current_revision(engine) or ""):
            with engine.begin() as connection:  # as `smshooks report rebuild-aggregates`, in one transaction
                rebuild(connection)
    finally:
        engine.dispose()


def current_revision(engine) -> str | None:
    """The revision the database is at; None for a database Alembic has never touched."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
