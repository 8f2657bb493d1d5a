"""Fortytwo: REST API receipt bundles (JSON POST, fanned out) and legacy HTTP API receipts (GET, answered `OK`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from core.events import DeliveryReceipt, SentMessage, digits_msisdn
from receiver.errors import UnknownCallbackType
from receiver.fields import Address, Code, Msisdn, VendorTime, described
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, served_entries, shared_schema
from receiver.vendors.sending import sent_message, stated

VENDOR = "fortytwo"
MAX_BUNDLE = 1000
SMS_TYPE = "SMS"

# SMPP v3.4 `stat` values, which the REST API says its `status` matches.
SMPP_STATUSES = {
    "DELIVRD": "delivered",
    "ACCEPTD": "pending",
    "ENROUTE": "pending",
    "UNDELIV": "failed",
    "DELETED": "failed",
    "EXPIRED": "expired",
    "REJECTD": "rejected",
    "UNKNOWN": "unknown",
}
# What the HTTP API's failure statuses mean (its callback documentation's status list); the status is the code.
HTTP_API_FAILURES = {
    "30": "no credit",
    "41": "malformed message",
    "42": "internal error",
    "44": "expired",
    "50": "general delivery problem",
}
# The HTTP API's numeric statuses.
HTTP_API_STATUSES = {
    10: "pending",  # delivered to gateway
    11: "pending",  # delivery delayed
    21: "pending",  # delivered to network: not yet to the phone
    22: "delivered",  # delivered to phone
    30: "rejected",  # no credit
    41: "rejected",  # malformed message
    42: "failed",  # internal error
    44: "expired",  # expired
    50: "failed",  # general delivery problem
}


def canonical_message_id(message_id: str) -> str:
    """Decimal ids; leading zeros are dropped by some exports."""
    text = message_id.strip()
    return (text.lstrip("0") or "0") if text.isdigit() else text.lower()


class CallbackInfoSchema(Schema):
    """One SMS entry of a REST callback's `data[]`: type, message_id and status make the receipt; the rest (as in
    the 2FA API's example) is only described, so a value that does not parse is a parse warning, not a loss."""

    class Meta:
        unknown = INCLUDE  # the full SMS field list is unpublished: keep whatever else arrives (viber_from, ...)

    type = fields.String(required=True, validate=validate.Length(1, 32))
    message_id = fields.String(required=True, validate=validate.Length(1, 128))
    status = fields.String(required=True, validate=validate.Length(1, 64))
    timestamp = described(VendorTime)("epoch", allow_none=True)  # epoch milliseconds
    micro_timestamp = described(VendorTime)("epoch", allow_none=True)  # epoch microseconds, the same instant
    to = described(Msisdn)(allow_none=True)
    sms_from = described(Address)(allow_none=True)  # often alphanumeric ("Fortytwo" in the 2FA example)
    custom_id = described(fields.String)(allow_none=True, validate=validate.Length(max=256))
    client_message_id = described(fields.String)(allow_none=True, validate=validate.Length(max=256))
    error_code = described(Code)(allow_none=True)


class BundleSchema(Schema):
    """A REST API callback: the job ids and one or more entries in `data`, each read on its own."""

    class Meta:
        unknown = INCLUDE

    api_job_id = described(fields.String)(allow_none=True, validate=validate.Length(1, 128))
    client_job_id = described(fields.String)(allow_none=True, validate=validate.Length(max=256))
    data = fields.List(fields.Raw(), required=True, validate=validate.Length(1, MAX_BUNDLE))


class HttpApiReceiptSchema(Schema):
    """A legacy HTTP API callback: query parameters, all text; smsid and status make the receipt."""

    class Meta:
        unknown = INCLUDE

    smsid = fields.String(required=True, validate=validate.Length(1, 128))
    status = fields.String(required=True, validate=validate.Length(1, 64))
    timestamp = described(VendorTime)("epoch")  # UNIX seconds
    to = described(Msisdn)()
    from_ = described(Address)(data_key="from")  # a sender id may be alphanumeric
    customid = described(fields.String)(validate=validate.Length(max=256))


def smpp_status(stat: str) -> str:
    """Our status for an SMPP `stat` value; anything unlisted is unknown."""
    return SMPP_STATUSES.get(stat.strip().upper(), "unknown")


def http_api_status(code: str) -> str:
    """Our status for an HTTP API numeric status; anything unlisted (or not a number) is unknown, never a 400."""
    text = code.strip()
    return HTTP_API_STATUSES.get(int(text), "unknown") if text.isdigit() and len(text) < 6 else "unknown"


def _vendor_time(info: dict[str, Any]) -> Any:
    """The raw time of a REST receipt, preferring the more precise micro_timestamp."""
    return info.get("micro_timestamp", info.get("timestamp"))


def _entry_receipt(item: Any, bundle: dict[str, Any], outer: dict[str, Any], ctx: CallbackContext) -> list:
    """The receipt of one `data[]` entry; another channel's entry (VIBER, WHATSAPP, the 2FA API's INTERNAL) is
    refused alone, since only SMS receipts are ours."""
    channel = item.get("type") if isinstance(item, dict) else None
    if isinstance(channel, str) and channel.strip().upper() != SMS_TYPE:
        raise UnknownCallbackType(f"Callback type {channel[:32]!r} is not accepted on delivery-receipts.")
    try:
        if not isinstance(item, dict):
            raise ValidationError({"_schema": ["Invalid input type: expected an object."]})
        info = shared_schema(CallbackInfoSchema).load(item)
    except ValidationError as exc:
        raise ValidationError({"data": {"0": exc.messages}}) from None  # as in the entry's own replay body
    return [
        DeliveryReceipt(
            vendor=VENDOR, message_id=canonical_message_id(info["message_id"]),
            status=smpp_status(info["status"]), vendor_status=info["status"], received_at=ctx.received_at,
            occurred_at=info.get("micro_timestamp") or info.get("timestamp"), batch_id=bundle.get("api_job_id"),
            # the per-destination custom_id is echoed back; the job id is the fallback reference
            client_ref=info.get("custom_id") or info.get("client_message_id") or bundle.get("client_job_id"),
            recipient=digits_msisdn(info.get("to")), sender=info.get("sms_from"),
            vendor_code=info.get("error_code"), account=ctx.account, signature_valid=ctx.signature_valid,
            raw=ctx.raw(item, _vendor_time(item), bundle=outer),
        )
    ]


def rest_receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """A REST callback bundle, fanned out to one receipt per `data` entry; an entry we do not serve goes to the
    rejected topic on its own and the others are published."""
    if not isinstance(payload, dict):
        raise ValidationError({"_schema": ["Invalid input type: expected an object."]})
    bundle = shared_schema(BundleSchema).load(payload)
    outer = {name: payload[name] for name in ("api_job_id", "client_job_id") if name in payload}
    entries = (({**outer, "data": [item]}, item) for item in payload["data"])
    return served_entries(entries, lambda item: _entry_receipt(item, bundle, outer, ctx), ctx)  # type: ignore


def http_api_receipts(payload: dict[str, str], ctx: CallbackContext) -> list[DeliveryReceipt]:
    """A legacy HTTP API callback (one receipt in the query string)."""
    receipt = shared_schema(HttpApiReceiptSchema).load(payload)
    return [
        DeliveryReceipt(
            vendor=VENDOR, message_id=canonical_message_id(receipt["smsid"]),
            status=http_api_status(receipt["status"]), vendor_status=receipt["status"],
            received_at=ctx.received_at, occurred_at=receipt.get("timestamp"), client_ref=receipt.get("customid"),
            recipient=digits_msisdn(receipt.get("to")), sender=receipt.get("from_"), account=ctx.account,
            error_description=HTTP_API_FAILURES.get(receipt["status"].strip()),
            signature_valid=ctx.signature_valid, raw=ctx.raw(payload, payload.get("timestamp")),
        )
    ]


def receipts(payload: Any, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """Two products share the route: GET is the HTTP API, a JSON POST the REST API."""
    if ctx.payload_format == "query":
        return http_api_receipts(payload, ctx)
    return rest_receipts(payload, ctx)


def ack(envelopes: list, ctx: CallbackContext) -> tuple[str, str] | None:
    """The HTTP API retries unless the body is exactly `OK`; the REST API gets our JSON answer."""
    return ("OK", "text/plain") if ctx.payload_format == "query" else None




class FortytwoResponseSchema(Schema):
    """Fortytwo's outer response: `results` holds objects keyed by destination MSISDN."""

    class Meta:
        unknown = INCLUDE

    api_job_id = fields.String(required=True, validate=validate.Length(1, 128))
    client_job_id = fields.String(allow_none=True, validate=validate.Length(max=256))
    results = fields.Raw(required=True)  # one object or a list of them; checked by _fortytwo_destinations



class FortytwoResultSchema(Schema):
    """One destination's RESULT_DETAIL."""

    class Meta:
        unknown = INCLUDE

    message_id = fields.String(allow_none=True, validate=validate.Length(1, 128))
    custom_id = fields.String(allow_none=True, validate=validate.Length(max=256))



def _fortytwo_destinations(results: Any) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(destination, loaded detail, raw detail) for each destination of `results` (an object or a list of them)."""
    objects = results if isinstance(results, list) else [results]
    destinations, errors = [], {}
    for index, result in enumerate(objects):
        if not isinstance(result, dict):
            errors[str(index)] = ["Expected an object keyed by destination MSISDN."]
            continue
        for destination, detail in result.items():
            try:
                number = Msisdn().deserialize(destination)
                destinations.append((number, shared_schema(FortytwoResultSchema).load(detail), detail))
            except ValidationError as exc:
                errors[destination[:32]] = exc.messages
    if errors:
        raise ValidationError({"results": errors})
    return destinations



def send_response(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """Fortytwo's outer response, one sent message per destination that got a message_id."""
    response = shared_schema(FortytwoResponseSchema).load(item["response"])
    outer = {name: value for name, value in item["response"].items() if name != "results"}
    messages = [
        sent_message(
            "fortytwo", canonical_message_id(detail["message_id"]), destination, received_at,
            dict(item, response=dict(outer, results={destination: raw_detail})),
            batch_id=response["api_job_id"],
            **{"client_ref": detail.get("custom_id") or response.get("client_job_id"), **stated(wrapper)},
        )
        for destination, detail, raw_detail in _fortytwo_destinations(response["results"])
        if detail.get("message_id")  # a destination without message_id was not sent (invalid request)
    ]
    if not messages:
        raise ValidationError({"results": ["No destination has a message_id."]})
    return messages


ADAPTER = VendorAdapter(
    name=VENDOR,
    docs="https://www.fortytwo.com/apis/sms-gateway-rest-api/callbacks/",
    auth_schemes=("ip_allow_list", "url_token"),
    canonical_id=canonical_message_id,
    send_response=send_response,
    kinds={
        "delivery-receipts": KindSpec(
            receipts, methods=("POST", "GET"), formats=("json",), schemas=(BundleSchema, HttpApiReceiptSchema),
            ack=ack, summary="Fortytwo delivery receipts: REST JSON bundles (POST) or HTTP API (GET, answered OK)",
        ),
    },
)
