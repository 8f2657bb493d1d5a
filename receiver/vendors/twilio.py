"""twilio: Programmable Messaging status callbacks and inbound messages, form POSTs signed with X-Twilio-Signature."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from receiver.contract import DeliveryReceipt, Envelope, InboundMessage, digits_msisdn
from receiver.errors import FORMAT_PREFIX, UnknownCallbackType
from receiver.fields import SHORT_TEXT, Address, Code, StrictInteger, VendorTime
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
# Statuses of messages *to* us: they never belong on the status callback endpoint.
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
}
MAX_MEDIA = 10  # Twilio's own limit per message
URL_ERRORS = {"invalid": f"{FORMAT_PREFIX}not an http(s) URL"}
# Empty TwiML: Twilio reads the answer to an inbound message as instructions; our JSON would be logged as an error
# (12300 invalid content type) in the customer's Twilio debugger, and an empty <Response/> means "do not reply".
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def receipt_status(vendor_status: str) -> str:
    """Our status for a Twilio MessageStatus; a status Twilio adds later is `unknown`."""
    return STATUSES.get(vendor_status.strip().lower(), "unknown")


def error_description(vendor_status: str, error_code: str | None) -> str | None:
    """`canceled` for cancelled messages, else Twilio's name for the error code when we know it."""
    if vendor_status.strip().lower() == "canceled":
        return "canceled"
    return ERROR_DESCRIPTIONS.get(error_code or "")


def channel_address(value: str | None) -> str | None:
    """The number without a channel prefix: Twilio writes `whatsapp:+14155238886` for non-SMS channels."""
    if value is None:
        return None
    _, colon, address = value.partition(":")
    return digits_msisdn(address if colon else value)


class TwilioSchema(Schema):
    """Base for Twilio form parameters."""

    class Meta:
        unknown = INCLUDE  # Twilio adds parameters (ApiVersion, SmsSid, Channel*...) freely; keep them in raw


class StatusCallbackSchema(TwilioSchema):
    """A status callback for a message we sent."""

    MessageSid = fields.String(required=True, validate=validate.Length(1, 64))
    MessageStatus = fields.String(required=True, validate=validate.Length(1, 32))
    ErrorCode = Code()  # only on failed/undelivered; may be blank
    RawDlrDoneDate = VendorTime("yymmddhhmm")  # the carrier's done date, no time zone; delivered/undelivered only
    AccountSid = fields.String(validate=validate.Length(max=64))
    MessagingServiceSid = fields.String(validate=validate.Length(max=64))
    From = Address()
    To = Address()
    NumSegments = StrictInteger(validate=validate.Range(1, 255))


class InboundSchema(TwilioSchema):
    """An incoming message webhook; media come as MediaUrl{N}/MediaContentType{N} pairs."""

    MessageSid = fields.String(required=True, validate=validate.Length(1, 64))
    From = Address(required=True)
    To = Address(required=True)
    Body = fields.String(load_default="", validate=validate.Length(max=SHORT_TEXT))  # blank for picture-only MMS
    NumMedia = StrictInteger(load_default=0, validate=validate.Range(0, MAX_MEDIA))
    NumSegments = StrictInteger(validate=validate.Range(1, 255))
    AccountSid = fields.String(validate=validate.Length(max=64))
    MessagingServiceSid = fields.String(validate=validate.Length(max=64))


class MediaSchema(Schema):
    """One MediaUrl{N} / MediaContentType{N} pair, under neutral names."""

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False, error_messages=URL_ERRORS)
    content_type = fields.String(required=True, validate=validate.Length(1, 128))


def _media(form: dict[str, str], count: int) -> tuple[dict[str, Any], ...]:
    """The NumMedia attachments; a missing or bad pair is reported under its own parameter names."""
    media, errors = [], {}
    for index in range(count):
        pair = {"url": form.get(f"MediaUrl{index}"), "content_type": form.get(f"MediaContentType{index}")}
        try:
            media.append(shared_schema(MediaSchema).load({k: v for k, v in pair.items() if v is not None}))
        except ValidationError as exc:
            names = {"url": f"MediaUrl{index}", "content_type": f"MediaContentType{index}"}
            errors.update({names[field]: messages for field, messages in exc.messages.items()})  # type: ignore[union-attr]
    if errors:
        raise ValidationError(errors)
    return tuple(media)


def receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """A status callback: one receipt; inbound statuses here are a misrouted webhook (403)."""
    callback = load(shared_schema(StatusCallbackSchema), payload)
    vendor_status = callback["MessageStatus"]
    if vendor_status.strip().lower() in INBOUND_STATUSES:
        raise UnknownCallbackType(f"MessageStatus {vendor_status!r} is an inbound message, not a delivery receipt.")
    ctx.check_account(callback.get("AccountSid"))
    error_code = callback.get("ErrorCode") or None  # Twilio sends ErrorCode= blank on some non-failures
    return [
        DeliveryReceipt(
            vendor="twilio", message_id=callback["MessageSid"], status=receipt_status(vendor_status),
            vendor_status=vendor_status, received_at=ctx.received_at, recipient=channel_address(callback.get("To")),
            sender=callback.get("From"), vendor_code=error_code,
            error_description=error_description(vendor_status, error_code), parts=callback.get("NumSegments"),
            operator_done_at=callback.get("RawDlrDoneDate"), account=ctx.account,
            signature_valid=ctx.signature_valid, raw=ctx.raw(payload, payload.get("RawDlrDoneDate")),
        )
    ]


def inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """An incoming SMS/MMS; Twilio sends no time, so occurred_at stays empty and ce_time is our receive time."""
    message = load(shared_schema(InboundSchema), payload)
    ctx.check_account(message.get("AccountSid"))
    return [
        InboundMessage(
            vendor="twilio", message_id=message["MessageSid"], from_=channel_address(message["From"]) or "",
            to=channel_address(message["To"]) or "", received_at=ctx.received_at, text=message["Body"],
            media=_media(payload, message["NumMedia"]), account=ctx.account, signature_valid=ctx.signature_valid,
            raw=ctx.raw(payload),
        )
    ]


def twiml_ack(envelopes: list[Envelope], ctx: CallbackContext) -> tuple[str, str]:
    """Answer an inbound message with empty TwiML: accepted, and no auto-reply sent on our behalf."""
    return EMPTY_TWIML, "text/xml"


ADAPTER = VendorAdapter(
    name="twilio",
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
