"""`smshooks db upgrade`: apply the Alembic migrations to the configured database."""

from __future__ import annotations

from pathlib import Path

import click

from smshooks.cli import settings_from


@click.group("db")
def COMMAND() -> None:  # noqa: N802
    """Database schema management."""


@COMMAND.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Create or migrate the schema (SQLite file under data_dir by default, SMSHOOKS_DATABASE_URL otherwise).

    The SQLite file's folder is created when missing; a database that cannot be reached is named in one line.

    \b
    Examples:
      smshooks db upgrade
      SMSHOOKS_DATABASE_URL=postgresql+psycopg://smshooks:secret@db/smshooks smshooks db upgrade
      smshooks db upgrade --revision 0003
    """
    from alembic.util.exc import CommandError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from processors.db import upgrade as upgrade_database

    settings = settings_from(ctx)
    url = settings.effective_database_url
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy raises ArgumentError or ValueError for a malformed URL
        raise click.ClickException("SMSHOOKS_DATABASE_URL is not a database URL (see config.example.toml)") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.ClickException(f"cannot create the SQLite folder {folder}: {exc.strerror}") from None
    try:
        upgrade_database(url, revision)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise click.ClickException(f"cannot migrate {_masked(url)}: {reason}") from None
    except CommandError as exc:  # e.g. an unknown --revision
        raise click.ClickException(f"cannot migrate to {revision!r}: {exc}") from None
    click.echo(f"database at revision {revision}: {_masked(url)}")


def _masked(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
