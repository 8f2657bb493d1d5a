"""`POST /v1/sent-messages`: sending systems register what they sent, canonically or as a raw vendor send response.

Each sent message becomes one `sms.sent_message.v1` event, keyed `<vendor>:<vendor message id>` like the receipts
that will be reconciled against it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from core.events import Envelope, SentMessage, utc_now
from receiver.auth import equal
from receiver.errors import ConstraintViolation, PayloadTooLarge, Unauthorized, validation_error
from receiver.fields import Address, Msisdn, StrictInteger, VendorTime
from receiver.openapi import add_paths, error_responses
from receiver.parsing import parse_json, payload_format
from receiver.vendors import canonical_message_id, load_adapters
from receiver.vendors.base import shared_schema
from receiver.vendors.sending import MAX_MESSAGES, sent_message
from receiver.views import accepted, publish, read_body

log = logging.getLogger(__name__)
bp = Blueprint("sent_messages", __name__)

PATH = "/v1/sent-messages"
MAX_ITEMS = 500
ADAPTERS = load_adapters()
# vendors whose receipts we can reconcile, and send-only ones (FullSMS): a send of any other can never match
SENT_VENDORS = sorted(ADAPTERS)
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
        sorted(name for name, adapter in ADAPTERS.items() if adapter.send_response)))
    response = fields.Raw(required=True, metadata={"description": "the vendor's send response, unchanged"})
    sender = Address()
    sent_at = VendorTime("iso")
    campaign_id = fields.String(validate=validate.Length(max=128))
    client_ref = fields.String(validate=validate.Length(max=256))
    account = fields.String(validate=validate.Length(max=128))
    recipients = fields.List(Msisdn(), validate=validate.Length(1, MAX_MESSAGES),
                             metadata={"description": "FullSMS, aws_sms and Plivo: their responses name no "
                                                      "recipients (Plivo: in the order of message_uuid)"})


def canonical(item: Any, received_at: datetime) -> list[SentMessage]:
    """One sent message in our own shape."""
    message = shared_schema(SentMessageSchema).load(item)
    vendor = message.pop("vendor")
    if "part_ids" in message:  # as the vendor's receipts for each part will carry them
        message["part_ids"] = tuple(canonical_message_id(vendor, part) for part in message["part_ids"])
    return [sent_message(vendor, canonical_message_id(vendor, message.pop("message_id")), message.pop("recipient"),
                         received_at, item, **message)]


# each vendor module's send-response reader, for the vendors whose send API we read
SEND_RESPONSES = {name: adapter.send_response for name, adapter in ADAPTERS.items() if adapter.send_response}


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
