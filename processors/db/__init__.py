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


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` (what `smshooks db upgrade` runs)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)
