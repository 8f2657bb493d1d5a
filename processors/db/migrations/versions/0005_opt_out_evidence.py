"""Opt-outs keep their source and evidence; sent messages are found by recipient and time.

A vendor that refuses a message because the recipient opted out (Twilio 21610) is evidence of an opt-out as much as
a STOP: history rows say which (`source` keyword | vendor) and what proves it (`evidence`). The compliance report's
"sent after opt-out" looks up messages sent to one number after a time: an index on (recipient, sent_at).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("opt_out_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), server_default="keyword", nullable=False))
        batch_op.add_column(sa.Column("evidence", sa.String(length=2048), nullable=True))
    with op.batch_alter_table("sent_messages", schema=None) as batch_op:
        batch_op.create_index("ix_sent_messages_recipient_sent_at", ["recipient", "sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sent_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_sent_messages_recipient_sent_at")
    with op.batch_alter_table("opt_out_history", schema=None) as batch_op:
        batch_op.drop_column("evidence")
        batch_op.drop_column("source")
