"""Jasmin SMS gateway: DLRs (levels 1-3) and MOs by GET query or form POST, acknowledged with `ACK/Jasmin`.

Jasmin requeues a callback (max_retries=3, retry_delay=30 s by default) unless the answer is 200 with the body
exactly `ACK/Jasmin`, and stops retrying at once on a 404.
"""

from __future__ import annotations

import binascii
from typing import Any

from marshmallow import INCLUDE, Schema, fields, validate

from receiver.contract import DeliveryReceipt, InboundMessage, digits_msisdn, normalize_message_id
from receiver.fields import Address, Code, Hex, Msisdn, StrictInteger, VendorTime, described
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, shared_schema, text_ack
from receiver.vendors.fortytwo import SMPP_STATUSES

VENDOR = "jasmin"
ACK = "ACK/Jasmin"
ACCEPTED_BY_SMSC = "ESME_ROK"
SMPP_COMMAND_STATUS_PREFIX = "ESME_R"
UCS2_CODINGS = {"8", "UCS2"}  # data_coding 8 as a number or as Jasmin's older name
# Optional parameters that an SMSC may leave empty; blank means absent rather than a malformed value.
OPTIONAL_DLR_PARAMETERS = ("id_smsc", "sub", "dlvrd", "subdate", "donedate", "err", "text", "connector")
OPTIONAL_MO_PARAMETERS = ("binary", "priority", "coding", "validity", "tlv_params", "custom_tlvs")


class ReceiptSchema(Schema):
    """A Jasmin DLR: level 1 is the SMSC's submit_sm_resp, levels 2 and 3 add the handset receipt fields."""

    class Meta:
        unknown = INCLUDE  # keep parameters of newer Jasmin versions

    id = fields.String(required=True, validate=validate.Length(1, 128))  # Jasmin's message UUID
    message_status = fields.String(required=True, validate=validate.Length(1, 64))
    level = StrictInteger(required=True, validate=validate.OneOf([1, 2, 3]))
    connector = fields.String(validate=validate.Length(max=128))  # documented as always sent; older releases omit it
    id_smsc = fields.String(validate=validate.Length(max=128))
    sub = fields.String(validate=validate.Length(max=16))
    dlvrd = fields.String(validate=validate.Length(max=16))
    subdate = described(VendorTime)("yymmddhhmm")  # we only describe the SMSC's times: a bad one warns
    donedate = described(VendorTime)("yymmddhhmm")
    err = Code()
    text = fields.String(validate=validate.Length(max=256))  # the first 20 characters of the message


class InboundSchema(Schema):
    """A Jasmin MO from an HTTP client connector; long messages arrive already concatenated."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=validate.Length(1, 128))
    from_ = Msisdn(required=True, data_key="from")
    to = Address(required=True)
    origin_connector = fields.String(required=True, data_key="origin-connector", validate=validate.Length(1, 128))
    content = fields.String(required=True, validate=validate.Length(max=4000))
    binary = Hex(validate=validate.Length(max=8000))  # hexlified content; documented as always sent, older omit it
    priority = Code()  # 0-3, or a priority name in older releases
    coding = Code()  # SMPP data_coding, or a coding name in older releases
    validity = fields.String(validate=validate.Length(max=64))
    tlv_params = fields.String(validate=validate.Length(max=4000))  # a JSON string, kept as received
    custom_tlvs = fields.String(validate=validate.Length(max=4000))


def receipt_status(message_status: str) -> str:
    """Our status for a Jasmin message_status: an SMPP command status (level 1) or an SMPP receipt `stat`."""
    upper = message_status.strip().upper()
    if upper == ACCEPTED_BY_SMSC:
        return "pending"  # accepted by the SMSC, not yet delivered
    if upper.startswith(SMPP_COMMAND_STATUS_PREFIX):
        return "rejected"  # any other command status: the SMSC refused the submit_sm
    return SMPP_STATUSES.get(upper, "unknown")


def _without_blanks(payload: Any, optional: tuple[str, ...]) -> Any:
    """Drop empty optional parameters: an SMSC that lacks a value leaves it blank."""
    if not isinstance(payload, dict):
        return payload
    return {name: value for name, value in payload.items() if not (name in optional and value == "")}


def inbound_text(content: str, binary: str | None, coding: str | None) -> str:
    """The message text; UCS2 content is raw UTF-16 bytes, so decode it from the hexlified copy instead."""
    if binary and coding and coding.upper() in UCS2_CODINGS:
        try:
            return bytes.fromhex(binary).decode("utf-16-be", errors="replace")
        except (ValueError, binascii.Error):
            return content
    return content


def receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """One DLR; level 3 sends both the SMSC and the handset receipt as separate callbacks."""
    cleaned = _without_blanks(payload, OPTIONAL_DLR_PARAMETERS)
    receipt = shared_schema(ReceiptSchema).load(cleaned)
    done_at = receipt.get("donedate")
    return [
        DeliveryReceipt(
            vendor=VENDOR, message_id=normalize_message_id(VENDOR, receipt["id"]),
            status=receipt_status(receipt["message_status"]), vendor_status=receipt["message_status"],
            received_at=ctx.received_at, occurred_at=done_at, operator_done_at=done_at,
            vendor_code=receipt.get("err"), account=ctx.account, signature_valid=ctx.signature_valid,
            raw=ctx.raw(payload, cleaned.get("donedate")),
        )
    ]


def inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """One MO; Jasmin sends no time, so occurred_at stays empty and our receive time stands in."""
    message = shared_schema(InboundSchema).load(_without_blanks(payload, OPTIONAL_MO_PARAMETERS))
    return [
        InboundMessage(
            vendor=VENDOR, message_id=normalize_message_id(VENDOR, message["id"]),
            from_=digits_msisdn(message["from_"]), to=digits_msisdn(message["to"]), received_at=ctx.received_at,
            text=inbound_text(message["content"], message.get("binary"), message.get("coding")),
            binary=message.get("binary"), account=ctx.account, signature_valid=ctx.signature_valid,
            raw=ctx.raw(payload),
        )
    ]


ADAPTER = VendorAdapter(
    name=VENDOR,
    kinds={
        "delivery-receipts": KindSpec(
            receipts, methods=("GET", "POST"), formats=("form",), schemas=(ReceiptSchema,),
            ack=text_ack(ACK),  # anything but 200 + `ACK/Jasmin` is requeued; a 404 stops retries
            summary="Jasmin DLRs, levels 1-3 (GET query or form POST), answered ACK/Jasmin",
        ),
        "inbound-messages": KindSpec(
            inbound, methods=("GET", "POST"), formats=("form",), schemas=(InboundSchema,),
            ack=text_ack(ACK),  # same acknowledgement and retry rules as DLRs
            summary="Jasmin MOs (GET query or form POST), answered ACK/Jasmin",
        ),
    },
)
