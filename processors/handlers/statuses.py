"""The message status order and the reconciliation state machine's single decision."""

from __future__ import annotations

from receiver.contract import FINAL_STATUSES

SUBMITTED = "submitted"
# submitted (we only know it was sent) < pending (vendor intermediate states) < unknown < any final.
STATUS_RANK = {SUBMITTED: 0, "pending": 1, "unknown": 2, **{status: 3 for status in FINAL_STATUSES}}

APPLIED = "applied"
IGNORED_OLDER = "ignored_older"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
PARKED = "parked"
SUMMARY = "summary"


def is_final(status: str) -> bool:
    """Delivered, failed, expired and rejected end a message's life."""
    return status in FINAL_STATUSES


def rank(status: str) -> int:
    """Position of a status in the forward-only order; unknown names are a bug, so KeyError."""
    return STATUS_RANK[status]


def decide(current: str, incoming: str) -> str:
    """What a receipt with status `incoming` does to a message whose status is `current`."""
    if is_final(current):
        if incoming == current:
            return DUPLICATE  # the same final again: a vendor retry or one receipt per segment
        if is_final(incoming):
            return CONFLICT  # a second, different final: keep the first, flag the message
        return IGNORED_OLDER  # a late pending/unknown (Sinch may send Dispatched after Delivered)
    if rank(incoming) > rank(current):
        return APPLIED
    if incoming == current:
        return DUPLICATE
    return IGNORED_OLDER  # e.g. pending after unknown: out-of-order delivery, status never moves back
