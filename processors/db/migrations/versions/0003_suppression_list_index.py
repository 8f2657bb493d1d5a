"""The suppression list reads opted-out subscribers by change time: a partial index instead of a full scan.

`GET /v1/opt-outs?since=…` and `smshooks opt-outs export --since` filter `opted_out` and `updated_at >= since`
and order by `updated_at, id`; without an index that is a scan and a sort of every consent row ever recorded.
The index only holds opted-out rows, so the common case (people who never replied STOP) costs nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("opt_out_state", schema=None) as batch_op:
        # SQLite sees the filter as `opted_out = 1` (no native booleans) and uses a partial index only when the
        # query's WHERE has the index's own terms
        batch_op.create_index(
            "ix_opt_out_state_opted_out_updated_at", ["updated_at", "id"], unique=False,
            postgresql_where=sa.text("opted_out"), sqlite_where=sa.text("opted_out = 1"),
        )


def downgrade() -> None:
    with op.batch_alter_table("opt_out_state", schema=None) as batch_op:
        batch_op.drop_index("ix_opt_out_state_opted_out_updated_at")
