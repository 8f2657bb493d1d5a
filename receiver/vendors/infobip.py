"""infobip: SMS delivery reports and inbound messages pushed as JSON `{"results": [...]}` batches, fanned out.

Retries: Infobip resends a push that got no 2xx answer (non-2xx or no answer); its schedule is not published in the
material we checked, so a 4xx is only answered for what can never become an event. Credentials: a per-message
notifyUrl carries none (a URL token is the way), a subscription may carry HTTP Basic; Infobip's HMAC option has no
published signing format, so it is not offered.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from core.events import DeliveryReceipt, InboundMessage, digits_msisdn
from receiver.fields import MESSAGE_TEXT, Address, Code, Msisdn, StrictInteger, VendorTime, described
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, as_given, served_entries, shared_schema
from receiver.vendors.sending import entry_reader

VENDOR = "infobip"
MAX_RESULTS = 1000  # Infobip sends 100 reports a push by default (maxBucketSize raises it)

# Infobip's status groups (status.groupName), mapped whole; status.name keeps the detail as vendor_code.
STATUSES = {
    "ACCEPTED": "pending",  # groupId 0: accepted by Infobip, not yet sent (send responses carry it)
    "PENDING": "pending",  # groupId 1: sent on, waiting for the operator's report (PENDING_ENROUTE, ...)
    "UNDELIVERABLE": "failed",  # groupId 2: the operator or handset refused it (UNDELIVERABLE_NOT_DELIVERED, ...)
    # groupId 3: DELIVERED_TO_HANDSET, or DELIVERED_TO_OPERATOR where the operator sends no handset report;
    # both end the message's life at Infobip, so both are delivered; vendor_code tells them apart
    "DELIVERED": "delivered",
    "EXPIRED": "expired",  # groupId 4: no final report within the validity period (EXPIRED_DLR_UNKNOWN too)
    "REJECTED": "rejected",  # groupId 5: refused before sending (REJECTED_DESTINATION, REJECTED_NOT_ENOUGH_CREDITS)
}
# A report without groupName names its group by id only (the same groups as above).
GROUP_IDS = {0: "ACCEPTED", 1: "PENDING", 2: "UNDELIVERABLE", 3: "DELIVERED", 4: "EXPIRED", 5: "REJECTED"}
NO_ERROR = {"0", "NO_ERROR"}  # `error` is present on every report; id 0 / NO_ERROR means there was none


def receipt_status(group_name: str) -> str:
    """Our status for an Infobip status group; a group Infobip adds later is `unknown`, never a 400."""
    return STATUSES.get(group_name.strip().upper(), "unknown")


class InfobipSchema(Schema):
    """Base for Infobip objects."""

    class Meta:
        unknown = INCLUDE  # the SDK models grow fields between API versions (platform, campaignReferenceId, ...)


class StatusSchema(InfobipSchema):
    """`status`: the group we map, and the detailed name and description we keep."""

    groupId = described(StrictInteger)(allow_none=True, validate=validate.Range(0, 10**6))
    groupName = described(fields.String)(allow_none=True, validate=validate.Length(1, 64))  # else by groupId
    id = described(Code)(allow_none=True)
    name = described(fields.String)(allow_none=True, validate=validate.Length(max=128))
    description = described(fields.String)(allow_none=True, validate=validate.Length(max=1000))


class InfobipErrorSchema(InfobipSchema):
    """`error`: why a message failed; id 0 (NO_ERROR) on reports without one."""

    groupId = described(StrictInteger)(allow_none=True, validate=validate.Range(0, 10**6))
    groupName = described(fields.String)(allow_none=True, validate=validate.Length(max=64))
    id = described(Code)(allow_none=True)
    name = described(fields.String)(allow_none=True, validate=validate.Length(max=128))
    description = described(fields.String)(allow_none=True, validate=validate.Length(max=1000))
    permanent = described(fields.Boolean)(allow_none=True)


class PriceSchema(InfobipSchema):
    """`price`: what one message cost."""

    pricePerMessage = described(fields.Decimal)(allow_none=True, allow_nan=False)
    currency = described(fields.String)(allow_none=True, validate=validate.Length(max=8))


class DeliveryReportSchema(InfobipSchema):
    """One `results[]` report. Essential: messageId and a status group (by name or id)."""

    messageId = fields.String(required=True, validate=validate.Length(1, 128))
    status = fields.Nested(StatusSchema, required=True)
    error = described(fields.Nested)(InfobipErrorSchema, allow_none=True)
    price = described(fields.Nested)(PriceSchema, allow_none=True)
    to = described(Address)(allow_none=True)
    sender = described(Address)(allow_none=True)  # SMS API v3; alphanumeric sender ids are common
    from_ = described(Address)(allow_none=True, data_key="from")  # the same in older reports
    bulkId = described(fields.String)(allow_none=True, validate=validate.Length(max=128))
    sentAt = described(VendorTime)("iso", allow_none=True)  # yyyy-MM-dd'T'HH:mm:ss.SSS+0000
    doneAt = described(VendorTime)("iso", allow_none=True)
    smsCount = described(StrictInteger)(allow_none=True, validate=validate.Range(0, 255))  # SMS API v2
    messageCount = described(StrictInteger)(allow_none=True, validate=validate.Range(0, 255))  # SMS API v3
    mccMnc = described(fields.String)(allow_none=True, validate=validate.Length(max=16))
    callbackData = described(fields.String)(allow_none=True, validate=validate.Length(max=4000))


class InboundSchema(InfobipSchema):
    """One inbound `results[]` message. Essential: messageId, from and text."""

    messageId = fields.String(required=True, validate=validate.Length(1, 128))
    from_ = Address(required=True, data_key="from")
    to = described(Address)(allow_none=True)
    text = fields.String(required=True, validate=validate.Length(max=MESSAGE_TEXT))
    cleanText = described(fields.String)(allow_none=True, validate=validate.Length(max=MESSAGE_TEXT))
    keyword = described(fields.String)(allow_none=True, validate=validate.Length(max=160))
    receivedAt = described(VendorTime)("iso", allow_none=True)
    smsCount = described(StrictInteger)(allow_none=True, validate=validate.Range(0, 255))
    price = described(fields.Nested)(PriceSchema, allow_none=True)
    callbackData = described(fields.String)(allow_none=True, validate=validate.Length(max=4000))


class ResultsSchema(InfobipSchema):
    """A push: `results[]`, each entry read on its own (inbound pushes add messageCount/pendingMessageCount)."""

    results = fields.List(fields.Raw(), required=True, validate=validate.Length(1, MAX_RESULTS))
    messageCount = described(StrictInteger)(allow_none=True)
    pendingMessageCount = described(StrictInteger)(allow_none=True)


class DeliveryReportsSchema(ResultsSchema):
    """A delivery report push as documented (OpenAPI); loading reads each result on its own instead."""

    results = fields.List(fields.Nested(DeliveryReportSchema), required=True, validate=validate.Length(1, MAX_RESULTS))


class InboundMessagesSchema(ResultsSchema):
    """An inbound message push as documented (OpenAPI); loading reads each result on its own instead."""

    results = fields.List(fields.Nested(InboundSchema), required=True, validate=validate.Length(1, MAX_RESULTS))


def _group(status: dict) -> str:
    """The status group's name, from groupName or else from groupId; a status naming neither is no receipt."""
    if status.get("groupName"):
        return status["groupName"]
    if status.get("groupId") in GROUP_IDS:
        return GROUP_IDS[status["groupId"]]
    if status.get("groupId") is not None:
        return str(status["groupId"])  # a group Infobip adds later: unknown, with its id kept
    raise ValidationError({"status": {"groupName": ["Missing data for required field."]}})


def error_description(status: dict, error: dict | None) -> str | None:
    """Infobip's error (name: description) when there was one, else the status description of a message that did
    not arrive; nothing for pending and delivered messages without an error."""
    if error and str(error.get("id") or "0") not in NO_ERROR and (error.get("name") or "") not in NO_ERROR:
        text = ": ".join(part for part in (error.get("name"), error.get("description")) if part)
        return text or str(error.get("id"))
    if receipt_status(_group(status)) in {"failed", "expired", "rejected"}:
        return status.get("description") or status.get("name")
    return None


def _text(value: Any) -> str | None:
    """A Decimal price as the text our receipts carry."""
    return None if value is None else str(value)


def _load_entry(schema: type[Schema], entry: Any) -> dict:
    """One entry, its errors reported as in its own replay body (`results.0`)."""
    try:
        if not isinstance(entry, dict):
            raise ValidationError({"_schema": ["Invalid input type: expected an object."]})
        return shared_schema(schema).load(entry)
    except ValidationError as exc:
        raise ValidationError({"results": {"0": exc.messages}}) from None


def _entries(payload: dict) -> Any:
    """(replay body, entry) for each result: the push cut down to that one entry."""
    outer = {name: value for name, value in payload.items() if name != "results"}
    return (({**outer, "results": [entry]}, entry) for entry in payload["results"])


def _load_push(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise ValidationError({"_schema": ["Invalid input type: expected an object with `results`."]})
    return shared_schema(ResultsSchema).load(payload)


def receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """A push of delivery reports, one receipt per result; a result we cannot read is a rejected entry."""
    _load_push(payload)

    def receipt(entry: Any) -> list[DeliveryReceipt]:
        report = _load_entry(DeliveryReportSchema, entry)
        try:
            group = _group(report["status"])
        except ValidationError as exc:
            raise ValidationError({"results": {"0": exc.messages}}) from None
        status, error, price = report["status"], report.get("error"), report.get("price") or {}
        return [
            DeliveryReceipt(
                vendor=VENDOR, message_id=report["messageId"].strip(), status=receipt_status(group),
                vendor_status=group, vendor_code=status.get("name") or status.get("id"),
                error_description=error_description(status, error), received_at=ctx.received_at,
                occurred_at=report.get("doneAt"), batch_id=report.get("bulkId"),
                client_ref=report.get("callbackData"), recipient=digits_msisdn(report.get("to")),
                sender=report.get("sender") or report.get("from_"),
                parts=report.get("messageCount") if report.get("messageCount") is not None else report.get("smsCount"),
                price=_text(price.get("pricePerMessage")), currency=price.get("currency"), network=report.get("mccMnc"),
                account=ctx.account, signature_valid=ctx.signature_valid,
                raw=ctx.raw(entry, entry.get("doneAt")),
            )
        ]

    return served_entries(_entries(payload), receipt, ctx)  # type: ignore[return-value]


def inbound(payload: Any, ctx: CallbackContext) -> list[InboundMessage]:
    """A push of inbound messages, one event per result; keyword and cleanText are Infobip's parse of the text."""
    _load_push(payload)

    def message(entry: Any) -> list[InboundMessage]:
        mo = _load_entry(InboundSchema, entry)
        return [
            InboundMessage(
                vendor=VENDOR, message_id=mo["messageId"].strip(), from_=digits_msisdn(mo["from_"]) or mo["from_"],
                to=digits_msisdn(mo.get("to")) or "", received_at=ctx.received_at, occurred_at=mo.get("receivedAt"),
                text=mo["text"], keyword=mo.get("keyword") or None, client_ref=mo.get("callbackData"),
                account=ctx.account, signature_valid=ctx.signature_valid, raw=ctx.raw(entry, entry.get("receivedAt")),
            )
        ]

    return served_entries(_entries(payload), message, ctx)  # type: ignore[return-value]




class SendResultSchema(InfobipSchema):
    """One `messages[]` entry of a send response: SMS API v3 names the recipient `destination`, v2 `to`."""

    messageId = fields.String(required=True, validate=validate.Length(1, 128))
    destination = Msisdn(allow_none=True)
    to = Msisdn(allow_none=True)
    status = fields.Raw(allow_none=True)


class SendResponseSchema(InfobipSchema):
    """A send response: `bulkId` for several messages, one `messages[]` entry per message."""

    bulkId = fields.String(allow_none=True, validate=validate.Length(max=128))
    messages = fields.List(fields.Nested(SendResultSchema), required=True, validate=validate.Length(1, 10_000))


def sent(response: Any) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(message id, recipient, values, the response cut down to that message) per message of a send response."""
    loaded = shared_schema(SendResponseSchema).load(response)
    results = []
    for index, (message, raw) in enumerate(zip(loaded["messages"], response["messages"], strict=True)):
        recipient = message.get("destination") or message.get("to")
        if not recipient:
            raise ValidationError({"messages": {str(index): {"destination": ["Missing data for required field."]}}})
        cut = dict(response, messages=[raw])
        results.append((message["messageId"].strip(), recipient, {"batch_id": loaded.get("bulkId")}, cut))
    return results


ADAPTER = VendorAdapter(
    name=VENDOR,
    docs="https://www.infobip.com/docs/api/channels/sms/sms-messaging/logs-and-status-reports/receive-outbound-sms-message-report",
    auth_schemes=("basic", "url_token", "ip_allow_list"),  # Basic on subscriptions; its HMAC format is unpublished
    send_response=entry_reader(VENDOR, as_given, sent),
    kinds={
        "delivery-receipts": KindSpec(receipts, schemas=(DeliveryReportsSchema,),
                                      summary="Infobip SMS delivery reports (results[], fanned out)"),
        "inbound-messages": KindSpec(inbound, schemas=(InboundMessagesSchema,),
                                     summary="Infobip inbound SMS (results[], fanned out)"),
    },
)
