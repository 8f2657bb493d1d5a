"""The message status order and the reconciliation state machine's single decision."""

from __future__ import annotations

from core.events import FINAL_STATUSES

SUBMITTED = "submitted"
# submitted (we only know it was sent) < pending (vendor intermediate states) < unknown < any final.
STATUS_RANK = {SUBMITTED: 0, "pending": 1, "unknown": 2, **{status: 3 for status in FINAL_STATUSES}}

APPLIED = "applied"
IGNORED_OLDER = "ignored_older"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
PARKED = "parked"
SUMMARY = "summary"
REFUSED_AT_SEND = "refused_at_send"  # the vendor's send API refused the message: history and evidence only
PART_APPLIED = "part_applied"  # a receipt moved one part of a multipart message, not (yet) the message


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


def from_parts(part_statuses: list[str]) -> str:
    """A multipart message's status from its parts' (in part order), the rule README states:

    failed (expired, rejected) as soon as one part is final and not delivered, with the first such part's status;
    delivered only when every part is; otherwise the most advanced non-delivered status, at least pending once any
    part was delivered.
    """
    for status in part_statuses:
        if is_final(status) and status != "delivered":
            return status
    if all(status == "delivered" for status in part_statuses):
        return "delivered"
    waiting = max((status for status in part_statuses if status != "delivered"), key=rank)
    if "delivered" in part_statuses and rank(waiting) < rank("pending"):
        return "pending"
    return waiting
