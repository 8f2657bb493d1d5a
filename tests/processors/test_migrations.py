"""Alembic's migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from processors.db import upgrade
from processors.db.models import Base


def test_migrations_match_the_models(database_url):
    upgrade(database_url)
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == [], f"models and migrations disagree (write a migration): {differences}"


def test_the_suppression_list_reads_its_partial_index(sqlite_url):
    """SQLite's planner is deterministic here: the query must use the index, in order, with no sort step."""
    from datetime import UTC, datetime

    from processors.reports.opt_outs import suppression_statement

    upgrade(sqlite_url)
    engine = sqlalchemy.create_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            for since in (None, datetime(2026, 1, 1, tzinfo=UTC)):
                sql = suppression_statement(since).compile(engine, compile_kwargs={"literal_binds": True})
                plan = " | ".join(row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
                assert "ix_opt_out_state_opted_out_updated_at" in plan, plan
                assert "TEMP B-TREE" not in plan, plan
    finally:
        engine.dispose()
