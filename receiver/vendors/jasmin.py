"""Jasmin SMS gateway: DLRs (levels 1-3) and MOs by GET query or form POST, acknowledged with `ACK/Jasmin`.

Jasmin requeues a callback (max_retries=3, retry_delay=30 s by default) unless the answer is 200 with the body
exactly `ACK/Jasmin`, and stops retrying at once on a 404.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from core.events import DeliveryReceipt, InboundMessage, digits_msisdn
from receiver import smpp
from receiver.fields import MESSAGE_TEXT, Address, Code, DataCoding, Hex, StrictInteger, VendorTime, described
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, shared_schema, text_ack
from receiver.vendors.fortytwo import SMPP_STATUSES

VENDOR = "jasmin"
ACK = "ACK/Jasmin"
ACCEPTED_BY_SMSC = "ESME_ROK"
SMPP_COMMAND_STATUS_PREFIX = "ESME_R"
# Jasmin's placeholder for a receipt field the SMSC left out (operations.py isDeliveryReceipt defaults to "ND")
NOT_DEFINED = "ND"
# Optional parameters that an SMSC may leave empty or "ND"; either means absent rather than a malformed value.
OPTIONAL_DLR_PARAMETERS = ("id_smsc", "sub", "dlvrd", "subdate", "donedate", "err", "text", "connector", "level")
OPTIONAL_MO_PARAMETERS = ("to", "origin-connector", "binary", "priority", "coding", "validity", "tlv_params",
                          "custom_tlvs")
SMSC_TIME = ("yymmddhhmm",)  # YYMMDDhhmm[ss] and YYYYMMDDhhmm[ss]: Jasmin passes the SMSC's digits as they are


def canonical_message_id(message_id: str) -> str:
    """Jasmin ids are UUIDs; SMSC ids (id_smsc) mix hex and decimal, handled by smsc_id_variants."""
    return message_id.strip().lower()


class ReceiptSchema(Schema):
    """A Jasmin DLR: level 1 is the SMSC's submit_sm_resp, levels 2 and 3 add the handset receipt fields.

    Essential: `id` and `message_status`; every other parameter only describes the receipt."""

    class Meta:
        unknown = INCLUDE  # keep parameters of newer Jasmin versions

    id = fields.String(required=True, validate=validate.Length(1, 128))  # Jasmin's message UUID
    message_status = fields.String(required=True, validate=validate.Length(1, 64))
    level = described(StrictInteger)(validate=validate.OneOf([1, 2, 3]))  # the level requested, always sent
    # documented as always sent (older releases omit it); level-2 DLRs carry the SMSC's message id here, not the
    # connector (managers/dlr.py passes dlr_connector=pdu_dlr_id), so it only describes the receipt
    connector = described(fields.String)(validate=validate.Length(max=128))
    id_smsc = described(fields.String)(validate=validate.Length(max=128))
    sub = described(fields.String)(validate=validate.Length(max=16))
    dlvrd = described(fields.String)(validate=validate.Length(max=16))
    subdate = described(VendorTime)(*SMSC_TIME)  # we only describe the SMSC's times: a bad one warns
    donedate = described(VendorTime)(*SMSC_TIME)
    err = described(Code)()
    text = described(fields.String)(validate=validate.Length(max=1000))  # the first 20 characters of the message


class InboundSchema(Schema):
    """A Jasmin MO from an HTTP client connector; long messages arrive already concatenated.

    Essential: `id`, `from` and the content (`content`, or its hexlified copy `binary`)."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=validate.Length(1, 128))
    from_ = Address(required=True, data_key="from")  # a number or an alphanumeric sender (`from=Jasmin` in its docs)
    to = described(Address)()  # documented as always sent; an MO without it is still a message
    origin_connector = described(fields.String)(data_key="origin-connector", validate=validate.Length(max=128))
    content = fields.String(validate=validate.Length(max=MESSAGE_TEXT))  # the raw SMS bytes, percent-encoded
    binary = described(Hex)(validate=validate.Length(max=2 * MESSAGE_TEXT))  # hexlified content; older releases omit it
    priority = described(Code)()  # 0-3, or a priority name (LEVEL_1) in older releases
    coding = described(DataCoding)()  # the data_coding byte, its number or its name: see receiver.smpp
    validity = described(fields.String)(validate=validate.Length(max=64))  # `YYYY-MM-DD hh:mm:ss[.ffffff]`
    tlv_params = fields.String(validate=validate.Length(max=MESSAGE_TEXT))  # a JSON string, kept as received
    custom_tlvs = fields.String(validate=validate.Length(max=MESSAGE_TEXT))

    @validates_schema
    def has_content(self, data: dict, **kwargs: Any) -> None:
        """An MO without any content cannot be an inbound message."""
        if "content" not in data and not data.get("binary"):
            raise ValidationError({"content": ["Missing data for required field."]})


def receipt_status(message_status: str) -> str:
    """Our status for a Jasmin message_status: an SMPP command status (level 1) or an SMPP receipt `stat`."""
    upper = message_status.strip().upper()
    if upper == ACCEPTED_BY_SMSC:
        return "pending"  # accepted by the SMSC, not yet delivered
    if upper.startswith(SMPP_COMMAND_STATUS_PREFIX):
        return "rejected"  # any other command status: the SMSC refused the submit_sm
    return SMPP_STATUSES.get(upper, "unknown")


def _without_placeholders(payload: Any, optional: tuple[str, ...]) -> Any:
    """Drop empty or `ND` optional parameters: an SMSC that lacks a value leaves it blank or Jasmin writes ND."""
    if not isinstance(payload, dict):
        return payload
    return {name: value for name, value in payload.items()
            if not (name in optional and isinstance(value, str) and _placeholder(name, value))}


def _placeholder(name: str, value: str) -> bool:
    """Blank or ND; `coding` is a raw byte that may be whitespace (0x09, 0x0A, 0x0D, 0x20), so only empty counts."""
    if name == "coding":
        return value == ""
    return value.strip() in ("", NOT_DEFINED)


def inbound_text(content: str | None, binary: str | None, coding: int | None) -> str | None:
    """The message text decoded with its data_coding (0 GSM 03.38, 3 Latin-1, 8 UCS2...; absent means 0), or None
    for binary data. Jasmin throws `content` as the raw SMS bytes, so the exact `binary` copy is decoded when
    present; else `content` as our form parser read it (byte for byte where it was not UTF-8, NULs gone)."""
    coding = smpp.GSM_DEFAULT if coding is None else coding
    if binary:
        return smpp.decode(bytes.fromhex(binary), coding)
    if content is None:
        return None
    try:
        message = content.encode("latin-1")
    except UnicodeEncodeError:
        return content  # valid UTF-8 beyond Latin-1: the SMSC sent text whatever it declared, keep it as read
    if coding == smpp.GSM_DEFAULT and not message.isascii():
        return content  # not septets: the SMSC sent 8-bit text under the default coding, keep it as read
    return smpp.decode(message, coding)


def receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """One DLR; level 3 sends both the SMSC and the handset receipt as separate callbacks."""
    cleaned = _without_placeholders(payload, OPTIONAL_DLR_PARAMETERS)
    receipt = shared_schema(ReceiptSchema).load(cleaned)
    done_at = receipt.get("donedate")
    return [
        DeliveryReceipt(
            vendor=VENDOR, message_id=canonical_message_id(receipt["id"]),
            status=receipt_status(receipt["message_status"]), vendor_status=receipt["message_status"],
            received_at=ctx.received_at, occurred_at=done_at, operator_done_at=done_at,
            vendor_code=receipt.get("err"), account=ctx.account, signature_valid=ctx.signature_valid,
            # a level-1 receipt of a refused submit names the SMPP command status; DLR `err` codes are the SMSC's own
            error_description=smpp.command_status_description(receipt["message_status"]),
            raw=ctx.raw(payload, cleaned.get("donedate")),
        )
    ]


def inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """One MO; Jasmin sends no time, so occurred_at stays empty and our receive time stands in."""
    message = shared_schema(InboundSchema).load(_without_placeholders(payload, OPTIONAL_MO_PARAMETERS))
    return [
        InboundMessage(
            vendor=VENDOR, message_id=canonical_message_id(message["id"]),
            from_=digits_msisdn(message["from_"]), to=digits_msisdn(message.get("to")) or "",
            received_at=ctx.received_at,
            text=inbound_text(message.get("content"), message.get("binary"), message.get("coding")),
            binary=message.get("binary"), account=ctx.account, signature_valid=ctx.signature_valid,
            raw=ctx.raw(payload),
        )
    ]


ADAPTER = VendorAdapter(
    name=VENDOR,
    docs="https://docs.jasminsms.com/en/latest/apis/http/index.html",
    auth_schemes=("url_token", "ip_allow_list"),  # Jasmin's thrower sends no credentials of any kind
    canonical_id=canonical_message_id,
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
