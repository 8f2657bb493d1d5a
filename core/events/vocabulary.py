"""The contract's vocabulary: statuses, topic names, our clock and the one spelling of phone numbers events use."""

from __future__ import annotations

import re
from datetime import UTC, datetime

SPEC_VERSION = "1.0"


CONTENT_TYPE = "application/json"


FINAL_STATUSES = frozenset({"delivered", "failed", "expired", "rejected"})


RECEIPT_STATUSES = FINAL_STATUSES | {"pending", "unknown"}


TOPIC_DELIVERY_RECEIPTS = "sms.delivery-receipts"


TOPIC_INBOUND_MESSAGES = "sms.inbound-messages"


TOPIC_LINK_CLICKS = "sms.link-clicks"


TOPIC_SENT_MESSAGES = "sms.sent-messages"


TOPIC_CALLBACKS_REJECTED = "sms.callbacks.rejected"


TOPIC_MESSAGE_STATUS = "sms.message-status"


TOPIC_OPT_OUTS = "sms.opt-outs"


ALL_TOPICS = (
    TOPIC_DELIVERY_RECEIPTS,
    TOPIC_INBOUND_MESSAGES,
    TOPIC_LINK_CLICKS,
    TOPIC_SENT_MESSAGES,
    TOPIC_CALLBACKS_REJECTED,
    TOPIC_MESSAGE_STATUS,
    TOPIC_OPT_OUTS,
)


class InvalidEvent(ValueError):
    """A Kafka record that is not a valid smshooks event; processors send it to the DLQ."""


def topic_name(prefix: str, topic: str) -> str:
    """The broker-side topic name under the configured prefix."""
    return f"{prefix}{topic}" if prefix else topic


def utc_now() -> datetime:
    """Our clock, always timezone-aware UTC."""
    return datetime.now(UTC)


def digits_msisdn(value: str | None) -> str | None:
    """Digits-only E.164 form of a phone number; alphanumeric sender ids are returned unchanged."""
    if value is None:
        return None
    text = value.strip()
    compact = re.sub(r"[\s\-().]", "", text)
    if compact.startswith("+"):
        compact = compact[1:]
    elif compact.startswith("00") and compact[2:].isdigit():
        compact = compact[2:]
    return compact if compact.isdigit() else text
