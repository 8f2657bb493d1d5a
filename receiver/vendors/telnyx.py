"""telnyx: Messaging API v2 webhooks (`message.sent`, `message.finalized`, `message.received`), Ed25519-signed.

Retry rules (Telnyx's API reference, deliveryUpdate callback): "The server must return an HTTP 200, otherwise we
will reattempt delivery at the failover webhook URL" (same `data.id`, `meta.attempt` counting up); it does not tell
4xx from 5xx. So a 4xx here is not a "never retry" as it is for Sinch: it sends the callback to
the failover URL, which should be this service too.

A messaging profile has one webhook URL for every message event, so either of our routes may receive either kind: a
`message.received` on the receipts route is read as the inbound message it is, and the other way round.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from core.events import DeliveryReceipt, InboundMessage, Payload, SentMessage, digits_msisdn
from receiver.errors import UnknownCallbackType
from receiver.fields import MESSAGE_TEXT, Address, Code, Msisdn, StrictInteger, VendorTime, described
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, load, served_entries, shared_schema
from receiver.vendors.sending import MAX_MESSAGES, sent_message, stated

# Telnyx's per-recipient statuses (its SDK's `to[].status` literal), compared lower-cased
STATUSES = {
    "queued": "pending",  # accepted, waiting in Telnyx's queue (rate limits)
    "sending": "pending",  # being handed to the carrier
    "sent": "pending",  # handed to the carrier: not a delivery
    "delivered": "delivered",  # the carrier's delivery receipt said so
    "read": "delivered",  # RCS/WhatsApp read receipt: read implies delivered
    "sending_failed": "failed",  # Telnyx could not hand it to the carrier (also when `valid_until` passed in queue)
    "delivery_failed": "failed",  # the carrier reported it undeliverable
    "expired": "expired",  # listed by the SDK; left the queue too late
    # final (`message.finalized`), but the carrier sent no receipt: it may or may not have arrived
    "delivery_unconfirmed": "unknown",
}
EVENT_RECEIPTS = {"message.sent", "message.finalized", "message.read"}
EVENT_INBOUND = "message.received"
MAX_RECIPIENTS = 100  # a group MMS has at most a few dozen; bounded so one body cannot fan out without limit


def canonical_message_id(message_id: str) -> str:
    """UUIDs, written lower-case by Telnyx, upper-cased by some exports; a group message adds `:<recipient>`."""
    message, colon, recipient = message_id.strip().partition(":")
    return f"{message.lower()}:{digits_msisdn(recipient)}" if colon else message.lower()


def receipt_status(vendor_status: str) -> str:
    """Our status for a Telnyx recipient status; a status Telnyx adds later is `unknown`."""
    return STATUSES.get(vendor_status.strip().lower(), "unknown")


def message_id(telnyx_id: str, recipient: str, recipient_count: int) -> str:
    """The id of one recipient's message: Telnyx's message id, or `<id>:<digits>` when the message (a group MMS)
    has several recipients, since each has its own fate and our sent messages are one per recipient."""
    if recipient_count > 1:
        return canonical_message_id(f"{telnyx_id}:{digits_msisdn(recipient)}")
    return canonical_message_id(telnyx_id)


class TelnyxSchema(Schema):
    """Base for Telnyx payloads."""

    class Meta:
        unknown = INCLUDE  # the SDK's models accept extra fields: Telnyx adds them (tcr_*, wait_seconds...)


class EventSchema(TelnyxSchema):
    """`data`: one event of the envelope. Essential: event_type and payload."""

    event_type = fields.String(required=True, validate=validate.Length(1, 64))
    id = fields.String(validate=validate.Length(max=128))  # the webhook's id, the same on its retries
    occurred_at = described(VendorTime)("iso", allow_none=True)
    payload = fields.Dict(required=True)
    record_type = fields.String(allow_none=True)


class EnvelopeSchema(TelnyxSchema):
    """The webhook body: `{"data": {...}, "meta": {"attempt", "delivered_to"}}`."""

    data = fields.Dict(required=True)
    meta = fields.Raw(allow_none=True)


class PartySchema(TelnyxSchema):
    """A `from`, `to[]` or `cc[]` entry: an address with its carrier (and, for recipients, its status)."""

    phone_number = Address(max_length=64, allow_none=True)  # E.164, short code or alphanumeric sender id
    agent_id = fields.String(allow_none=True)  # RCS agents have no phone number
    carrier = described(fields.String)(allow_none=True, validate=validate.Length(max=128))
    line_type = described(fields.String)(allow_none=True, validate=validate.Length(max=64))


class RecipientSchema(PartySchema):
    """One recipient of a message we sent. Essential: phone_number and status."""

    phone_number = Address(required=True, max_length=64)
    status = fields.String(required=True, validate=validate.Length(1, 64))


class TelnyxErrorSchema(TelnyxSchema):
    """One `errors[]` entry: Telnyx's code and its title."""

    code = described(Code)(allow_none=True)
    title = described(fields.String)(allow_none=True, validate=validate.Length(max=1000))
    detail = described(fields.String)(allow_none=True, validate=validate.Length(max=1000))


class CostSchema(TelnyxSchema):
    """`cost`: an amount (a decimal string in webhooks, a number in the docs' example) and its currency."""

    amount = fields.Raw(allow_none=True)  # read by _price: a string, or a number in the docs' examples
    currency = described(fields.String)(allow_none=True, validate=validate.Length(max=8))


class OutboundSchema(TelnyxSchema):
    """`data.payload` of message.sent/finalized. Essential: id and at least one recipient."""

    id = fields.String(required=True, validate=validate.Length(1, 128))
    to = fields.List(fields.Raw(), required=True, validate=validate.Length(1, MAX_RECIPIENTS))  # read one by one
    cc = fields.List(fields.Raw(), allow_none=True, validate=validate.Length(max=MAX_RECIPIENTS))
    from_ = described(fields.Nested)(PartySchema, data_key="from", allow_none=True)
    errors = described(fields.List)(fields.Nested(TelnyxErrorSchema), allow_none=True)
    parts = described(StrictInteger)(allow_none=True, validate=validate.Range(1, 255))
    cost = described(fields.Nested)(CostSchema, allow_none=True)
    sent_at = described(VendorTime)("iso", allow_none=True)
    completed_at = described(VendorTime)("iso", allow_none=True)
    type = fields.String(allow_none=True)


class InboundSchema(TelnyxSchema):
    """`data.payload` of message.received. Essential: id, from.phone_number and content (text, body or media)."""

    id = fields.String(required=True, validate=validate.Length(1, 128))
    from_ = fields.Nested(PartySchema, data_key="from", required=True)
    to = fields.Raw(allow_none=True)  # a list of recipients, or (WhatsApp, per the SDK's union) a bare address
    text = fields.String(allow_none=True, validate=validate.Length(max=MESSAGE_TEXT))
    body = fields.Raw(allow_none=True)  # RCS and WhatsApp put their text in body.text
    media = fields.List(fields.Dict(), allow_none=True)
    received_at = described(VendorTime)("iso", allow_none=True)
    type = fields.String(allow_none=True)

    @validates_schema
    def has_sender_and_content(self, data: dict, **kwargs: Any) -> None:
        """An inbound message without a sender or any content cannot be an inbound message."""
        if not (data.get("from_") or {}).get("phone_number"):
            raise ValidationError({"from": {"phone_number": ["Missing data for required field."]}})
        if data.get("text") is None and _body_text(data.get("body")) is None and not data.get("media"):
            raise ValidationError({"text": ["Missing data for required field."]})


def _body_text(body: Any) -> str | None:
    """The text of an RCS/WhatsApp `body`: a string, or an object with `text`."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict) and isinstance(body.get("text"), str):
        return body["text"]
    return None


def _our_number(to: Any) -> str:
    """The number the inbound message was sent to: the first `to[]` entry's phone number, or a bare address."""
    if isinstance(to, str):
        return digits_msisdn(to) or to
    if isinstance(to, list) and to and isinstance(to[0], dict):
        address = to[0].get("phone_number") or to[0].get("agent_id") or ""
        return digits_msisdn(str(address)) or str(address)
    return ""


def _error(errors: list[dict[str, Any]] | None) -> tuple[str | None, str | None]:
    """The first error's code and its title (with its detail) from `errors[]`."""
    if not errors:
        return None, None
    first = errors[0]
    title = " - ".join(text for text in (first.get("title"), first.get("detail")) if text)
    return first.get("code") or None, title or None


def _price(cost: dict[str, Any]) -> str | None:
    """The amount as text, whether Telnyx wrote it as a decimal string or a JSON number."""
    amount = cost.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, str | int | float):
        return None
    return str(amount)


def _event(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The envelope's `data` and its payload, validated."""
    envelope = load(shared_schema(EnvelopeSchema), body)
    return envelope, load(shared_schema(EventSchema), envelope["data"])


def receipts(body: Any, ctx: CallbackContext, event: dict[str, Any]) -> list[Payload]:
    """message.sent / message.finalized: one receipt per recipient (`to[]`, then `cc[]` of a group MMS); a
    recipient entry that cannot be read is a rejected entry, its siblings are published."""
    message = load(shared_schema(OutboundSchema), event["payload"])
    code, description = _error(message.get("errors"))
    recipients = list(event["payload"]["to"]) + list(event["payload"].get("cc") or [])
    cost = message.get("cost") or {}

    def receipt(entry: Any) -> list[Payload]:
        recipient = load(shared_schema(RecipientSchema), entry)
        status = receipt_status(recipient["status"])
        return [DeliveryReceipt(
            vendor="telnyx", message_id=message_id(message["id"], recipient["phone_number"], len(recipients)),
            status=status, vendor_status=recipient["status"], received_at=ctx.received_at,
            occurred_at=event.get("occurred_at"), batch_id=canonical_message_id(message["id"]),
            recipient=digits_msisdn(recipient["phone_number"]),
            sender=(message.get("from_") or {}).get("phone_number"),
            # errors[] describe the message's failure; a pending or delivered recipient carries none of it
            vendor_code=code if status not in {"pending", "delivered"} else None,
            error_description=description if status not in {"pending", "delivered"} else None,
            parts=message.get("parts"), price=_price(cost), currency=cost.get("currency"),
            network=recipient.get("carrier"), operator_done_at=message.get("completed_at"), account=ctx.account,
            signature_valid=ctx.signature_valid, raw=ctx.raw(body, body["data"].get("occurred_at")),
        )]

    # A rejected recipient keeps the whole webhook, not a cut-down one: cut to one recipient, a group message would
    # replay as a single-recipient one under another message id. Replaying it republishes its served siblings under
    # their same event ids, which consumers dedupe on.
    return served_entries(((body, entry) for entry in recipients), receipt, ctx)


def inbound(body: Any, ctx: CallbackContext, event: dict[str, Any]) -> list[Payload]:
    """message.received: one inbound message; keyed by the sender's number."""
    message = load(shared_schema(InboundSchema), event["payload"])
    sender = message["from_"]["phone_number"]
    text = message.get("text")
    return [InboundMessage(
        vendor="telnyx", message_id=canonical_message_id(message["id"]),
        from_=digits_msisdn(sender) or sender, to=_our_number(message.get("to")), received_at=ctx.received_at,
        occurred_at=message.get("received_at") or event.get("occurred_at"),
        text=text if text is not None else _body_text(message.get("body")) or "",
        media=tuple({"url": item.get("url"), "content_type": item.get("content_type")}
                    for item in message.get("media") or ()),
        network=message["from_"].get("carrier"), account=ctx.account, signature_valid=ctx.signature_valid,
        raw=ctx.raw(body, body["data"].get("occurred_at")),
    )]


def callback(body: Any, ctx: CallbackContext) -> list[Payload]:
    """Any message webhook, on either route: routed by `data.event_type` (one URL per messaging profile)."""
    _, event = _event(body)
    event_type = event["event_type"].strip().lower()
    if event_type == EVENT_INBOUND:
        return inbound(body, ctx, event)
    if event_type in EVENT_RECEIPTS:
        return receipts(body, ctx, event)
    raise UnknownCallbackType(f"Telnyx event_type {event_type[:64]!r} is not a message event.")




class TelnyxMessageSchema(Schema):
    """Telnyx's send response `data`: one message, its recipients in `to[]` (and `cc[]` for a group MMS)."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=validate.Length(1, 128))
    to = fields.List(fields.Dict(), required=True, validate=validate.Length(1, MAX_MESSAGES))
    cc = fields.List(fields.Dict(), allow_none=True, validate=validate.Length(max=MAX_MESSAGES))
    from_ = fields.Dict(data_key="from", allow_none=True)
    sent_at = VendorTime("iso", allow_none=True)



def send_response(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """Telnyx's `{"data": {...}}`: one sent message per recipient, ids as its receipts will carry them."""
    response = item["response"]
    if not isinstance(response, dict) or not isinstance(response.get("data"), dict):
        raise ValidationError({"data": ["Expected Telnyx's message object under data."]})
    message = shared_schema(TelnyxMessageSchema).load(response["data"])
    recipients = [*message["to"], *(message.get("cc") or [])]
    numbers = [Msisdn().deserialize(entry.get("phone_number")) for entry in recipients]
    return [
        sent_message("telnyx", message_id(message["id"], number, len(numbers)), number, received_at, item,
              batch_id=canonical_message_id(message["id"]),
              **{"sender": (message.get("from_") or {}).get("phone_number"), "sent_at": message.get("sent_at"),
                 **stated(wrapper)})
        for number in numbers
    ]


ADAPTER = VendorAdapter(
    name="telnyx",
    docs="https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks",
    auth_schemes=("telnyx_signature", "url_token", "ip_allow_list"),
    canonical_id=canonical_message_id,
    send_response=send_response,
    kinds={
        "delivery-receipts": KindSpec(callback, schemas=(EnvelopeSchema, EventSchema, OutboundSchema),
                                      summary="Telnyx message.sent / message.finalized webhooks (one per recipient)"),
        "inbound-messages": KindSpec(callback, schemas=(InboundSchema,),
                                     summary="Telnyx message.received webhooks"),
    },
)
