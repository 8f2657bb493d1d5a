"""sinch: SMS REST API (xms v1) callbacks: batch and per-recipient delivery reports, mo_text/mo_binary/mo_media."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, pre_load, validate

from core.events import DeliveryReceipt, InboundMessage, SentMessage, digits_msisdn
from receiver.errors import FORMAT_PREFIX
from receiver.fields import Address, Base64, Code, Hex, Msisdn, StrictInteger, VendorTime, described
from receiver.vendors.base import (
    CallbackContext,
    KindSpec,
    Normalizer,
    VendorAdapter,
    dispatch,
    load,
    served_entries,
    shared_schema,
)
from receiver.vendors.sending import MAX_MESSAGES, sent_message, stated

# Sinch statuses, compared lower-cased: payloads say "Delivered", the Python SDK's Literal says "DELIVERED".
STATUSES = {
    "queued": "pending",  # intermediate: only per_recipient reports carry it
    "dispatched": "pending",  # intermediate: handed to the operator
    "delivered": "delivered",
    "failed": "failed",
    "aborted": "failed",  # aborted before it reached the SMSC
    "cancelled": "failed",  # cancelled by us (the user); the reason goes to error_description
    "deleted": "failed",  # deleted by a remote SMSC
    "rejected": "rejected",
    "expired": "expired",
    "unknown": "unknown",
}
# Sinch's meaning of its own codes (Java SDK DeliveryReceiptStatusCode); other ints occur and stay undescribed.
CODE_DESCRIPTIONS = {
    "402": "message unroutable",
    "403": "internal error",
    "404": "temporary delivery failure",
    "405": "unmatched parameter",
    "406": "internal expiry",
    "407": "cancelled",
    "408": "internal reject",
    "410": "unmatched default originator",
    "411": "exceeded parts limit",
    "412": "unprovisioned region",
    "413": "blocked (account)",
    "414": "bad media",
    "415": "MMSC rejected",
    "416": "MMSC not supported",
    "417": "MMSC unreachable",
    "418": "MMSC unrecognized content",
}
MAX_RECIPIENTS = 5000
URL_ERRORS = {"invalid": f"{FORMAT_PREFIX}not an http(s) URL"}
_RECIPIENT = Address()  # one recipient of a `full` batch report's line


def canonical_message_id(message_id: str) -> str:
    """Batch ids are ULIDs (case-insensitive Crockford base32); the recipient part is digits."""
    batch, _, recipient = message_id.strip().partition(":")
    batch = batch.upper()
    return f"{batch}:{digits_msisdn(recipient)}" if recipient else batch


def sinch_message_id(batch_id: str, recipient: str) -> str:
    """Sinch has no per-message id: one message is a batch and a recipient."""
    return canonical_message_id(f"{batch_id}:{digits_msisdn(recipient)}")


def receipt_status(vendor_status: str) -> str:
    """Our status for a Sinch status; a name Sinch adds later is `unknown`, never a 400 (Sinch does not retry 4xx)."""
    return STATUSES.get(vendor_status.strip().lower(), "unknown")


def error_description(vendor_status: str, code: str | None) -> str | None:
    """Why a message did not arrive: `cancelled` for our own cancellations, else Sinch's meaning of the code."""
    if vendor_status.strip().lower() == "cancelled":
        return "cancelled"
    if receipt_status(vendor_status) in {"delivered", "pending"}:
        return None
    return CODE_DESCRIPTIONS.get(code or "")


class SinchSchema(Schema):
    """Base for Sinch payloads."""

    class Meta:
        unknown = INCLUDE  # the SDK models allow extra fields (SnakeCaseExtrasModel): Sinch adds fields without notice


class StatusLineSchema(SinchSchema):
    """One `statuses[]` entry of a batch report: a status, its code and how many recipients have it."""

    code = described(Code)(allow_none=True)  # open-ended ints (SMPP, MMS and Sinch codes), kept as text
    status = fields.String(required=True, validate=validate.Length(1, 64))
    count = described(StrictInteger)(allow_none=True, validate=validate.Range(0, 10**9))
    # `full` only; each recipient is read on its own, as one entry of the bundle
    recipients = fields.List(fields.Raw(), allow_none=True, validate=validate.Length(max=MAX_RECIPIENTS))


class BatchReportSchema(SinchSchema):
    """`delivery_report_sms` / `delivery_report_mms`: one callback for a whole batch."""

    type = fields.String(required=True)
    batch_id = fields.String(required=True, validate=validate.Length(1, 128))
    total_message_count = described(StrictInteger)(allow_none=True, validate=validate.Range(0, 10**9))
    statuses = fields.List(fields.Raw(), required=True, validate=validate.Length(min=1))  # lines read one by one
    client_reference = described(fields.String)(allow_none=True, validate=validate.Length(max=256))


class RecipientReportSchema(SinchSchema):
    """`recipient_delivery_report_sms` / `_mms`: one recipient's status change."""

    type = fields.String(required=True)
    batch_id = fields.String(required=True, validate=validate.Length(1, 128))
    recipient = Address(required=True)  # with or without the + in the fixtures; with batch_id, the message's id
    code = described(Code)(allow_none=True)
    status = fields.String(required=True, validate=validate.Length(1, 64))
    at = described(VendorTime)("iso", allow_none=True)
    operator_status_at = described(VendorTime)("iso", allow_none=True)
    client_reference = described(fields.String)(allow_none=True, validate=validate.Length(max=256))
    applied_originator = described(Address)(allow_none=True)
    encoding = described(fields.String)(allow_none=True, validate=validate.Length(max=16))
    number_of_message_parts = described(StrictInteger)(allow_none=True, validate=validate.Range(1, 255))
    operator = described(fields.String)(allow_none=True, validate=validate.Length(max=64))


class InboundSchema(SinchSchema):
    """Fields every Sinch inbound (MO) carries."""

    type = fields.String(required=True)
    id = fields.String(required=True, validate=validate.Length(1, 128))
    from_ = Address(required=True, data_key="from")  # a number, or an alphanumeric id on some routes
    to = Address(required=True)
    received_at = described(VendorTime)("iso", allow_none=True)
    sent_at = described(VendorTime)("iso", allow_none=True)
    client_reference = described(fields.String)(allow_none=True, validate=validate.Length(max=256))
    operator_id = described(fields.String)(allow_none=True, validate=validate.Length(max=16))  # MCC+MNC


class TextInboundSchema(InboundSchema):
    """`mo_text`."""

    body = fields.String(required=True)  # Sinch documents 2000 characters; a longer text is still the message


class BinaryInboundSchema(InboundSchema):
    """`mo_binary`: base64 body and hex user data header, both required."""

    body = Base64(required=True)
    udh = described(Hex)(allow_none=True)  # documented as required, but the body is the message either way


class MediaItemSchema(SinchSchema):
    """One `mo_media` attachment."""

    url = described(fields.Url)(allow_none=True, schemes={"http", "https"}, require_tld=False,
                                error_messages=URL_ERRORS)
    content_type = described(fields.String)(allow_none=True, validate=validate.Length(1, 128))
    status = described(fields.String)(allow_none=True, validate=validate.Length(1, 32))  # Uploaded / Failed
    code = described(Code)(allow_none=True)  # 0 uploaded, 1 internal failure, 2 bucket not found (fixtures: 200)

    @pre_load
    def accept_camel_case(self, data: Any, **kwargs: Any) -> Any:
        """Sinch's Java fixture spells it `contentType`; the docs and the Python/Node SDKs say `content_type`."""
        if isinstance(data, dict) and "content_type" not in data and "contentType" in data:
            data = {**data, "content_type": data["contentType"]}
        return data


class MediaBodySchema(SinchSchema):
    """The object `body` of `mo_media`."""

    subject = described(fields.String)(allow_none=True, validate=validate.Length(max=256))
    message = fields.String(allow_none=True)
    media = fields.List(fields.Nested(MediaItemSchema), allow_none=True, validate=validate.Length(max=50))


class MediaInboundSchema(InboundSchema):
    """`mo_media`: body is an object, not text."""

    body = fields.Nested(MediaBodySchema, required=True)


def _receipt(batch_id: str, line: dict, ctx: CallbackContext, raw: dict, **extra: Any) -> DeliveryReceipt:
    """A receipt for one status line of a batch, or one recipient report."""
    return DeliveryReceipt(
        vendor="sinch", status=receipt_status(line["status"]), vendor_status=line["status"],
        vendor_code=line.get("code"), error_description=error_description(line["status"], line.get("code")),
        received_at=ctx.received_at, batch_id=canonical_message_id(batch_id),  # ULIDs: one spelling
        account=ctx.account, signature_valid=ctx.signature_valid,
        raw=raw, **extra,
    )


def _line_excerpt(payload: dict, line: Any, recipient: Any) -> dict:
    """The batch report cut down to one status line (and one recipient), so N events do not carry N copies."""
    if not isinstance(line, dict):
        return {**{k: v for k, v in payload.items() if k != "statuses"}, "statuses": [line]}
    excerpt_line = {k: v for k, v in line.items() if k != "recipients"}
    if recipient is not None:
        excerpt_line["recipients"] = [recipient]
    return {**{k: v for k, v in payload.items() if k != "statuses"}, "statuses": [excerpt_line]}


def _batch_entries(payload: dict) -> Iterator[tuple[dict, tuple[Any, Any]]]:
    """A batch report's entries: each recipient of a `full` line, or the line itself; with its replay body."""
    for raw_line in payload["statuses"]:
        recipients = raw_line.get("recipients") if isinstance(raw_line, dict) else None
        if not isinstance(recipients, list) or not recipients:
            yield _line_excerpt(payload, raw_line, None), (raw_line, None)
            continue
        for raw_recipient in recipients:
            yield _line_excerpt(payload, raw_line, raw_recipient), (raw_line, raw_recipient)


def batch_report(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """A batch report: `full` fans out one receipt per recipient; `summary` gives one counted receipt per line.
    A line or recipient we cannot read is kept as a rejected entry; the others are published."""
    report = load(shared_schema(BatchReportSchema), payload)
    batch_id, client_ref = report["batch_id"], report.get("client_reference")

    def entry_receipt(entry: tuple[Any, Any]) -> list[DeliveryReceipt]:
        raw_line, raw_recipient = entry
        try:
            line = load(shared_schema(StatusLineSchema), raw_line)
            recipient = None if raw_recipient is None else _RECIPIENT.deserialize(raw_recipient, "recipients")
        except ValidationError as exc:
            raise ValidationError({"statuses": {"0": exc.messages}}) from None  # as in the entry's replay body
        if recipient is None:  # `summary` (or an empty `full` line): counts only, no per-recipient identity
            raw = ctx.raw(_line_excerpt(payload, raw_line, None), excerpt=True)
            return [_receipt(batch_id, line, ctx, raw, message_id=canonical_message_id(batch_id),
                             client_ref=client_ref, count=line.get("count"))]
        raw = ctx.raw(_line_excerpt(payload, raw_line, raw_recipient), excerpt=True)
        return [_receipt(batch_id, line, ctx, raw, message_id=sinch_message_id(batch_id, recipient),
                         recipient=digits_msisdn(recipient), client_ref=client_ref)]

    return served_entries(_batch_entries(payload), entry_receipt, ctx)  # type: ignore[return-value]


def recipient_report(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """A per-recipient report: the only shape that carries times and intermediate statuses."""
    report = load(shared_schema(RecipientReportSchema), payload)
    return [
        _receipt(
            report["batch_id"], report, ctx, ctx.raw(payload, payload.get("at")),
            message_id=sinch_message_id(report["batch_id"], report["recipient"]),
            recipient=digits_msisdn(report["recipient"]), occurred_at=report.get("at"),
            operator_done_at=report.get("operator_status_at"), client_ref=report.get("client_reference"),
            sender=report.get("applied_originator"), parts=report.get("number_of_message_parts"),
            network=report.get("operator"),
        )
    ]


def _inbound(message: dict, payload: dict, ctx: CallbackContext, **content: Any) -> InboundMessage:
    """An inbound message from the fields all MO types share plus the type's content."""
    return InboundMessage(
        vendor="sinch", message_id=message["id"], from_=digits_msisdn(message["from_"]),
        to=digits_msisdn(message["to"]), received_at=ctx.received_at, occurred_at=message.get("received_at"),
        sent_at=message.get("sent_at"), client_ref=message.get("client_reference"),
        network=message.get("operator_id"), account=ctx.account, signature_valid=ctx.signature_valid,
        raw=ctx.raw(payload, payload.get("received_at")), **content,
    )


def text_inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """`mo_text`: plain text."""
    message = load(shared_schema(TextInboundSchema), payload)
    return [_inbound(message, payload, ctx, text=message["body"])]


def binary_inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """`mo_binary`: base64 body and hex UDH, kept as sent (UDH lower-cased)."""
    message = load(shared_schema(BinaryInboundSchema), payload)
    return [_inbound(message, payload, ctx, binary=message["body"], udh=message.get("udh"))]


def _media_item(item: dict) -> dict[str, Any]:
    """One attachment in our shape, whichever spelling of content_type Sinch used."""
    return {"url": item.get("url"), "content_type": item.get("content_type"), "status": item.get("status"),
            "code": item.get("code")}


def media_inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """`mo_media`: optional subject and message text plus attachments."""
    message = load(shared_schema(MediaInboundSchema), payload)
    body = message["body"]
    media = tuple(_media_item(item) for item in body.get("media") or ())
    return [_inbound(message, payload, ctx, text=body.get("message"), subject_line=body.get("subject"), media=media)]


RECEIPT_TYPES: dict[str, Normalizer] = {
    "delivery_report_sms": batch_report,
    "delivery_report_mms": batch_report,
    "recipient_delivery_report_sms": recipient_report,
    "recipient_delivery_report_mms": recipient_report,
}
INBOUND_TYPES: dict[str, Normalizer] = {
    "mo_text": text_inbound,
    "mo_binary": binary_inbound,
    "mo_media": media_inbound,
}


def receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """Delivery reports, routed on `type`; an inbound type here is a 403 (one URL per kind)."""
    return dispatch(payload, ctx, RECEIPT_TYPES)  # type: ignore[return-value]


def inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """Inbound messages, routed on `type`; a delivery report type here is a 403."""
    return dispatch(payload, ctx, INBOUND_TYPES)  # type: ignore[return-value]




class SinchBatchSchema(Schema):
    """Sinch's batch response: one batch, many recipients, no per-message id."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=validate.Length(1, 64))
    to = fields.List(Msisdn(), required=True, validate=validate.Length(1, MAX_MESSAGES))
    from_ = Address(data_key="from")
    created_at = VendorTime("iso")
    client_reference = fields.String(allow_none=True, validate=validate.Length(max=256))



def send_response(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """Sinch's batch response: one sent message per recipient, identified by batch id and recipient."""
    batch = shared_schema(SinchBatchSchema).load(item["response"])
    return [
        sent_message(
            "sinch", sinch_message_id(batch["id"], recipient), recipient, received_at,
            dict(item, response=dict(item["response"], to=[raw_recipient])),
            batch_id=canonical_message_id(batch["id"]),
            **{"sender": batch.get("from_"), "sent_at": batch.get("created_at"),
               "client_ref": batch.get("client_reference"), **stated(wrapper)},
        )
        for recipient, raw_recipient in zip(batch["to"], item["response"]["to"], strict=True)
    ]


ADAPTER = VendorAdapter(
    name="sinch",
    docs="https://developers.sinch.com/docs/sms/api-reference/sms/tag/Webhooks/",
    auth_schemes=("sinch_hmac", "basic", "bearer", "url_token", "ip_allow_list"),  # bearer: Sinch's OAuth 2.0 option
    canonical_id=canonical_message_id,
    send_response=send_response,
    kinds={
        "delivery-receipts": KindSpec(
            receipts, schemas=(BatchReportSchema, RecipientReportSchema),
            summary="Sinch batch (summary/full) and per-recipient delivery reports, SMS and MMS",
        ),
        "inbound-messages": KindSpec(
            inbound, schemas=(TextInboundSchema, BinaryInboundSchema, MediaInboundSchema),
            summary="Sinch inbound messages: mo_text, mo_binary, mo_media",
        ),
    },
)
