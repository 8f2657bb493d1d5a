"""Receipts keep the vendor's error description, so failure reasons group by vendor, code and meaning.

The description was only inside `raw` (JSON): grouping on it would need dialect-specific JSON extraction over every
receipt. Older receipts keep a null description (their `raw` still has it).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 04:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_description", sa.String(length=512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_column("error_description")
