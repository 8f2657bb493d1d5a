"""Receipts carry a version: a receipt un-parked by two re-matches at once is applied once.

The sent-messages and reconciliation processors (and the reconciliation sweep) may all un-park the same
receipt. With a version checked by every ORM UPDATE, the second writer's UPDATE matches no row, its
transaction is rolled back and retried on fresh rows. Sent messages carry none: their status is updated by
every applied receipt, and a versioned UPDATE there cost ~35 % of the reconciliation rate (bench/processors.py).
On PostgreSQL 11+ adding a column with a constant default rewrites nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

def upgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_column("version")
