"""bandwidth: Messaging API v2 callbacks, a JSON array of events (`message-received`, `message-delivered`, ...).

Retries: Bandwidth resends every callback that gets no 2xx within 10 seconds, 4xx included, for 24 hours, and may
send an event twice ("at least once"). Credentials: HTTP Basic set on the messaging application, or a URL token.
One application posts every event to one callback URL, so both of our routes read every event by its `type`.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from core.events import DeliveryReceipt, InboundMessage, Payload, digits_msisdn
from receiver.errors import UnknownCallbackType
from receiver.fields import MESSAGE_TEXT, Address, Code, Msisdn, StrictInteger, VendorTime, described
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, as_given, served_entries, shared_schema
from receiver.vendors.sending import entry_reader

VENDOR = "bandwidth"
MAX_EVENTS = 1000
INBOUND_TYPE = "message-received"
# Bandwidth's status event types. Bandwidth sends one message-delivered or one message-failed per outbound message.
STATUSES = {
    "message-sending": "pending",  # MMS only: Bandwidth started sending it
    "message-sent": "pending",  # RBM/multi-channel: sent on, not yet delivered
    # SMS: the carrier's delivery receipt, or (where the carrier sends none) the hand-off to the carrier; it is the
    # only success Bandwidth ever reports for an SMS, so it is delivered. MMS and group messages: see MMS_DELIVERED
    "message-delivered": "delivered",
    "message-failed": "failed",  # errorCode and description say why
    "message-read": "delivered",  # RBM read receipt: it was delivered
}
# Bandwidth documents that MMS and group messages have no delivery receipts: their message-delivered only means
# handed to Bandwidth's core network, not confirmed by a carrier, and nothing follows: unknown, not delivered.
MMS_DELIVERED = "unknown"


def receipt_status(event_type: str, message: dict) -> str:
    """Our status for a status event of this message; a type Bandwidth adds later is `unknown`."""
    name = event_type.strip().lower()
    if name == "message-delivered" and is_mms_or_group(message):
        return MMS_DELIVERED
    return STATUSES.get(name, "unknown")


def is_mms_or_group(message: dict) -> bool:
    """MMS (media, or the MMS channel) or a group message (several recipients): no carrier receipt exists."""
    channel = str(message.get("channel") or "").upper()
    return bool(message.get("media")) or channel == "MMS" or len(message.get("to") or ()) > 1


class BandwidthSchema(Schema):
    """Base for Bandwidth objects."""

    class Meta:
        unknown = INCLUDE  # the SDK models keep additional_properties: Bandwidth adds fields (carrierName, ...)


class MessageSchema(BandwidthSchema):
    """The `message` of an event. Essential: `id` (and, inbound, `from` with `text` or `media`)."""

    id = fields.String(required=True, validate=validate.Length(1, 128))
    owner = described(Address)(allow_none=True)  # our number: `from` outbound, (one of) `to` inbound
    applicationId = described(fields.String)(allow_none=True, validate=validate.Length(max=128))
    time = described(VendorTime)("iso", allow_none=True)  # when the message was created
    segmentCount = described(StrictInteger)(allow_none=True, validate=validate.Range(0, 255))
    direction = described(fields.String)(allow_none=True, validate=validate.Length(max=8))
    to = described(fields.List)(Address(), allow_none=True)
    from_ = described(Address)(allow_none=True, data_key="from")  # short codes and alphanumeric ids occur
    # empty in status events; essential only for an inbound message without media (InboundEventSchema)
    text = described(fields.String)(allow_none=True, validate=validate.Length(max=MESSAGE_TEXT))
    media = described(fields.List)(fields.String(validate=validate.Length(1, 2048)), allow_none=True)
    tag = described(fields.String)(allow_none=True, validate=validate.Length(max=1024))
    channel = described(fields.String)(allow_none=True, validate=validate.Length(max=16))


class EventSchema(BandwidthSchema):
    """One event of the array. Essential: `type` and `message.id`."""

    type = fields.String(required=True, validate=validate.Length(1, 64))
    time = described(VendorTime)("iso", allow_none=True)  # when the event happened
    to = described(Address)(allow_none=True)  # the recipient this event is about (outbound) or our number (inbound)
    description = described(fields.String)(allow_none=True, validate=validate.Length(max=1000))
    errorCode = described(Code)(allow_none=True)  # message-failed only
    carrierName = described(fields.String)(allow_none=True, validate=validate.Length(max=128))
    message = fields.Nested(MessageSchema, required=True)


class InboundEventSchema(EventSchema):
    """A `message-received` event: a sender and content are essential too."""

    @validates_schema
    def has_sender_and_content(self, data: dict, **kwargs: Any) -> None:
        """An inbound message without a sender, or with neither text nor media, cannot be an inbound message."""
        message = data["message"]
        if not message.get("from_"):
            raise ValidationError({"message": {"from": ["Missing data for required field."]}})
        if message.get("text") is None and not message.get("media"):
            raise ValidationError({"message": {"text": ["Missing data for required field."]}})


def _load(schema: type[Schema], event: Any) -> dict:
    """One event, its errors reported as in its own replay body (`0`, the one-event array)."""
    try:
        if not isinstance(event, dict):
            raise ValidationError({"_schema": ["Invalid input type: expected an object."]})
        return shared_schema(schema).load(event)
    except ValidationError as exc:
        raise ValidationError({"0": exc.messages}) from None


def _receipt(event: dict, raw_event: dict, ctx: CallbackContext) -> DeliveryReceipt:
    """A status event of a message we sent."""
    message = event["message"]
    return DeliveryReceipt(
        vendor=VENDOR, message_id=message["id"].strip(), status=receipt_status(event["type"], message),
        vendor_status=event["type"], vendor_code=event.get("errorCode"),
        error_description=event.get("description") if event["type"].strip().lower() == "message-failed" else None,
        received_at=ctx.received_at, occurred_at=event.get("time"), client_ref=message.get("tag"),
        recipient=digits_msisdn(event.get("to")), sender=message.get("from_"), parts=message.get("segmentCount"),
        network=event.get("carrierName"), account=ctx.account, signature_valid=ctx.signature_valid,
        raw=ctx.raw(raw_event, raw_event.get("time")),
    )


def _inbound(event: dict, raw_event: dict, ctx: CallbackContext) -> InboundMessage:
    """A `message-received` event; `to` is the number of ours this copy was sent to (a group has one per number)."""
    message = event["message"]
    media = tuple({"url": url, "content_type": None} for url in message.get("media") or ())
    return InboundMessage(
        vendor=VENDOR, message_id=message["id"].strip(), from_=digits_msisdn(message["from_"]) or message["from_"],
        to=digits_msisdn(event.get("to") or message.get("owner")) or "", received_at=ctx.received_at,
        occurred_at=event.get("time") or message.get("time"), text=message.get("text"), media=media,
        client_ref=message.get("tag"), account=ctx.account, signature_valid=ctx.signature_valid,
        raw=ctx.raw(raw_event, raw_event.get("time")),
    )


def _event(raw_event: Any, ctx: CallbackContext) -> list[Payload]:
    """The event of one array entry, by its type; a type that is neither a message nor a status is refused alone."""
    event_type = raw_event.get("type") if isinstance(raw_event, dict) else None
    name = event_type.strip().lower() if isinstance(event_type, str) else ""
    if name == INBOUND_TYPE:
        event = _load(InboundEventSchema, raw_event)
        ctx.check_account(event["message"].get("applicationId"))
        return [_inbound(event, raw_event, ctx)]
    if name and not name.startswith("message-"):
        # RBM `suggestion-response`, `requested-location-response`: not an SMS event of ours; a `message-*` type
        # Bandwidth adds later is still a status of a message we sent (unknown)
        raise UnknownCallbackType(f"Callback type {event_type[:64]!r} is not a message event.")
    event = _load(EventSchema, raw_event)
    ctx.check_account(event["message"].get("applicationId"))
    return [_receipt(event, raw_event, ctx)]


def callbacks(payload: Any, ctx: CallbackContext) -> list[Payload]:
    """The array Bandwidth posts, one event per entry whichever of our URLs it was posted to; an entry we cannot
    read is a rejected entry, the others are published."""
    events = payload if isinstance(payload, list) else [payload]  # always an array; one object read as one event
    if not events:
        raise ValidationError({"_schema": ["Expected at least one event."]})
    if len(events) > MAX_EVENTS:
        raise ValidationError({"_schema": [f"At most {MAX_EVENTS} events per callback."]})
    return served_entries((([event], event) for event in events), lambda event: _event(event, ctx), ctx)




class SendResponseSchema(BandwidthSchema):
    """The 202 answer to a send: the message, one id for all its recipients (a group message has several)."""

    id = fields.String(required=True, validate=validate.Length(1, 128))
    to = fields.List(Msisdn(), required=True, validate=validate.Length(1, 100))  # E.164 numbers to send to
    from_ = fields.String(data_key="from", allow_none=True, validate=validate.Length(max=32))
    time = VendorTime("iso", allow_none=True)
    segmentCount = StrictInteger(allow_none=True, validate=validate.Range(1, 255))
    tag = fields.String(allow_none=True, validate=validate.Length(max=1024))


def sent(response: Any) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(message id, recipient, values, the response cut down to that recipient) per recipient of a send answer."""
    message = shared_schema(SendResponseSchema).load(response)
    values = {"sender": message.get("from_"), "sent_at": message.get("time"), "parts": message.get("segmentCount"),
              "client_ref": message.get("tag")}
    return [(message["id"].strip(), recipient, values, dict(response, to=[raw]))
            for recipient, raw in zip(message["to"], response["to"], strict=True)]


ADAPTER = VendorAdapter(
    name=VENDOR,
    docs="https://dev.bandwidth.com/docs/messaging/webhooks/",
    auth_schemes=("basic", "url_token", "ip_allow_list"),  # Basic: the username/password set on the application
    send_response=entry_reader(VENDOR, as_given, sent),
    kinds={
        "delivery-receipts": KindSpec(callbacks, schemas=(EventSchema,),
                                      summary="Bandwidth message callbacks: a JSON array of these events"),
        "inbound-messages": KindSpec(callbacks, schemas=(EventSchema,),
                                     summary="Bandwidth message callbacks: a JSON array of these events"),
    },
)
