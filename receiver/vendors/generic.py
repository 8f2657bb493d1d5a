"""generic: our canonical JSON, for in-house senders (one object or a list), signed or bearer-authenticated.

Strict on purpose: unlike the vendor adapters (tolerant readers), an in-house sender sees the 400 for any field
that does not parse and for any bad item of a list (nothing is published), fixes its request and sends it again."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from core.events import RECEIPT_STATUSES, DeliveryReceipt, InboundMessage, LinkClick, digits_msisdn
from receiver.fields import Address, Code, Msisdn, StrictInteger, VendorTime
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, shared_schema

MAX_ITEMS = 500


class ReceiptSchema(Schema):
    """A canonical delivery receipt."""

    class Meta:
        unknown = EXCLUDE  # canonical payloads are ours: extra keys are dropped, not stored

    message_id = fields.String(required=True, validate=validate.Length(1, 128))
    status = fields.String(required=True, validate=validate.OneOf(sorted(RECEIPT_STATUSES)))
    vendor_status = fields.String(validate=validate.Length(max=64))
    occurred_at = VendorTime("iso")
    batch_id = fields.String(validate=validate.Length(max=128))
    client_ref = fields.String(validate=validate.Length(max=256))
    recipient = Msisdn()
    sender = Address()
    vendor_code = Code()
    error_description = fields.String(validate=validate.Length(max=512))
    parts = StrictInteger(validate=validate.Range(1, 255))
    price = fields.String(validate=validate.Length(max=32))
    currency = fields.String(validate=validate.Length(3, 3))
    network = fields.String(validate=validate.Length(max=32))


class InboundSchema(Schema):
    """A canonical inbound message."""

    class Meta:
        unknown = EXCLUDE

    message_id = fields.String(required=True, validate=validate.Length(1, 128))
    from_ = Address(required=True, data_key="from")  # a number or an alphanumeric sender id: both are valid
    to = Address(required=True)
    text = fields.String(validate=validate.Length(max=2000))
    occurred_at = VendorTime("iso")
    in_reply_to = fields.String(validate=validate.Length(max=128))
    client_ref = fields.String(validate=validate.Length(max=256))


class ClickSchema(Schema):
    """A canonical link click."""

    class Meta:
        unknown = EXCLUDE

    message_id = fields.String(required=True, validate=validate.Length(1, 128))
    recipient = Msisdn(required=True)
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    clicked_at = VendorTime("iso")
    batch_id = fields.String(validate=validate.Length(max=128))
    client_ref = fields.String(validate=validate.Length(max=256))
    ip_address = fields.IP()
    country_iso2 = fields.String(validate=validate.Length(2, 2))


def _items(payload: Any) -> list[Any]:
    """One object or a non-empty list of them."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise ValidationError({"_schema": ["Expected at least one item."]})
    if len(items) > MAX_ITEMS:
        raise ValidationError({"_schema": [f"At most {MAX_ITEMS} items per request."]})
    return items


def _load_all(schema: Schema, payload: Any) -> list[tuple[Any, dict]]:
    """Validate every item, reporting errors by index for lists."""
    items = _items(payload)
    loaded, errors = [], {}
    for index, item in enumerate(items):
        try:
            loaded.append((item, schema.load(item)))
        except ValidationError as exc:
            errors[str(index)] = exc.messages
    if errors:
        raise ValidationError(errors if isinstance(payload, list) else errors["0"])
    return loaded


def receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """Canonical receipts carry our status vocabulary already."""
    return [
        DeliveryReceipt(
            vendor="generic", message_id=d["message_id"], status=d["status"],
            vendor_status=d.get("vendor_status", d["status"]), received_at=ctx.received_at,
            occurred_at=d.get("occurred_at"), batch_id=d.get("batch_id"), client_ref=d.get("client_ref"),
            recipient=digits_msisdn(d.get("recipient")), sender=d.get("sender"), vendor_code=d.get("vendor_code"),
            error_description=d.get("error_description"), parts=d.get("parts"), price=d.get("price"),
            currency=d.get("currency"), network=d.get("network"), account=ctx.account,
            signature_valid=ctx.signature_valid, raw=ctx.raw(item, item.get("occurred_at")),
        )
        for item, d in _load_all(shared_schema(ReceiptSchema), payload)
    ]


def inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """Canonical inbound messages."""
    return [
        InboundMessage(
            vendor="generic", message_id=d["message_id"], from_=digits_msisdn(d["from_"]), to=digits_msisdn(d["to"]),
            received_at=ctx.received_at, occurred_at=d.get("occurred_at"), text=d.get("text"),
            in_reply_to=d.get("in_reply_to"), client_ref=d.get("client_ref"), account=ctx.account,
            signature_valid=ctx.signature_valid, raw=ctx.raw(item, item.get("occurred_at")),
        )
        for item, d in _load_all(shared_schema(InboundSchema), payload)
    ]


def clicks(payload: Any, ctx: CallbackContext) -> list[LinkClick]:
    """Canonical link clicks; without clicked_at, our receive time stands in."""
    return [
        LinkClick(
            vendor="generic", message_id=d["message_id"], recipient=digits_msisdn(d["recipient"]), url=d["url"],
            received_at=ctx.received_at, clicked_at=d.get("clicked_at") or ctx.received_at,
            batch_id=d.get("batch_id"), client_ref=d.get("client_ref"),
            ip_address=str(d["ip_address"]) if d.get("ip_address") else None,
            country_iso2=(d.get("country_iso2") or "").upper() or None, account=ctx.account,
            signature_valid=ctx.signature_valid, raw=ctx.raw(item, item.get("clicked_at")),
        )
        for item, d in _load_all(shared_schema(ClickSchema), payload)
    ]


ADAPTER = VendorAdapter(
    name="generic",
    docs="https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md",
    auth_schemes=("standard_webhooks", "bearer", "basic", "url_token", "ip_allow_list"),
    kinds={
        "delivery-receipts": KindSpec(receipts, schemas=(ReceiptSchema,), summary="Canonical delivery receipts"),
        "inbound-messages": KindSpec(inbound, schemas=(InboundSchema,), summary="Canonical inbound messages"),
        "link-clicks": KindSpec(clicks, schemas=(ClickSchema,), summary="Canonical link clicks"),
    },
)
