"""vonage: SMS API delivery receipts and inbound messages, by GET query, form POST or JSON POST (all values text);
Messages API callbacks (JSON with `message_uuid`) on the same routes are read by vonage_messages."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from core.events import DeliveryReceipt, InboundMessage, digits_msisdn
from receiver.fields import MESSAGE_TEXT, SHORT_TEXT, Address, Code, Hex, StrictInteger, VendorTime, described, warn
from receiver.vendors import vonage_messages
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, load, shared_schema

STATUSES = {
    "accepted": "pending",  # accepted by the downstream carrier, no handset receipt yet
    "buffered": "pending",  # queued at the carrier (handset off or busy)
    "delivered": "delivered",
    "expired": "expired",
    "failed": "failed",
    "rejected": "rejected",
    "unknown": "unknown",
}
# err-code meanings (Vonage DLR error codes; 0 means no error); other codes stay as a bare vendor_code.
ERROR_DESCRIPTIONS = {
    "1": "unknown",
    "2": "absent subscriber (temporary)",
    "3": "absent subscriber (permanent)",
    "4": "call barred by user",
    "5": "portability error",
    "6": "anti-spam rejection",
    "7": "handset busy",
    "8": "network error",
    "9": "illegal number",
    "10": "illegal message",
    "11": "unroutable",
    "12": "destination unreachable",
    "13": "subscriber age restriction",
    "14": "number blocked by carrier",
    "15": "prepaid insufficient funds",
    "99": "general error",
}
MESSAGE_TYPES = ("text", "unicode", "binary")


def canonical_message_id(message_id: str) -> str:
    """Vonage ids are hex strings that some APIs upper-case."""
    return message_id.strip().lower()


def receipt_status(vendor_status: str) -> str:
    """Our status for a Vonage DLR status; anything new is `unknown`."""
    return STATUSES.get(vendor_status.strip().lower(), "unknown")


def error_description(error_code: str | None) -> str | None:
    """Vonage's meaning of err-code; 0 and codes we do not know describe nothing."""
    return ERROR_DESCRIPTIONS.get((error_code or "").lstrip("0") or "0")


# Vonage's time forms: message-timestamp `2020-01-01 12:00:00`, with `+0000` in the current API reference, ISO 8601
# with Z, and the unix `timestamp` of signed webhooks
PUSH_TIME = ("sql", "iso", "epoch")


class VonageSchema(Schema):
    """Base for Vonage parameters."""

    class Meta:
        unknown = INCLUDE  # Vonage adds parameters over time; keep them in raw rather than refuse the callback


class ReceiptSchema(VonageSchema):
    """A delivery receipt. Essential: `messageId` and `status`; the rest only describes it."""

    messageId = fields.String(required=True, validate=validate.Length(1, 64))
    status = fields.String(required=True, validate=validate.Length(1, 32))
    msisdn = described(Address)()  # the recipient: E.164 digits, though any address Vonage echoes is kept
    to = described(Address)()  # our sender id or number
    network_code = described(fields.String)(data_key="network-code", validate=validate.Length(max=16))  # MCCMNC
    price = described(fields.String)(validate=validate.Length(max=32))
    scts = described(VendorTime)("yymmddhhmm")  # the carrier's time of this status, YYMMDDhhmm, no zone
    err_code = described(Code)(data_key="err-code")  # a number as text; kept as text whatever it holds
    message_timestamp = described(VendorTime)(*PUSH_TIME, data_key="message-timestamp")
    api_key = fields.String(data_key="api-key", validate=validate.Length(max=64))
    client_ref = described(fields.String)(data_key="client-ref", validate=validate.Length(max=256))


class InboundSchema(VonageSchema):
    """An inbound message; text/keyword for text and unicode messages, data/udh for binary ones.

    Essential: `msisdn` (the sender), `messageId` and the content (`text`, or `data` for binary)."""

    msisdn = Address(required=True)  # the sender: a number, or an alphanumeric id on some networks
    messageId = fields.String(required=True, validate=validate.Length(1, 64))
    to = described(Address)()  # our virtual number
    type = described(fields.String)(validate=validate.OneOf(MESSAGE_TYPES))  # absent or new: read as text
    text = fields.String(validate=validate.Length(max=MESSAGE_TEXT))
    keyword = described(fields.String)(validate=validate.Length(max=SHORT_TEXT))
    message_timestamp = described(VendorTime)(*PUSH_TIME, data_key="message-timestamp")
    api_key = fields.String(data_key="api-key", validate=validate.Length(max=64))
    concat = described(fields.Boolean)()  # "true" when this is one part of a long message; Vonage does not join parts
    concat_ref = described(fields.String)(data_key="concat-ref", validate=validate.Length(1, 64))
    concat_part = described(StrictInteger)(data_key="concat-part", validate=validate.Range(1, 255))
    concat_total = described(StrictInteger)(data_key="concat-total", validate=validate.Range(1, 255))
    data = fields.String(validate=validate.Length(max=MESSAGE_TEXT))  # binary content, as Vonage encodes it
    udh = described(Hex)()
    timestamp = fields.String(validate=validate.Length(max=20))  # signed webhooks only; checked by auth
    nonce = fields.String(validate=validate.Length(max=64))
    sig = fields.String(validate=validate.Length(max=128))

    @validates_schema
    def has_content(self, data: dict, **kwargs: Any) -> None:
        """A message without text (or data, for binary) cannot be an inbound message."""
        content = "data" if data.get("type") == "binary" else "text"
        if content not in data:
            raise ValidationError({content: ["Missing data for required field."]})


def is_url_check(payload: Any) -> bool:
    """Vonage checks a webhook URL with a bare request (no parameters) when it is saved; it carries no event."""
    return isinstance(payload, dict) and not payload


def receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """A delivery receipt: one event; `scts` identifies this status, since message-timestamp is push time."""
    if is_url_check(payload):
        return []
    if vonage_messages.is_messages_api(payload):
        return vonage_messages.receipts(payload, ctx)
    receipt = load(shared_schema(ReceiptSchema), payload)
    ctx.check_account(receipt.get("api_key"))
    error_code = receipt.get("err_code")
    return [
        DeliveryReceipt(
            vendor="vonage", message_id=receipt["messageId"], status=receipt_status(receipt["status"]),
            vendor_status=receipt["status"], received_at=ctx.received_at, occurred_at=receipt.get("message_timestamp"),
            operator_done_at=receipt.get("scts"), client_ref=receipt.get("client_ref") or None,
            recipient=digits_msisdn(receipt.get("msisdn")), sender=receipt.get("to"), vendor_code=error_code,
            error_description=error_description(error_code), price=receipt.get("price") or None,
            network=receipt.get("network_code") or None, account=ctx.account, signature_valid=ctx.signature_valid,
            raw=ctx.raw(payload, payload.get("scts")),
        )
    ]


def _concat(message: dict, payload: dict) -> dict[str, Any] | None:
    """The multipart position of this part, or None for a whole message (or a position Vonage left incomplete)."""
    if not message.get("concat"):
        return None
    position = {"ref": message.get("concat_ref"), "part": message.get("concat_part"),
                "total": message.get("concat_total")}
    if None in position.values():
        absent = [f"concat-{name}" for name in position if f"concat-{name}" not in payload]
        if absent:  # a present but malformed one has already warned
            warn(absent[0], "a concatenated part without its full position")
        return None
    return position


def inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """An inbound message (or one part of a long one)."""
    if is_url_check(payload):
        return []
    if vonage_messages.is_messages_api(payload):
        return vonage_messages.inbound(payload, ctx)
    message = load(shared_schema(InboundSchema), payload)
    ctx.check_account(message.get("api_key"))
    binary = message.get("type") == "binary"
    return [
        InboundMessage(
            vendor="vonage", message_id=message["messageId"], from_=digits_msisdn(message["msisdn"]) or "",
            to=digits_msisdn(message.get("to")) or "", received_at=ctx.received_at,
            occurred_at=message.get("message_timestamp"), text=None if binary else message["text"],
            binary=message.get("data") if binary else None, udh=message.get("udh") if binary else None,
            keyword=message.get("keyword") or None, concat=_concat(message, payload), account=ctx.account,
            signature_valid=ctx.signature_valid, raw=ctx.raw(payload, payload.get("message-timestamp")),
        )
    ]


# GET is Vonage's default; POST form or JSON is a dashboard setting, so all three are taken.
METHODS = ("GET", "POST")
FORMATS = ("json", "form")

ADAPTER = VendorAdapter(
    name="vonage",
    docs="https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts",
    auth_schemes=("vonage_signature", "url_token", "ip_allow_list"),
    canonical_id=canonical_message_id,
    kinds={
        "delivery-receipts": KindSpec(
            receipts, methods=METHODS, formats=FORMATS,
            schemas=(ReceiptSchema, vonage_messages.MessagesStatusSchema),
            summary="Vonage SMS API delivery receipts and Messages API message statuses",
        ),
        "inbound-messages": KindSpec(
            inbound, methods=METHODS, formats=FORMATS,
            schemas=(InboundSchema, vonage_messages.MessagesInboundSchema),
            summary="Vonage SMS API and Messages API inbound messages",
        ),
    },
)
