"""Money and multipart messages: reported and expected prices on sent messages, and every part's own id.

Prices are integers in billionths of the currency unit (exact sums on SQLite and PostgreSQL alike). A vendor that
gives each part of a long message its own id and receipt (Vonage) has those ids registered in `message_parts`,
so a receipt for any part reconciles to its logical message; the message's status is derived from its parts.
Adding nullable columns rewrites nothing on PostgreSQL.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 04:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sent_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price_nanos", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("price_currency", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("expected_price_nanos", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("expected_currency", sa.String(length=3), nullable=True))
    op.create_table(
        "message_parts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("sent_message_id", BIG_ID, nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=191), nullable=False),
        sa.Column("part_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="submitted", nullable=False),
        sa.Column("price_nanos", sa.BigInteger(), nullable=True),
        sa.Column("price_currency", sa.String(length=3), nullable=True),
        sa.ForeignKeyConstraint(["sent_message_id"], ["sent_messages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vendor", "message_id", name="uq_message_parts_vendor_message_id"),
    )
    with op.batch_alter_table("message_parts", schema=None) as batch_op:
        batch_op.create_index("ix_message_parts_sent_message_id", ["sent_message_id"], unique=False)


def downgrade() -> None:
    op.drop_table("message_parts")
    with op.batch_alter_table("sent_messages", schema=None) as batch_op:
        batch_op.drop_column("expected_currency")
        batch_op.drop_column("expected_price_nanos")
        batch_op.drop_column("price_currency")
        batch_op.drop_column("price_nanos")
