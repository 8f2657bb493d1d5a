"""vonage: SMS API delivery receipts and inbound messages, by GET query, form POST or JSON POST (all values text)."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from receiver.contract import DeliveryReceipt, InboundMessage, digits_msisdn
from receiver.fields import SHORT_TEXT, Address, Code, Hex, Msisdn, StrictInteger, VendorTime
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


def receipt_status(vendor_status: str) -> str:
    """Our status for a Vonage DLR status; anything new is `unknown`."""
    return STATUSES.get(vendor_status.strip().lower(), "unknown")


def error_description(error_code: str | None) -> str | None:
    """Vonage's meaning of err-code; 0 and codes we do not know describe nothing."""
    return ERROR_DESCRIPTIONS.get((error_code or "").lstrip("0") or "0")


class VonageSchema(Schema):
    """Base for Vonage parameters."""

    class Meta:
        unknown = INCLUDE  # Vonage adds parameters over time; keep them in raw rather than refuse the callback


class ReceiptSchema(VonageSchema):
    """A delivery receipt; every field the PHP SDK requires is required here."""

    msisdn = Msisdn(required=True)  # the recipient
    to = Address(required=True)  # our sender id or number
    network_code = fields.String(required=True, data_key="network-code", validate=validate.Length(max=16))
    messageId = fields.String(required=True, validate=validate.Length(1, 64))
    price = fields.String(required=True, validate=validate.Length(max=32))
    status = fields.String(required=True, validate=validate.Length(1, 32))
    scts = VendorTime("yymmddhhmm", required=True)  # the SMSC's time of this status, no zone
    err_code = Code(required=True, data_key="err-code")
    message_timestamp = VendorTime("sql", required=True, data_key="message-timestamp")
    api_key = fields.String(data_key="api-key", validate=validate.Length(max=64))
    client_ref = fields.String(data_key="client-ref", validate=validate.Length(max=256))


class InboundSchema(VonageSchema):
    """An inbound message; text/keyword for text and unicode messages, data/udh for binary ones."""

    msisdn = Msisdn(required=True)  # the sender
    to = Address(required=True)
    messageId = fields.String(required=True, validate=validate.Length(1, 64))
    type = fields.String(required=True, validate=validate.OneOf(MESSAGE_TYPES))
    text = fields.String(validate=validate.Length(max=SHORT_TEXT))
    keyword = fields.String(validate=validate.Length(max=SHORT_TEXT))
    message_timestamp = VendorTime("sql", required=True, data_key="message-timestamp")
    api_key = fields.String(data_key="api-key", validate=validate.Length(max=64))
    concat = fields.Boolean()  # "true" when this is one part of a long message; Vonage does not join parts
    concat_ref = fields.String(data_key="concat-ref", validate=validate.Length(1, 64))
    concat_part = StrictInteger(data_key="concat-part", validate=validate.Range(1, 255))
    concat_total = StrictInteger(data_key="concat-total", validate=validate.Range(1, 255))
    data = fields.String(validate=validate.Length(max=SHORT_TEXT))  # binary content, as Vonage encodes it
    udh = Hex()
    timestamp = fields.String(validate=validate.Length(max=20))  # signed webhooks only; checked by auth
    nonce = fields.String(validate=validate.Length(max=64))
    sig = fields.String(validate=validate.Length(max=128))

    @validates_schema
    def content_for_type(self, data: dict, **kwargs: Any) -> None:
        """Text messages need text and keyword; binary ones data and udh (the SDK's list assumes text)."""
        needed = ("data", "udh") if data.get("type") == "binary" else ("text", "keyword")
        if data.get("concat"):
            needed += ("concat_ref", "concat_part", "concat_total")
        missing = [name for name in needed if name not in data]
        if missing:
            fields_by_name = self.fields
            raise ValidationError({fields_by_name[name].data_key or name: ["Missing data for required field."]
                                   for name in missing})


def receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """A delivery receipt: one event; `scts` identifies this status, since message-timestamp is push time."""
    receipt = load(shared_schema(ReceiptSchema), payload)
    ctx.check_account(receipt.get("api_key"))
    error_code = receipt["err_code"]
    return [
        DeliveryReceipt(
            vendor="vonage", message_id=receipt["messageId"], status=receipt_status(receipt["status"]),
            vendor_status=receipt["status"], received_at=ctx.received_at, occurred_at=receipt["message_timestamp"],
            operator_done_at=receipt["scts"], client_ref=receipt.get("client_ref"),
            recipient=digits_msisdn(receipt["msisdn"]), sender=receipt["to"], vendor_code=error_code,
            error_description=error_description(error_code), price=receipt["price"] or None,
            network=receipt["network_code"] or None, account=ctx.account, signature_valid=ctx.signature_valid,
            raw=ctx.raw(payload, payload.get("scts")),
        )
    ]


def _concat(message: dict) -> dict[str, Any] | None:
    """The multipart position of this part, or None for a whole message."""
    if not message.get("concat"):
        return None
    return {"ref": message["concat_ref"], "part": message["concat_part"], "total": message["concat_total"]}


def inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """An inbound message (or one part of a long one)."""
    message = load(shared_schema(InboundSchema), payload)
    ctx.check_account(message.get("api_key"))
    binary = message["type"] == "binary"
    return [
        InboundMessage(
            vendor="vonage", message_id=message["messageId"], from_=digits_msisdn(message["msisdn"]) or "",
            to=digits_msisdn(message["to"]) or "", received_at=ctx.received_at,
            occurred_at=message["message_timestamp"], text=None if binary else message["text"],
            binary=message.get("data") if binary else None, udh=message.get("udh") if binary else None,
            keyword=message.get("keyword") or None, concat=_concat(message), account=ctx.account,
            signature_valid=ctx.signature_valid, raw=ctx.raw(payload, payload.get("message-timestamp")),
        )
    ]


# GET is Vonage's default; POST form or JSON is a dashboard setting, so all three are taken.
METHODS = ("GET", "POST")
FORMATS = ("json", "form")

ADAPTER = VendorAdapter(
    name="vonage",
    kinds={
        "delivery-receipts": KindSpec(receipts, methods=METHODS, formats=FORMATS, schemas=(ReceiptSchema,),
                                      summary="Vonage SMS API delivery receipts"),
        "inbound-messages": KindSpec(inbound, methods=METHODS, formats=FORMATS, schemas=(InboundSchema,),
                                     summary="Vonage SMS API inbound messages"),
    },
)
