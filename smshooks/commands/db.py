"""`smshooks db upgrade`: apply the Alembic migrations to the configured database."""

from __future__ import annotations

import click

from smshooks.cli import settings_from


@click.group("db")
def COMMAND() -> None:  # noqa: N802
    """Database schema management."""


@COMMAND.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Create or migrate the schema (SQLite file by default, SMSHOOKS_DATABASE_URL otherwise)."""
    from processors.db import upgrade as upgrade_database

    settings = settings_from(ctx)
    upgrade_database(settings.effective_database_url, revision)
    click.echo(f"database at revision {revision}: {_masked(settings.effective_database_url)}")


def _masked(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
