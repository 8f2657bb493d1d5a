"""Vonage Messages API (v1) callbacks: message status and inbound message webhooks, JSON POSTs told apart from the
SMS API's by their `message_uuid`. An account that routes SMS through the Messages API sends these to the same URLs."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from core.events import DeliveryReceipt, InboundMessage, digits_msisdn
from receiver.fields import MESSAGE_TEXT, Address, VendorTime, described
from receiver.vendors.base import CallbackContext, load, shared_schema

STATUSES = {
    "submitted": "pending",  # handed to the provider: for SMS, Vonage's only status before the handset receipt
    "delivered": "delivered",
    "read": "delivered",  # WhatsApp, Viber, Messenger, RCS read receipts imply delivery
    "rejected": "rejected",
    "undeliverable": "failed",  # Vonage could not reach the provider
}
SMS_CHANNELS = {"sms", "mms"}
MEDIA_TYPES = ("image", "audio", "video", "file", "vcard", "sticker")


def is_messages_api(payload: Any) -> bool:
    """A Messages API callback: the SMS API names its id messageId, the Messages API message_uuid."""
    return isinstance(payload, dict) and "message_uuid" in payload


def status(vendor_status: str) -> str:
    """Our status for a Messages API status; anything new is `unknown`."""
    return STATUSES.get(vendor_status.strip().lower(), "unknown")


def subscriber(address: str, channel: str | None) -> str:
    """The subscriber: digits on SMS/MMS; on another channel `<channel>:<id>`, as the same digits on WhatsApp are
    another conversation (the Twilio adapter writes channel senders the same way)."""
    if not channel or channel.lower() in SMS_CHANNELS:
        return digits_msisdn(address) or address
    return f"{channel.lower()}:{address}"


class MessagesSchema(Schema):
    """Base for Messages API bodies."""

    class Meta:
        unknown = INCLUDE  # channel objects (sms, whatsapp, usage...) change often; all stay in raw


class MessagesStatusSchema(MessagesSchema):
    """A message status webhook. Essential: `message_uuid` and `status`."""

    message_uuid = fields.String(required=True, validate=validate.Length(1, 64))
    status = fields.String(required=True, validate=validate.Length(1, 32))
    to = described(Address)(max_length=64)  # the recipient (a number, or a channel id)
    from_ = described(Address)(data_key="from", max_length=64)
    channel = described(fields.String)(validate=validate.Length(max=32))
    timestamp = described(VendorTime)("iso", "sql", "epoch")  # ISO 8601 with Z
    client_ref = described(fields.String)(validate=validate.Length(max=256))
    error = described(fields.Dict)()  # {type, title (the code), detail, instance}
    usage = described(fields.Dict)()  # {currency, price}
    destination = described(fields.Dict)()  # {network_code}


class MessagesInboundSchema(MessagesSchema):
    """An inbound message webhook. Essential: `message_uuid`, `from` and content (`text`, or a media object)."""

    message_uuid = fields.String(required=True, validate=validate.Length(1, 64))
    from_ = Address(required=True, data_key="from", max_length=64)
    to = described(Address)(max_length=64)
    channel = described(fields.String)(validate=validate.Length(max=32))
    message_type = described(fields.String)(validate=validate.Length(max=32))
    text = fields.String(validate=validate.Length(max=MESSAGE_TEXT))
    timestamp = described(VendorTime)("iso", "sql", "epoch")
    sms = described(fields.Dict)()  # {num_messages, keyword}

    @validates_schema
    def has_content(self, data: dict, **kwargs: Any) -> None:
        """An inbound message with neither text nor media cannot be an inbound message."""
        if "text" not in data and not any(isinstance(data.get(kind), dict) for kind in MEDIA_TYPES):
            raise ValidationError({"text": ["Missing data for required field."]})


def _text(mapping: Any, name: str) -> str | None:
    """A nested value as text, or None when the object or the value is absent."""
    value = mapping.get(name) if isinstance(mapping, dict) else None
    return None if value is None else str(value)


def receipts(payload: dict, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """A message status: one receipt."""
    callback = load(shared_schema(MessagesStatusSchema), payload)
    error, usage = callback.get("error"), callback.get("usage")
    return [
        DeliveryReceipt(
            vendor="vonage", message_id=callback["message_uuid"], status=status(callback["status"]),
            vendor_status=callback["status"], received_at=ctx.received_at, occurred_at=callback.get("timestamp"),
            client_ref=callback.get("client_ref") or None, recipient=digits_msisdn(callback.get("to")),
            sender=callback.get("from_"), vendor_code=_text(error, "title"),
            error_description=_text(error, "detail"), price=_text(usage, "price"),
            currency=_text(usage, "currency"), network=_text(callback.get("destination"), "network_code"),
            account=ctx.account, signature_valid=ctx.signature_valid, raw=ctx.raw(payload, payload.get("timestamp")),
        )
    ]


def inbound(payload: dict, ctx: CallbackContext) -> list[InboundMessage]:
    """An inbound message; media (WhatsApp, MMS...) become `media` entries with their URL."""
    message = load(shared_schema(MessagesInboundSchema), payload)
    media = tuple({"url": payload[kind].get("url"), "content_type": kind}
                  for kind in MEDIA_TYPES if isinstance(payload.get(kind), dict))
    return [
        InboundMessage(
            vendor="vonage", message_id=message["message_uuid"],
            from_=subscriber(message["from_"], message.get("channel")), to=digits_msisdn(message.get("to")) or "",
            received_at=ctx.received_at, occurred_at=message.get("timestamp"), text=message.get("text"),
            media=media, keyword=_text(message.get("sms"), "keyword"), account=ctx.account,
            signature_valid=ctx.signature_valid, raw=ctx.raw(payload, payload.get("timestamp")),
        )
    ]
