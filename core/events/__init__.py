"""The event contract shared by receiver and processors: vocabulary, payloads, deterministic ids, the envelope.

Import from here (`from core.events import Envelope, DeliveryReceipt`); the modules are its chapters.
"""

from core.events.envelope import EVENT_JSON, Envelope, event_json, rejected_record
from core.events.ids import EVENT_ID_NAMESPACE, deterministic_id
from core.events.payloads import (
    PAYLOAD_TYPES,
    DeliveryReceipt,
    InboundMessage,
    LinkClick,
    MessageStatus,
    OptOut,
    Payload,
    SentMessage,
)
from core.events.vocabulary import (
    ALL_TOPICS,
    CONTENT_TYPE,
    FINAL_STATUSES,
    RECEIPT_STATUSES,
    SPEC_VERSION,
    TOPIC_CALLBACKS_REJECTED,
    TOPIC_DELIVERY_RECEIPTS,
    TOPIC_INBOUND_MESSAGES,
    TOPIC_LINK_CLICKS,
    TOPIC_MESSAGE_STATUS,
    TOPIC_OPT_OUTS,
    TOPIC_SENT_MESSAGES,
    InvalidEvent,
    digits_msisdn,
    topic_name,
    utc_now,
)

__all__ = [
    "ALL_TOPICS", "CONTENT_TYPE", "EVENT_ID_NAMESPACE", "EVENT_JSON", "FINAL_STATUSES", "PAYLOAD_TYPES",
    "RECEIPT_STATUSES", "SPEC_VERSION", "TOPIC_CALLBACKS_REJECTED", "TOPIC_DELIVERY_RECEIPTS", "TOPIC_INBOUND_MESSAGES",
    "TOPIC_LINK_CLICKS", "TOPIC_MESSAGE_STATUS", "TOPIC_OPT_OUTS", "TOPIC_SENT_MESSAGES", "DeliveryReceipt", "Envelope",
    "InboundMessage", "InvalidEvent", "LinkClick", "MessageStatus", "OptOut", "Payload", "SentMessage",
    "deterministic_id", "digits_msisdn", "event_json", "rejected_record", "topic_name", "utc_now",
]
