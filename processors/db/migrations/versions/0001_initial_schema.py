"""Initial schema: sent messages, receipts, dedupe, outbox, opt-outs and clicks.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 09:43:23.156325
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import processors.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "opt_out_history",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("msisdn", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_key", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("keyword", sa.String(length=64), nullable=False),
        sa.Column("text", sa.String(length=2048), nullable=True),
        sa.Column("changed", sa.Boolean(), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("source_event_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", processors.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("received_at", processors.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("opt_out_history", schema=None) as batch_op:
        batch_op.create_index("ix_opt_out_history_msisdn_scope_key", ["msisdn", "scope_key"], unique=False)
        batch_op.create_index("ix_opt_out_history_received_at", ["received_at"], unique=False)

    op.create_table(
        "opt_out_state",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("msisdn", sa.String(length=64), nullable=False),
        sa.Column("scope_key", sa.String(length=64), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("updated_at", processors.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_keyword", sa.String(length=64), nullable=False),
        sa.Column("source_event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("msisdn", "scope_key", name="uq_opt_out_state_msisdn_scope_key"),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=191), nullable=False),
        sa.Column("key", sa.String(length=191), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", processors.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", processors.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_unsent",
            ["id"],
            unique=False,
            postgresql_where=sa.text("sent_at IS NULL"),
            sqlite_where=sa.text("sent_at IS NULL"),
        )

    op.create_table(
        "processed_events",
        sa.Column("consumer_group", sa.String(length=191), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=191), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("processed_at", processors.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "event_id"),
    )
    op.create_table(
        "sent_messages",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=191), nullable=False),
        sa.Column("raw_message_id", sa.String(length=191), nullable=False),
        sa.Column("batch_id", sa.String(length=191), nullable=True),
        sa.Column("campaign_id", sa.String(length=191), nullable=True),
        sa.Column("client_ref", sa.String(length=191), nullable=True),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("sent_at", processors.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("received_at", processors.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("country_iso2", sa.String(length=2), nullable=True),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="submitted", nullable=False),
        sa.Column("status_changed_at", processors.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("final_at", processors.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("first_receipt_received_at", processors.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", processors.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("conflict", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("source_event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vendor", "message_id", name="uq_sent_messages_vendor_message_id"),
    )
    with op.batch_alter_table("sent_messages", schema=None) as batch_op:
        batch_op.create_index("ix_sent_messages_sent_at", ["sent_at"], unique=False)
        batch_op.create_index("ix_sent_messages_status_sent_at", ["status", "sent_at"], unique=False)
        batch_op.create_index(
            "ix_sent_messages_vendor_batch_recipient", ["vendor", "batch_id", "recipient"], unique=False
        )
        batch_op.create_index("ix_sent_messages_vendor_client_ref", ["vendor", "client_ref"], unique=False)

    op.create_table(
        "clicks",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=191), nullable=False),
        sa.Column("sent_message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("campaign_id", sa.String(length=191), nullable=True),
        sa.Column("batch_id", sa.String(length=191), nullable=True),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("clicked_at", processors.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("received_at", processors.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.Column("country_iso2", sa.String(length=2), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sent_message_id"],
            ["sent_messages.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.create_index("ix_clicks_clicked_at", ["clicked_at"], unique=False)
        batch_op.create_index("ix_clicks_sent_message_id", ["sent_message_id"], unique=False)
        batch_op.create_index("ix_clicks_vendor_message_id", ["vendor", "message_id"], unique=False)

    op.create_table(
        "receipts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=191), nullable=False),
        sa.Column("raw_message_id", sa.String(length=191), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("vendor_status", sa.String(length=64), nullable=False),
        sa.Column("vendor_code", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", processors.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("received_at", processors.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.String(length=191), nullable=True),
        sa.Column("client_ref", sa.String(length=191), nullable=True),
        sa.Column("recipient", sa.String(length=64), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("sent_message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("parked", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("previous_status", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["sent_message_id"],
            ["sent_messages.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_receipts_parked_received_at",
            ["received_at"],
            unique=False,
            postgresql_where=sa.text("parked"),
            sqlite_where=sa.text("parked"),
        )
        batch_op.create_index(
            "ix_receipts_parked_vendor_batch_recipient",
            ["vendor", "batch_id", "recipient"],
            unique=False,
            postgresql_where=sa.text("parked"),
            sqlite_where=sa.text("parked"),
        )
        batch_op.create_index(
            "ix_receipts_parked_vendor_client_ref",
            ["vendor", "client_ref"],
            unique=False,
            postgresql_where=sa.text("parked"),
            sqlite_where=sa.text("parked"),
        )
        batch_op.create_index(
            "ix_receipts_parked_vendor_message_id",
            ["vendor", "message_id"],
            unique=False,
            postgresql_where=sa.text("parked"),
            sqlite_where=sa.text("parked"),
        )
        batch_op.create_index("ix_receipts_received_at", ["received_at"], unique=False)
        batch_op.create_index("ix_receipts_sent_message_id", ["sent_message_id"], unique=False)
        batch_op.create_index("ix_receipts_vendor_message_id", ["vendor", "message_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_receipts_vendor_message_id")
        batch_op.drop_index("ix_receipts_sent_message_id")
        batch_op.drop_index("ix_receipts_received_at")
        batch_op.drop_index(
            "ix_receipts_parked_vendor_message_id",
            postgresql_where=sa.text("parked"),
            sqlite_where=sa.text("parked"),
        )
        batch_op.drop_index(
            "ix_receipts_parked_vendor_client_ref",
            postgresql_where=sa.text("parked"),
            sqlite_where=sa.text("parked"),
        )
        batch_op.drop_index(
            "ix_receipts_parked_vendor_batch_recipient",
            postgresql_where=sa.text("parked"),
            sqlite_where=sa.text("parked"),
        )
        batch_op.drop_index(
            "ix_receipts_parked_received_at",
            postgresql_where=sa.text("parked"),
            sqlite_where=sa.text("parked"),
        )

    op.drop_table("receipts")
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_index("ix_clicks_vendor_message_id")
        batch_op.drop_index("ix_clicks_sent_message_id")
        batch_op.drop_index("ix_clicks_clicked_at")

    op.drop_table("clicks")
    with op.batch_alter_table("sent_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_sent_messages_vendor_client_ref")
        batch_op.drop_index("ix_sent_messages_vendor_batch_recipient")
        batch_op.drop_index("ix_sent_messages_status_sent_at")
        batch_op.drop_index("ix_sent_messages_sent_at")

    op.drop_table("sent_messages")
    op.drop_table("processed_events")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_unsent",
            postgresql_where=sa.text("sent_at IS NULL"),
            sqlite_where=sa.text("sent_at IS NULL"),
        )

    op.drop_table("outbox")
    op.drop_table("opt_out_state")
    with op.batch_alter_table("opt_out_history", schema=None) as batch_op:
        batch_op.drop_index("ix_opt_out_history_received_at")
        batch_op.drop_index("ix_opt_out_history_msisdn_scope_key")

    op.drop_table("opt_out_history")
