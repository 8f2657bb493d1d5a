"""plivo: message status callbacks (`url` of the Send Message API) and incoming messages (an application's
`message_url`), form POSTs (or query parameters when the method is GET) signed with X-Plivo-Signature-V3.

Retry rules: the pages of Plivo's docs we read give no retry schedule for message status callbacks (unverified:
treat any non-2xx as possibly lost); an incoming message whose `message_url` does not answer successfully is marked
`undelivered` in Plivo's message records (its Message object docs).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from core.events import DeliveryReceipt, Envelope, InboundMessage, Payload, SentMessage, digits_msisdn
from receiver.fields import MESSAGE_TEXT, Address, Code, StrictInteger, VendorTime, described
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, load, shared_schema
from receiver.vendors.sending import MAX_MESSAGES, sent_message, stated

STATUSES = {
    "queued": "pending",  # accepted by Plivo, not yet with a carrier
    "sent": "pending",  # handed to the carrier; stays the last status where the carrier sends no receipts
    "delivered": "delivered",
    "read": "delivered",  # WhatsApp read receipt: read implies delivered
    "failed": "failed",  # failed inside Plivo before reaching a carrier
    "undelivered": "failed",  # the carrier reported it undeliverable
    "rejected": "rejected",  # refused (older docs list it; e.g. a blocked destination or sender)
}
NO_ERROR = {"", "0", "000"}  # Plivo writes 000 for "no error" on delivered messages
MAX_MEDIA = 10  # Plivo's limit of media per MMS
# Plivo reads the answer to message_url as Plivo XML (a reply <Message> or nothing): an empty <Response> sends none
EMPTY_XML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def canonical_message_id(message_id: str) -> str:
    """UUIDs, written lower-case by Plivo, upper-cased by some exports; a group message adds `:<recipient>`."""
    message, colon, recipient = message_id.strip().partition(":")
    return f"{message.lower()}:{digits_msisdn(recipient)}" if colon else message.lower()


def receipt_status(vendor_status: str) -> str:
    """Our status for a Plivo Status; a status Plivo adds later is `unknown`."""
    return STATUSES.get(vendor_status.strip().lower(), "unknown")


class PlivoSchema(Schema):
    """Base for Plivo form parameters."""

    class Meta:
        unknown = INCLUDE  # Plivo adds parameters (PowerpackUUID, Conversation*, requester_ip...): keep them in raw


class StatusCallbackSchema(PlivoSchema):
    """A message status callback. Essential: MessageUUID and Status."""

    @pre_load
    def lower_case_status(self, data: Any, **kwargs: Any) -> Any:
        """Read `status` when `Status` is absent, as courier's recorded Plivo callbacks write it."""
        if isinstance(data, dict) and "Status" not in data and "status" in data:
            return {**data, "Status": data["status"]}
        return data

    MessageUUID = fields.String(required=True, validate=validate.Length(1, 64))
    Status = fields.String(required=True, validate=validate.Length(1, 32))
    ErrorCode = described(Code)()  # only for failed/undelivered; 000 otherwise on some callbacks
    To = described(Address)(max_length=64)
    From = described(Address)(max_length=64)  # a number, short code or alphanumeric sender id
    Type = fields.String(validate=validate.Length(max=16))  # sms, mms, whatsapp
    Units = described(StrictInteger)(validate=validate.Range(1, 255))
    TotalRate = described(fields.String)(validate=validate.Length(max=32))
    TotalAmount = described(fields.String)(validate=validate.Length(max=32))
    MCC = described(fields.String)(validate=validate.Length(max=3))
    MNC = described(fields.String)(validate=validate.Length(max=3))
    ParentMessageUUID = fields.String(validate=validate.Length(max=64))
    Sequence = described(StrictInteger)(validate=validate.Range(0, 10**9))
    MessageTime = described(VendorTime)("sql")  # YYYY-mm-dd HH:MM:SS.SSSSSS, no zone: UTC
    SentTime = described(VendorTime)("sql")
    DeliveryReportTime = described(VendorTime)("sql")


class InboundSchema(PlivoSchema):
    """An incoming SMS/MMS/WhatsApp message. Essential: MessageUUID, From and content (Text, Body or media)."""

    MessageUUID = fields.String(required=True, validate=validate.Length(1, 64))
    From = Address(required=True, max_length=64)
    To = described(Address)(max_length=64)
    Text = fields.String(validate=validate.Length(max=MESSAGE_TEXT))  # SMS, long messages already joined by Plivo
    Body = fields.String(validate=validate.Length(max=MESSAGE_TEXT))  # MMS and WhatsApp text
    Type = fields.String(validate=validate.Length(max=16))
    Units = described(StrictInteger)(validate=validate.Range(1, 255))
    MediaCount = described(StrictInteger)(validate=validate.Range(0, MAX_MEDIA))
    MessageIntent = described(fields.String)(validate=validate.Length(max=16))  # optout/optin/help, Plivo's guess

    @validates_schema
    def has_content(self, data: dict, **kwargs: Any) -> None:
        """An incoming message with no text and no media cannot be an inbound message."""
        if "Text" not in data and "Body" not in data and not _media(data):
            raise ValidationError({"Text": ["Missing data for required field."]})


def _media(form: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The Media<N> URLs (Plivo numbers them from 0 in some callbacks and from 1 in its docs), in order."""
    urls = (form.get(f"Media{index}") for index in range(MAX_MEDIA + 1))
    return tuple({"url": url, "content_type": None} for url in urls if url)


def receipts(payload: Any, ctx: CallbackContext) -> list[Payload]:
    """A status callback: one receipt."""
    callback = load(shared_schema(StatusCallbackSchema), payload)
    status = receipt_status(callback["Status"])
    code = (callback.get("ErrorCode") or "").strip()
    # Each part of a long message has its own MessageUUID and names the message (the uuid the send response
    # returned) in ParentMessageUUID; a one-part message names itself there, or leaves it out.
    message_id = canonical_message_id(callback.get("ParentMessageUUID") or callback["MessageUUID"])
    return [DeliveryReceipt(
        vendor="plivo", message_id=message_id, status=status, vendor_status=callback["Status"],
        received_at=ctx.received_at,
        occurred_at=callback.get("DeliveryReportTime") or callback.get("SentTime") or callback.get("MessageTime"),
        recipient=digits_msisdn(callback.get("To")), sender=callback.get("From"),
        vendor_code=None if code in NO_ERROR else code, parts=callback.get("Units"),
        # Plivo bills in US dollars and names no currency
        price=callback.get("TotalAmount") or None, currency="USD" if callback.get("TotalAmount") else None,
        network=(callback.get("MCC") or "") + (callback.get("MNC") or "") or None,
        operator_done_at=callback.get("DeliveryReportTime"), account=ctx.account,
        signature_valid=ctx.signature_valid, raw=ctx.raw(payload, payload.get("DeliveryReportTime")),
    )]


def inbound(payload: Any, ctx: CallbackContext) -> list[Payload]:
    """An incoming message; Plivo joins long SMS before calling, so there is one event per message."""
    message = load(shared_schema(InboundSchema), payload)
    text = message.get("Text", message.get("Body", ""))
    return [InboundMessage(
        vendor="plivo", message_id=canonical_message_id(message["MessageUUID"]),
        from_=digits_msisdn(message["From"]) or message["From"], to=digits_msisdn(message.get("To")) or "",
        received_at=ctx.received_at, text=text, media=_media(payload), account=ctx.account,
        signature_valid=ctx.signature_valid, raw=ctx.raw(payload),
    )]


def xml_ack(envelopes: list[Envelope], ctx: CallbackContext) -> tuple[str, str]:
    """Answer an incoming message with empty Plivo XML: accepted, and no reply sent on our behalf."""
    return EMPTY_XML, "application/xml"




class PlivoResponseSchema(Schema):
    """Plivo's send response: `message_uuid[]`, one per destination, and no destinations."""

    class Meta:
        unknown = INCLUDE

    message_uuid = fields.List(fields.String(validate=validate.Length(1, 64)), required=True,
                               validate=validate.Length(1, MAX_MESSAGES))



def send_response(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """Plivo's response names no destinations: the caller lists them, in the order of `message_uuid`."""
    response = shared_schema(PlivoResponseSchema).load(item["response"])
    recipients = wrapper.get("recipients") or []
    if len(recipients) != len(response["message_uuid"]):
        raise ValidationError({"recipients": ["Required with a Plivo response: one per message_uuid, in its order."]})
    return [
        sent_message("plivo", canonical_message_id(uuid), recipient, received_at,
              dict(item, response=dict(item["response"], message_uuid=[uuid]), recipients=[recipient]),
              **stated(wrapper))
        for uuid, recipient in zip(response["message_uuid"], recipients, strict=True)
    ]


ADAPTER = VendorAdapter(
    name="plivo",
    docs="https://www.plivo.com/docs/messaging/concepts/callbacks",
    auth_schemes=("plivo_signature", "url_token", "ip_allow_list"),
    canonical_id=canonical_message_id,
    send_response=send_response,
    kinds={
        # the callback's method is chosen per message (`method` of the send request): POST form or GET query
        "delivery-receipts": KindSpec(receipts, methods=("POST", "GET"), formats=("form",),
                                      schemas=(StatusCallbackSchema,), summary="Plivo message status callbacks"),
        "inbound-messages": KindSpec(inbound, methods=("POST", "GET"), formats=("form",), schemas=(InboundSchema,),
                                     ack=xml_ack, summary="Plivo incoming messages (answered with empty Plivo XML)"),
    },
)
