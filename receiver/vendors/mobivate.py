"""Mobivate: JSON POST callbacks for delivery receipts, inbound messages and short-URL clicks; no signature."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from core.events import DeliveryReceipt, InboundMessage, LinkClick, SentMessage, digits_msisdn
from receiver.fields import Address, Msisdn, StrictInteger, VendorTime, described
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, shared_schema
from receiver.vendors.sending import sent_message, stated

VENDOR = "mobivate"
DASHED_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# The documented rows of Mobivate's "Delivery Status List" (the rest of the table was never published),
# then the exact names of the reference's keyword fallback.
STATUS_BY_NAME = {
    "DELIVERED": "delivered",
    "ACCEPTED": "pending",
    "DELETED": "failed",
    "ENROUTE": "pending",
    "SENT": "pending",
    "QUEUED": "pending",
    "PENDING": "pending",
}
STATUS_BY_CODE = {1: "delivered", 2: "pending"}
# Prefix fallback for undocumented names (EXPIR*, REJECT*, UNDELIV*, FAIL*).
STATUS_PREFIXES = (("EXPIR", "expired"), ("REJECT", "rejected"), ("UNDELIV", "failed"), ("FAIL", "failed"))
# Mobivate's iso2l uses "UK" for the United Kingdom; ISO 3166-1 says "GB".
ISO2_CORRECTIONS = {"UK": "GB"}


class ReceiptSchema(Schema):
    """A Mobivate Delivery Receipt Notification."""

    class Meta:
        unknown = INCLUDE  # new vendor fields are kept (they stay in `raw`), never refused

    delivery_message_id = fields.String(required=True, data_key="deliveryMessageId", validate=validate.Length(1, 128))
    batch_id = described(fields.String)(data_key="batchId", allow_none=True, validate=validate.Length(max=128))
    client_reference = described(fields.String)(data_key="clientReference", allow_none=True,
                                                validate=validate.Length(max=256))
    created = described(VendorTime)("iso", allow_none=True)  # "+00:00" here, unlike the "+0000" of inbound ones
    status = fields.String(required=True, validate=validate.Length(1, 64))
    status_code = described(StrictInteger)(data_key="statusCode", allow_none=True)  # the name is what we map
    parts = described(StrictInteger)(allow_none=True, validate=validate.Range(1, 255))
    hlr = fields.Raw(allow_none=True)  # shape undocumented; kept in raw only


class InboundSchema(Schema):
    """A Mobivate Incoming Message Notification (all fields are strings)."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=validate.Length(1, 128))
    originator = Address(required=True)  # the subscriber: digits without "+" in the docs, or an alphanumeric id
    recipient = Address(required=True)  # our virtual number or short code
    body = fields.String(required=True)  # the message, however long the vendor joined it
    created = described(VendorTime)("iso", allow_none=True)  # offset without a colon: "2023-09-01T00:30:36+0000"
    in_reply_to = described(fields.String)(data_key="inReplyTo", allow_none=True, validate=validate.Length(max=128))
    logical_message_id = described(fields.String)(data_key="logicalMessageId", allow_none=True,
                                                  validate=validate.Length(max=128))
    owner_user_id = described(fields.String)(data_key="ownerUserId", allow_none=True,
                                             validate=validate.Length(max=128))


class ClickSchema(Schema):
    """A Mobivate Short URL Click Notification; its doc descriptions are copy-pasted from the MO page."""

    class Meta:
        unknown = INCLUDE

    message_id = fields.String(required=True, data_key="messageId", validate=validate.Length(1, 128))  # the MT id
    mobile = Address(required=True)  # the recipient who clicked: required, its form not judged
    url = fields.String(required=True, validate=validate.Length(1, 4096))  # the original long URL, as the sender
    # wrote it (it may lack a scheme): kept verbatim, never refused for its form
    batch_id = described(fields.String)(data_key="batchId", allow_none=True, validate=validate.Length(max=128))
    client_ref = described(fields.String)(data_key="clientRef", allow_none=True, validate=validate.Length(max=256))
    browser = described(fields.String)(allow_none=True, validate=validate.Length(max=256))
    os = described(fields.String)(allow_none=True, validate=validate.Length(max=256))
    country = described(fields.String)(allow_none=True, validate=validate.Length(max=128))  # derived from the IP
    ip_address = described(fields.IP)(data_key="ipAddress", allow_none=True)
    iso2l = described(fields.String)(allow_none=True, validate=validate.Length(2, 2))


def message_id(value: str) -> str:
    """Mobivate's canonical message id: lower-case hex; the send API's dashed UUID loses its dashes.

    Receipts carry 32 hex digits while the send response shows a dashed UUID; dropping the dashes lets them match.
    """
    normalized = value.strip().lower()
    return normalized.replace("-", "") if DASHED_UUID.match(normalized) else normalized


def receipt_status(name: str, code: int | None) -> str:
    """Our status for a Mobivate status name and code: known names, then name prefixes, then the code."""
    upper = name.strip().upper()
    if upper in STATUS_BY_NAME:
        return STATUS_BY_NAME[upper]
    for prefix, status in STATUS_PREFIXES:
        if upper.startswith(prefix):
            return status
    return STATUS_BY_CODE.get(code, "unknown") if code is not None else "unknown"


def country_iso2(iso2l: str | None) -> str | None:
    """ISO 3166 alpha-2 from Mobivate's iso2l, correcting "UK" to "GB"; the raw value stays in `raw`."""
    if not iso2l:
        return None
    upper = iso2l.upper()
    return ISO2_CORRECTIONS.get(upper, upper)


def _load(schema: Schema, payload: Any) -> dict[str, Any]:
    """One JSON object per request, validated."""
    if not isinstance(payload, dict):
        raise ValidationError({"_schema": ["Invalid input type: expected an object."]})
    return schema.load(payload)


def receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """A delivery receipt; Mobivate sends one on every status change after creation."""
    receipt = _load(shared_schema(ReceiptSchema), payload)
    return [
        DeliveryReceipt(
            vendor=VENDOR, message_id=message_id(receipt["delivery_message_id"]),
            status=receipt_status(receipt["status"], receipt.get("status_code")), vendor_status=receipt["status"],
            vendor_code=None if receipt.get("status_code") is None else str(receipt["status_code"]),
            received_at=ctx.received_at, occurred_at=receipt.get("created"),
            batch_id=receipt.get("batch_id"), client_ref=receipt.get("client_reference"),
            parts=receipt.get("parts"), account=ctx.account, signature_valid=ctx.signature_valid,
            raw=ctx.raw(payload, payload.get("created")),
        )
    ]


def inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """An inbound message; inReplyTo names the MT message it answers, logicalMessageId its batch."""
    message = _load(shared_schema(InboundSchema), payload)
    in_reply_to = message.get("in_reply_to")
    return [
        InboundMessage(
            vendor=VENDOR, message_id=message_id(message["id"]), from_=digits_msisdn(message["originator"]),
            to=digits_msisdn(message["recipient"]), received_at=ctx.received_at, occurred_at=message.get("created"),
            text=message["body"], in_reply_to=message_id(in_reply_to) if in_reply_to else None,
            batch_id=message.get("logical_message_id"), account=ctx.account, signature_valid=ctx.signature_valid,
            raw=ctx.raw(payload, payload.get("created")),
        )
    ]


def clicks(payload: Any, ctx: CallbackContext) -> list[LinkClick]:
    """A short-URL click."""
    click = _load(shared_schema(ClickSchema), payload)
    return [
        LinkClick(
            vendor=VENDOR, message_id=message_id(click["message_id"]), recipient=digits_msisdn(click["mobile"]),
            url=click["url"], received_at=ctx.received_at,
            clicked_at=ctx.received_at,  # Mobivate sends no click time: our receive time stands in
            batch_id=click.get("batch_id"), client_ref=click.get("client_ref"),
            ip_address=str(click["ip_address"]) if click.get("ip_address") else None,
            browser=click.get("browser"), os=click.get("os"), country=click.get("country"),
            country_iso2=country_iso2(click.get("iso2l")), account=ctx.account, signature_valid=ctx.signature_valid,
            raw=ctx.raw(payload),
        )
    ]




class MobivateMessageSchema(Schema):
    """Mobivate's message record, answered to a single send."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=validate.Length(1, 128))
    originator = Address(allow_none=True)
    recipient = Msisdn(required=True)
    body = fields.String(allow_none=True)
    route_id = fields.String(data_key="routeId", allow_none=True)
    reference = fields.String(allow_none=True, validate=validate.Length(max=256))
    campaign_id = fields.String(data_key="campaignId", allow_none=True, validate=validate.Length(max=128))



def send_response(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """Mobivate's message record (or a list of them), one sent message each."""
    records = item["response"] if isinstance(item["response"], list) else [item["response"]]
    if not records:
        raise ValidationError(["No message record in the response."])  # like a Fortytwo response that sent none
    schema = shared_schema(MobivateMessageSchema)
    messages = []
    for record in records:
        loaded = schema.load(record)
        messages.append(sent_message(
            "mobivate", message_id(loaded["id"]), loaded["recipient"], received_at,
            dict(item, response=record),
            **{"sender": loaded.get("originator"), "client_ref": loaded.get("reference"),
               "campaign_id": loaded.get("campaign_id"), **stated(wrapper)},
        ))
    return messages


ADAPTER = VendorAdapter(
    name=VENDOR,
    docs="https://wiki.mobivatebulksms.com/authentication-and-integration/registering-webhooks",
    auth_schemes=("url_token", "ip_allow_list"),
    canonical_id=message_id,
    send_response=send_response,
    kinds={
        "delivery-receipts": KindSpec(receipts, schemas=(ReceiptSchema,), summary="Mobivate delivery receipts"),
        "inbound-messages": KindSpec(inbound, schemas=(InboundSchema,), summary="Mobivate inbound messages"),
        "link-clicks": KindSpec(clicks, schemas=(ClickSchema,), summary="Mobivate short-URL clicks"),
    },
)
