"""`POST /v1/sent-messages`: sending systems register what they sent, canonically or as a raw vendor send response.

Each sent message becomes one `sms.sent_message.v1` event, keyed `<vendor>:<vendor message id>` like the receipts
that will be reconciled against it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from core.events import Envelope, SentMessage, digits_msisdn, normalize_message_id, sinch_message_id, utc_now
from core.settings import KNOWN_VENDORS
from receiver.auth import equal
from receiver.errors import ConstraintViolation, PayloadTooLarge, Unauthorized, validation_error
from receiver.fields import Address, Msisdn, StrictInteger, VendorTime
from receiver.openapi import add_paths, error_responses
from receiver.parsing import parse_json, payload_format
from receiver.phones import country_iso2
from receiver.vendors import bandwidth as bandwidth_vendor
from receiver.vendors import infobip as infobip_vendor
from receiver.vendors.base import shared_schema
from receiver.vendors.mobivate import message_id as mobivate_message_id
from receiver.vendors.telnyx import message_id as telnyx_message_id
from receiver.views import accepted, publish, read_body

log = logging.getLogger(__name__)
bp = Blueprint("sent_messages", __name__)

PATH = "/v1/sent-messages"
MAX_ITEMS = 500
MAX_MESSAGES = 10_000
# vendors whose receipts we can reconcile, plus FullSMS (send responses only): a send of any other can never match
SENT_VENDORS = sorted(KNOWN_VENDORS | {"fullsms"})
PRICE = r"^[0-9]{1,9}(\.[0-9]{1,9})?$"
CURRENCY = r"^[A-Z]{3}$"


class SentMessageSchema(Schema):
    """Our canonical sent message."""

    class Meta:
        unknown = EXCLUDE  # the shape is ours: extra keys are dropped

    vendor = fields.String(required=True, validate=validate.OneOf(SENT_VENDORS))
    message_id = fields.String(required=True, validate=validate.Length(1, 128))
    recipient = Msisdn(required=True)
    sent_at = VendorTime("iso")
    sender = Address()
    batch_id = fields.String(validate=validate.Length(max=128))
    campaign_id = fields.String(validate=validate.Length(max=128))
    client_ref = fields.String(validate=validate.Length(max=256))
    parts = StrictInteger(validate=validate.Range(1, 255))
    account = fields.String(validate=validate.Length(max=128))
    expected_price = fields.String(validate=validate.Regexp(PRICE, error="not a decimal amount like 0.0450"),
                                   metadata={"description": "what the whole message (all parts) should cost"})
    currency = fields.String(validate=validate.Regexp(CURRENCY, error="not an ISO 4217 code like EUR"),
                             metadata={"description": "currency of expected_price (required with it)"})
    part_ids = fields.List(fields.String(validate=validate.Length(1, 128)), validate=validate.Length(1, 255),
                           metadata={"description": "the vendor's id of every part, in order, when each has one"})

    @validates_schema
    def _currency_with_price(self, data: dict[str, Any], **kwargs: Any) -> None:
        """An amount without its currency could only be guessed at."""
        if data.get("expected_price") is not None and not data.get("currency"):
            raise ValidationError("required with expected_price", "currency")


class SendResponseSchema(Schema):
    """A vendor's send response as the sending system got it, with what the response itself lacks."""

    class Meta:
        unknown = EXCLUDE

    vendor = fields.String(required=True, validate=validate.OneOf(
        ["fortytwo", "mobivate", "sinch", "fullsms", "aws_sms", "telnyx", "plivo", "infobip", "bandwidth"]))
    response = fields.Raw(required=True, metadata={"description": "the vendor's send response, unchanged"})
    sender = Address()
    sent_at = VendorTime("iso")
    campaign_id = fields.String(validate=validate.Length(max=128))
    client_ref = fields.String(validate=validate.Length(max=256))
    account = fields.String(validate=validate.Length(max=128))
    recipients = fields.List(Msisdn(), validate=validate.Length(1, MAX_MESSAGES),
                             metadata={"description": "FullSMS, aws_sms and Plivo: their responses name no "
                                                      "recipients (Plivo: in the order of message_uuid)"})


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


class SinchBatchSchema(Schema):
    """Sinch's batch response: one batch, many recipients, no per-message id."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=validate.Length(1, 64))
    to = fields.List(Msisdn(), required=True, validate=validate.Length(1, MAX_MESSAGES))
    from_ = Address(data_key="from")
    created_at = VendorTime("iso")
    client_reference = fields.String(allow_none=True, validate=validate.Length(max=256))


class FullSmsInvalidSchema(Schema):
    """FullSMS's `invalid` block: numbers it refused."""

    class Meta:
        unknown = INCLUDE

    numbers = fields.List(fields.String(), load_default=list)


class FullSmsCampaignSchema(Schema):
    """FullSMS's campaign response: a campaign id and a count, nothing per recipient."""

    class Meta:
        unknown = INCLUDE

    status = fields.String(validate=validate.Length(max=64))
    campaign_id = fields.String(required=True, validate=validate.Length(1, 128))
    total_sent = StrictInteger(validate=validate.Range(min=0))
    invalid = fields.Nested(FullSmsInvalidSchema, allow_none=True)


def _sent(vendor: str, message_id: str, recipient: str, received_at: datetime, raw: dict[str, Any],
          **values: Any) -> SentMessage:
    """A SentMessage with our receive time standing in for a missing send time."""
    digits = digits_msisdn(recipient) or recipient
    return SentMessage(
        vendor=vendor, message_id=message_id, recipient=digits, sent_at=values.pop("sent_at", None) or received_at,
        received_at=received_at, country_iso2=country_iso2(digits), raw={"format": "json", "payload": raw},
        **{name: value for name, value in values.items() if value is not None},
    )


def _from_wrapper(wrapper: dict[str, Any]) -> dict[str, Any]:
    """What the sending system stated alongside the response; it wins over what the response implies."""
    return {name: wrapper[name] for name in ("sender", "sent_at", "campaign_id", "client_ref", "account")
            if wrapper.get(name) is not None}


def canonical(item: Any, received_at: datetime) -> list[SentMessage]:
    """One sent message in our own shape."""
    message = shared_schema(SentMessageSchema).load(item)
    vendor = message.pop("vendor")
    if "part_ids" in message:  # as the vendor's receipts for each part will carry them
        message["part_ids"] = tuple(_normalized_id(vendor, part) for part in message["part_ids"])
    return [_sent(vendor, _normalized_id(vendor, message.pop("message_id")), message.pop("recipient"),
                  received_at, item, **message)]


def _normalized_id(vendor: str, message_id: str) -> str:
    """The vendor's canonical message id, as the vendor's receipts will carry it."""
    return mobivate_message_id(message_id) if vendor == "mobivate" else normalize_message_id(vendor, message_id)


class TelnyxMessageSchema(Schema):
    """Telnyx's send response `data`: one message, its recipients in `to[]` (and `cc[]` for a group MMS)."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=validate.Length(1, 128))
    to = fields.List(fields.Dict(), required=True, validate=validate.Length(1, MAX_MESSAGES))
    cc = fields.List(fields.Dict(), allow_none=True, validate=validate.Length(max=MAX_MESSAGES))
    from_ = fields.Dict(data_key="from", allow_none=True)
    sent_at = VendorTime("iso", allow_none=True)


class PlivoResponseSchema(Schema):
    """Plivo's send response: `message_uuid[]`, one per destination, and no destinations."""

    class Meta:
        unknown = INCLUDE

    message_uuid = fields.List(fields.String(validate=validate.Length(1, 64)), required=True,
                               validate=validate.Length(1, MAX_MESSAGES))


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


def fortytwo(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """Fortytwo's outer response, one sent message per destination that got a message_id."""
    response = shared_schema(FortytwoResponseSchema).load(item["response"])
    outer = {name: value for name, value in item["response"].items() if name != "results"}
    messages = [
        _sent(
            "fortytwo", normalize_message_id("fortytwo", detail["message_id"]), destination, received_at,
            dict(item, response=dict(outer, results={destination: raw_detail})),
            batch_id=response["api_job_id"],
            **{"client_ref": detail.get("custom_id") or response.get("client_job_id"), **_from_wrapper(wrapper)},
        )
        for destination, detail, raw_detail in _fortytwo_destinations(response["results"])
        if detail.get("message_id")  # a destination without message_id was not sent (invalid request)
    ]
    if not messages:
        raise ValidationError({"results": ["No destination has a message_id."]})
    return messages


def mobivate(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """Mobivate's message record (or a list of them), one sent message each."""
    records = item["response"] if isinstance(item["response"], list) else [item["response"]]
    if not records:
        raise ValidationError(["No message record in the response."])  # like a Fortytwo response that sent none
    schema = shared_schema(MobivateMessageSchema)
    messages = []
    for record in records:
        loaded = schema.load(record)
        messages.append(_sent(
            "mobivate", mobivate_message_id(loaded["id"]), loaded["recipient"], received_at,
            dict(item, response=record),
            **{"sender": loaded.get("originator"), "client_ref": loaded.get("reference"),
               "campaign_id": loaded.get("campaign_id"), **_from_wrapper(wrapper)},
        ))
    return messages


def sinch(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """Sinch's batch response: one sent message per recipient, identified by batch id and recipient."""
    batch = shared_schema(SinchBatchSchema).load(item["response"])
    return [
        _sent(
            "sinch", sinch_message_id(batch["id"], recipient), recipient, received_at,
            dict(item, response=dict(item["response"], to=[raw_recipient])),
            batch_id=normalize_message_id("sinch", batch["id"]),
            **{"sender": batch.get("from_"), "sent_at": batch.get("created_at"),
               "client_ref": batch.get("client_reference"), **_from_wrapper(wrapper)},
        )
        for recipient, raw_recipient in zip(batch["to"], item["response"]["to"], strict=True)
    ]


def fullsms(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """FullSMS's campaign response has no per-recipient ids: the caller lists recipients, we derive ids."""
    campaign = shared_schema(FullSmsCampaignSchema).load(item["response"])
    if not wrapper.get("recipients"):
        raise ValidationError({"recipients": ["Required with a FullSMS response, which names no recipients."]})
    refused = {digits_msisdn(n) for n in (campaign.get("invalid") or {}).get("numbers", [])}
    recipients = [r for r in wrapper["recipients"] if digits_msisdn(r) not in refused]  # FullSMS refused these
    if not recipients:
        raise ValidationError({"recipients": ["FullSMS refused every recipient."]})
    return [
        _sent(
            "fullsms", f"{campaign['campaign_id']}:{digits_msisdn(recipient)}", recipient, received_at,
            dict(item, recipients=[recipient]), batch_id=campaign["campaign_id"],
            **{"campaign_id": campaign["campaign_id"], **_from_wrapper(wrapper)},
        )
        for recipient in recipients
    ]


class AwsSendTextMessageSchema(Schema):
    """AWS End User Messaging SMS SendTextMessage (or SendMediaMessage) response: one MessageId."""

    class Meta:
        unknown = INCLUDE

    message_id = fields.String(required=True, data_key="MessageId", validate=validate.Length(1, 128))


def aws_sms(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """SendTextMessage sends to one number and answers only its MessageId: the caller names the recipient."""
    response = shared_schema(AwsSendTextMessageSchema).load(item["response"])
    recipients = wrapper.get("recipients") or []
    if len(recipients) != 1:
        raise ValidationError({"recipients": ["Required with an aws_sms response: the one destination number."]})
    return [_sent("aws_sms", normalize_message_id("aws_sms", response["message_id"]), recipients[0], received_at,
                  item, **_from_wrapper(wrapper))]


def telnyx(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """Telnyx's `{"data": {...}}`: one sent message per recipient, ids as its receipts will carry them."""
    response = item["response"]
    if not isinstance(response, dict) or not isinstance(response.get("data"), dict):
        raise ValidationError({"data": ["Expected Telnyx's message object under data."]})
    message = shared_schema(TelnyxMessageSchema).load(response["data"])
    recipients = [*message["to"], *(message.get("cc") or [])]
    numbers = [Msisdn().deserialize(entry.get("phone_number")) for entry in recipients]
    return [
        _sent("telnyx", telnyx_message_id(message["id"], number, len(numbers)), number, received_at, item,
              batch_id=normalize_message_id("telnyx", message["id"]),
              **{"sender": (message.get("from_") or {}).get("phone_number"), "sent_at": message.get("sent_at"),
                 **_from_wrapper(wrapper)})
        for number in numbers
    ]


def plivo(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """Plivo's response names no destinations: the caller lists them, in the order of `message_uuid`."""
    response = shared_schema(PlivoResponseSchema).load(item["response"])
    recipients = wrapper.get("recipients") or []
    if len(recipients) != len(response["message_uuid"]):
        raise ValidationError({"recipients": ["Required with a Plivo response: one per message_uuid, in its order."]})
    return [
        _sent("plivo", normalize_message_id("plivo", uuid), recipient, received_at,
              dict(item, response=dict(item["response"], message_uuid=[uuid]), recipients=[recipient]),
              **_from_wrapper(wrapper))
        for uuid, recipient in zip(response["message_uuid"], recipients, strict=True)
    ]


def vendor_response(vendor: str, parse: Callable[[Any], list[tuple[str, str, dict[str, Any], dict[str, Any]]]]):
    """A send-response reader from a vendor module's `sent(response)`: (id, recipient, values, cut response) each."""

    def read(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
        return [
            _sent(vendor, _normalized_id(vendor, message_id), recipient, received_at, dict(item, response=cut),
                  **{**{k: v for k, v in values.items() if v is not None}, **_from_wrapper(wrapper)})
            for message_id, recipient, values, cut in parse(item["response"])
        ]

    return read


SEND_RESPONSES: dict[str, Callable[[dict[str, Any], dict[str, Any], datetime], list[SentMessage]]] = {
    "fortytwo": fortytwo, "mobivate": mobivate, "sinch": sinch, "fullsms": fullsms, "aws_sms": aws_sms,
    "telnyx": telnyx, "plivo": plivo,
    "infobip": vendor_response("infobip", infobip_vendor.sent),
    "bandwidth": vendor_response("bandwidth", bandwidth_vendor.sent),
}


def send_response(item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """A wrapped vendor send response; response errors are reported under `response`."""
    wrapper = shared_schema(SendResponseSchema).load(item)
    if not isinstance(wrapper["response"], dict | list):
        raise ValidationError({"response": ["Expected the vendor's response object."]})
    try:
        return SEND_RESPONSES[wrapper["vendor"]](wrapper, item, received_at)
    except ValidationError as exc:
        if isinstance(exc.messages, dict) and "recipients" in exc.messages:
            raise
        raise ValidationError({"response": exc.messages}) from None


def sent_messages(document: Any, received_at: datetime) -> list[SentMessage]:
    """Every sent message of a request body (an object or a list), errors reported by index for lists."""
    items = document if isinstance(document, list) else [document]
    if not items:
        raise ValidationError({"_schema": ["Expected at least one item."]})
    if len(items) > MAX_ITEMS:
        raise ValidationError({"_schema": [f"At most {MAX_ITEMS} items per request."]})
    messages, errors = [], {}
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValidationError({"_schema": ["Invalid input type: expected an object."]})
            messages.extend(send_response(item, received_at) if "response" in item else canonical(item, received_at))
        except ValidationError as exc:
            errors[str(index)] = exc.messages
    if errors:
        raise ValidationError(errors if isinstance(document, list) else errors["0"])
    if len(messages) > MAX_MESSAGES:
        raise ConstraintViolation(f"At most {MAX_MESSAGES} sent messages per request.")
    return messages


@bp.before_request
def require_api_token() -> None:
    """When an API token is configured, sending systems must present it as a bearer token."""
    token = current_app.extensions["smshooks.settings"].api_token
    if not token:
        return
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not equal(credentials.strip(), token):
        raise Unauthorized("A valid bearer token is required.", headers={"WWW-Authenticate": "Bearer"})


@bp.post(PATH)
def register_sent_messages() -> Response:
    """Validate, normalize and publish the sent messages; 200 only once Kafka acknowledged every event."""
    settings = current_app.extensions["smshooks.settings"]
    payload_format(request.method, request.content_type, ("json",))  # 415 for anything but JSON
    body, too_large = read_body(request, settings.max_body_bytes)
    if too_large:
        raise PayloadTooLarge(f"The body is larger than {settings.max_body_bytes} bytes.")
    document = parse_json(body, request.content_type)
    try:
        messages = sent_messages(document, utc_now())
    except ValidationError as exc:
        raise validation_error(exc.messages) from None
    envelopes = [Envelope.wrap(message, g.request_id) for message in messages]
    publish(envelopes)
    return accepted(g.request_id, envelopes)


def document_route(spec) -> None:
    """The OpenAPI entry of this route."""
    spec.components.schema("SentMessage", schema=SentMessageSchema)
    spec.components.schema("SendResponse", schema=SendResponseSchema)
    if "bearer" not in spec.components.security_schemes:
        spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    one = {"oneOf": [{"$ref": "#/components/schemas/SentMessage"}, {"$ref": "#/components/schemas/SendResponse"}]}
    spec.path(path=PATH, operations={"post": {
        "summary": "Register sent messages: canonical, or a raw Fortytwo/Mobivate/Sinch/FullSMS/AWS/Telnyx/Plivo/"
                   "Infobip/Bandwidth send response",
        "tags": ["sent-messages"],
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"oneOf": [one, {"type": "array", "items": one, "maxItems": MAX_ITEMS}]}}}},
        "responses": {
            "200": {"description": "Accepted: every event acknowledged by Kafka",
                    "content": {"application/json": {"schema": "Accepted"}}},
            **error_responses("400", "401", "413", "415", "500", "503"),
        },
    }})


bp.record_once(lambda state: add_paths(state.app, document_route))
