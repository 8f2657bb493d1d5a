"""twilio: Programmable Messaging status callbacks and inbound messages, form POSTs signed with X-Twilio-Signature."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from core.events import DeliveryReceipt, Envelope, InboundMessage, Payload, digits_msisdn
from receiver.errors import UnknownCallbackType
from receiver.fields import MESSAGE_TEXT, Address, Code, StrictInteger, VendorTime, described
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, load, shared_schema

STATUSES = {
    "delivered": "delivered",
    "read": "delivered",  # read receipts (WhatsApp/RCS) imply delivery
    "queued": "pending",
    "accepted": "pending",  # accepted by a Messaging Service, not yet queued
    "scheduled": "pending",
    "sending": "pending",
    "sent": "pending",  # handed to the carrier: not a delivery
    "failed": "failed",
    "undelivered": "failed",
    "canceled": "failed",  # a scheduled message we cancelled; the reason goes to error_description
    "partially_delivered": "unknown",  # some segments arrived, not the message: no honest final status
}
# Statuses of messages *to* us: on the status callback URL they mean the number's incoming-message webhook points
# there, so the callback is read as the inbound message it is (a STOP must not be lost to a misrouted URL).
INBOUND_STATUSES = {"receiving", "received"}
# The most common Twilio error dictionary entries on status callbacks; others stay as a bare ErrorCode.
ERROR_DESCRIPTIONS = {
    "30001": "queue overflow",
    "30002": "account suspended",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by carrier",
    "30008": "unknown error",
    "30009": "missing segment",
    "30010": "message price exceeds max price",
    "21211": "invalid 'To' phone number",
    "21612": "'To' phone number is not currently reachable via SMS",
    "21614": "'To' number is not a valid mobile number",
    "21610": "attempt to send to unsubscribed recipient",  # the recipient replied STOP to this sender
}
# Error codes that mean the recipient opted out of this sender (Twilio error dictionary: 21610 "Attempt to send to
# unsubscribed recipient", raised after the recipient replied STOP): the receipt is evidence of an opt-out.
OPT_OUT_CODES = frozenset({"21610"})
MAX_MEDIA = 10  # Twilio's own limit per message
# Empty TwiML: Twilio reads the answer to an inbound message as instructions; our JSON would be logged as an error
# (12300 invalid content type) in the customer's Twilio debugger, and an empty <Response/> means "do not reply".
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Older callbacks (and the SMS-era webhook) name the message and its status SmsSid/SmsMessageSid and SmsStatus only
LEGACY_NAMES = {"MessageSid": ("SmsMessageSid", "SmsSid"), "MessageStatus": ("SmsStatus",)}


def canonical_message_id(message_id: str) -> str:
    """Twilio SIDs are case-sensitive in docs but never differ only by case."""
    return message_id.strip().lower()


def receipt_status(vendor_status: str) -> str:
    """Our status for a Twilio MessageStatus; a status Twilio adds later is `unknown`."""
    return STATUSES.get(vendor_status.strip().lower(), "unknown")


def error_description(vendor_status: str, error_code: str | None, error_message: str | None = None) -> str | None:
    """`canceled` for cancelled messages, else Twilio's ErrorMessage, else its name for the error code if we know it."""
    if vendor_status.strip().lower() == "canceled":
        return "canceled"
    return error_message or ERROR_DESCRIPTIONS.get(error_code or "")


def channel_address(value: str | None) -> str | None:
    """The number without a channel prefix, digits only: Twilio writes `whatsapp:+14155238886` for non-SMS
    channels, and sent messages are matched on the recipient's digits."""
    if value is None:
        return None
    _, colon, address = value.partition(":")
    return digits_msisdn(address if colon else value)


def subscriber_address(value: str) -> str:
    """The subscriber as an inbound `from`: digits for SMS, but a channel address (`whatsapp:+14155238886`,
    `messenger:...`, `rcs:...`) stays as Twilio wrote it, since the same digits on another channel are another
    conversation (and an opt-out on WhatsApp is not one on SMS)."""
    channel, colon, _ = value.partition(":")
    return value.strip() if colon and channel.isalpha() else digits_msisdn(value) or value


class TwilioSchema(Schema):
    """Base for Twilio form parameters."""

    class Meta:
        unknown = INCLUDE  # Twilio adds parameters (ApiVersion, SmsSid, Channel*...) freely; keep them in raw

    @pre_load
    def legacy_names(self, data: Any, **kwargs: Any) -> Any:
        """Read MessageSid/MessageStatus from their SMS-era names when only those are sent."""
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for name, legacy in LEGACY_NAMES.items():
            if not filled.get(name):
                found = next((filled[old] for old in legacy if filled.get(old)), None)
                if found is not None:
                    filled[name] = found
        return filled


class StatusCallbackSchema(TwilioSchema):
    """A status callback for a message we sent. Essential: MessageSid and MessageStatus."""

    MessageSid = fields.String(required=True, validate=validate.Length(1, 64))
    MessageStatus = fields.String(required=True, validate=validate.Length(1, 32))
    ErrorCode = described(Code)()  # only on failed/undelivered; may be blank
    ErrorMessage = described(fields.String)(validate=validate.Length(max=1000))  # some channels explain the code
    RawDlrDoneDate = described(VendorTime)("yymmddhhmm")  # the carrier's done date, no zone; delivered/undelivered
    AccountSid = fields.String(validate=validate.Length(max=64))
    MessagingServiceSid = fields.String(validate=validate.Length(max=64))
    From = described(Address)(max_length=256)  # our number, with its channel prefix if any
    To = described(Address)(max_length=256)
    NumSegments = described(StrictInteger)(validate=validate.Range(1, 255))
    Price = described(fields.String)(validate=validate.Length(max=32))  # when Twilio includes it: negative, a cost
    PriceUnit = described(fields.String)(validate=validate.Length(max=8))


class InboundSchema(TwilioSchema):
    """An incoming message webhook; media come as MediaUrl{N}/MediaContentType{N} pairs.

    Essential: MessageSid, From and content (Body, or at least one MediaUrl0)."""

    MessageSid = fields.String(required=True, validate=validate.Length(1, 64))
    From = Address(required=True, max_length=256)  # `whatsapp:+1...`, `messenger:...` on channels
    To = described(Address)(max_length=256)
    Body = fields.String(validate=validate.Length(max=MESSAGE_TEXT))  # blank for picture-only MMS
    NumMedia = described(StrictInteger)(validate=validate.Range(0, MAX_MEDIA))
    NumSegments = described(StrictInteger)(validate=validate.Range(1, 255))
    AccountSid = fields.String(validate=validate.Length(max=64))
    MessagingServiceSid = fields.String(validate=validate.Length(max=64))

    @validates_schema
    def has_content(self, data: dict, **kwargs: Any) -> None:
        """An incoming message with neither Body nor media cannot be an inbound message."""
        if "Body" not in data and not data.get("MediaUrl0"):
            raise ValidationError({"Body": ["Missing data for required field."]})


def _media(form: dict[str, str]) -> tuple[dict[str, Any], ...]:
    """The MediaUrl{N}/MediaContentType{N} pairs as sent (NumMedia only describes them; Twilio's URLs may also be
    relative in recordings), under neutral names."""
    media = []
    for index in range(MAX_MEDIA):
        url = form.get(f"MediaUrl{index}")
        if not url:
            break
        media.append({"url": url, "content_type": form.get(f"MediaContentType{index}") or None})
    return tuple(media)


def _callback_status(payload: Any) -> str:
    """The status word of a callback, under either of its names, lower-cased; empty when there is none."""
    if not isinstance(payload, dict):
        return ""
    return str(payload.get("MessageStatus") or payload.get("SmsStatus") or "").strip().lower()


def receipts(payload: Any, ctx: CallbackContext) -> list[Payload]:
    """A status callback: one receipt; an incoming message sent here instead is read as the inbound message."""
    if _callback_status(payload) in INBOUND_STATUSES:
        if "Body" in payload or payload.get("MediaUrl0"):
            return list(inbound(payload, ctx))
        raise UnknownCallbackType(f"MessageStatus {_callback_status(payload)!r} is an inbound message without its "
                                  "content, not a delivery receipt.")
    callback = load(shared_schema(StatusCallbackSchema), payload)
    vendor_status = callback["MessageStatus"]
    ctx.check_account(callback.get("AccountSid"))
    error_code = callback.get("ErrorCode") or None  # Twilio sends ErrorCode= blank on some non-failures
    return [
        DeliveryReceipt(
            vendor="twilio", message_id=callback["MessageSid"], status=receipt_status(vendor_status),
            vendor_status=vendor_status, received_at=ctx.received_at, recipient=channel_address(callback.get("To")),
            sender=callback.get("From"), vendor_code=error_code,
            error_description=error_description(vendor_status, error_code, callback.get("ErrorMessage") or None),
            parts=callback.get("NumSegments"), price=callback.get("Price") or None,
            currency=callback.get("PriceUnit") or None, operator_done_at=callback.get("RawDlrDoneDate"),
            account=ctx.account, signature_valid=ctx.signature_valid,
            recipient_opted_out=True if error_code in OPT_OUT_CODES else None,
            raw=ctx.raw(payload, payload.get("RawDlrDoneDate")),
        )
    ]


def inbound(payload: Any, ctx: CallbackContext) -> list[Payload]:
    """An incoming SMS/MMS (or channel message); Twilio sends no time, so occurred_at stays empty and ce_time is our
    receive time. A status callback sent here instead is read as the receipt it is."""
    status = _callback_status(payload)
    if status and status not in INBOUND_STATUSES and "Body" not in payload:
        return receipts(payload, ctx)
    message = load(shared_schema(InboundSchema), payload)
    ctx.check_account(message.get("AccountSid"))
    return [
        InboundMessage(
            vendor="twilio", message_id=message["MessageSid"], from_=subscriber_address(message["From"]),
            to=channel_address(message.get("To")) or "", received_at=ctx.received_at, text=message.get("Body", ""),
            media=_media(payload), account=ctx.account, signature_valid=ctx.signature_valid, raw=ctx.raw(payload),
        )
    ]


def twiml_ack(envelopes: list[Envelope], ctx: CallbackContext) -> tuple[str, str]:
    """Answer an inbound message with empty TwiML: accepted, and no auto-reply sent on our behalf."""
    return EMPTY_TWIML, "text/xml"


ADAPTER = VendorAdapter(
    name="twilio",
    docs="https://www.twilio.com/docs/messaging/guides/track-outbound-message-status",
    # Twilio's sending addresses are not published, so no allow-list for it
    auth_schemes=("twilio_signature", "url_token"),
    canonical_id=canonical_message_id,
    # Twilio's per-webhook token, the same on its retries: kept in raw so consumers can spot a retried callback
    idempotency_header="I-Twilio-Idempotency-Token",
    kinds={
        # Status callbacks ignore the body, so they get our JSON answer with the event ids.
        "delivery-receipts": KindSpec(receipts, formats=("form",), schemas=(StatusCallbackSchema,),
                                      summary="Twilio message status callbacks"),
        # A number's "A message comes in" webhook may be set to HTTP GET: the parameters then come in the query
        # string and Twilio signs the full URL with it (no body parameters).
        "inbound-messages": KindSpec(inbound, methods=("POST", "GET"), formats=("form",), schemas=(InboundSchema,),
                                     ack=twiml_ack, summary="Twilio incoming messages (answered with empty TwiML)"),
    },
)
