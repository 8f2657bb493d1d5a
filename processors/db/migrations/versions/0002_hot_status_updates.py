"""Status updates of sent messages become HOT on PostgreSQL: no index on status, free space on each page.

Every receipt that moves a status rewrote the sent message's row and, because `status` was indexed,
inserted a new entry into every index of sent_messages (six random leaf pages per receipt, each a full-page
image in the WAL after a checkpoint): the per-receipt cost grew with the table. With no indexed column
changing and room left on the page (fillfactor 85), PostgreSQL updates the row in place (heap-only
tuple) and the indexes are not touched. Missing-receipt counts filter on sent_at (still indexed) and
check the status on the row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FILLFACTOR = 85


def upgrade() -> None:
    with op.batch_alter_table("sent_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_sent_messages_status_sent_at")
    if op.get_bind().dialect.name == "postgresql":
        # Applies to pages written from now on (a VACUUM FULL or pg_repack rewrites existing ones).
        op.execute(f"ALTER TABLE sent_messages SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sent_messages RESET (fillfactor)")
    with op.batch_alter_table("sent_messages", schema=None) as batch_op:
        batch_op.create_index("ix_sent_messages_status_sent_at", ["status", "sent_at"], unique=False)
