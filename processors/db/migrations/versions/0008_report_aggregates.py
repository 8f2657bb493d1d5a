"""Report aggregates: counts per day and dimensions that the processors keep in the same transaction as the rows.

Empty tables: fill them with `smshooks report rebuild-aggregates` once after this migration (and whenever a bug
made them disagree with the rows); from then on the processors keep them current.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SENT_COUNTERS = (
    "sent", "submitted", "pending", "unknown", "delivered", "failed", "expired", "rejected", "conflicts", "parts",
    "clicks", "clicked_messages", "ttd_lt_10s", "ttd_lt_30s", "ttd_lt_1m", "ttd_lt_5m", "ttd_lt_15m", "ttd_lt_1h",
    "ttd_lt_6h", "ttd_lt_24h", "ttd_ge_24h",
)


def counter(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), server_default=sa.text("0"), nullable=False)


def dimensions() -> list[sa.Column]:
    return [
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("campaign", sa.String(length=191), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
    ]


def upgrade() -> None:
    keys = ["day", "vendor", "sender", "campaign", "country"]
    op.create_table(
        "report_sent_aggregates", *dimensions(), *[counter(name) for name in SENT_COUNTERS],
        sa.PrimaryKeyConstraint(*keys),
    )
    op.create_table(
        "report_delivery_time_aggregates", *dimensions(), sa.Column("bucket", sa.Integer(), nullable=False),
        counter("messages"), sa.PrimaryKeyConstraint(*keys, "bucket"),
    )
    op.create_table(
        "report_delivery_time_rollups",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        counter("messages"), sa.PrimaryKeyConstraint("day", "vendor", "bucket"),
    )
    op.create_table(
        "report_parked_receipt_aggregates",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        counter("parked"), sa.PrimaryKeyConstraint("day", "vendor"),
    )
    op.create_table(
        "report_consent_aggregates",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        counter("opt_outs"), counter("opt_ins"), sa.PrimaryKeyConstraint("day", "vendor", "sender"),
    )


def downgrade() -> None:
    for table in ("report_consent_aggregates", "report_parked_receipt_aggregates", "report_delivery_time_rollups",
                  "report_delivery_time_aggregates", "report_sent_aggregates"):
        op.drop_table(table)
