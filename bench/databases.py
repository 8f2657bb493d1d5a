"""Scratch PostgreSQL databases for the benches: a fresh one per measurement, dropped after."""

from __future__ import annotations

import uuid

import sqlalchemy


def create_database(server: str) -> str:
    """A new empty database on the server of `server` (a URL to any of its databases); returns its URL."""
    name = f"smshooks_bench_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server: str, url: str) -> None:
    """Drop the database at `url`, its sessions included."""
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    finally:
        admin.dispose()
