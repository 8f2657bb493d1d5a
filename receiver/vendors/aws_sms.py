"""aws_sms: AWS End User Messaging SMS (formerly Pinpoint SMS) events and two-way SMS, delivered by an Amazon SNS
HTTPS subscription.

SNS posts a JSON envelope (sent as `text/plain; charset=UTF-8` unless the delivery policy sets another content
type) whose `Type` is `SubscriptionConfirmation`, `Notification` or `UnsubscribeConfirmation`; a Notification's
`Message` is a JSON string: an SMS event (delivery receipt) or a two-way SMS inbound message. The envelope is
signed (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) with the certificate at `SigningCertURL`; the
`sns_signature` auth scheme (receiver/auth.py) verifies it with the helpers below.

Retry rules (SNS delivery policy for HTTP/S): a 5xx or a connection failure is retried (by default 3 times, 20 s
apart; a custom policy can retry for at most 3,600 s in all); a 4xx is never retried (the message goes to the
subscription's dead-letter queue if one is set). So a message is refused (4xx) only when it can never become an
event, and anything transient (Kafka, fetching a certificate) is a 503.

Subscription confirmation: once the signature is verified (and the TopicArn is one of `account_ids`, when they are
configured), we confirm by GETting `SubscribeURL`, whose host must match the scheme's host pattern. Without a
verified signature we do not confirm: the confirmation is refused (403) and kept on `sms.callbacks.rejected`, where
an operator finds the SubscribeURL to open by hand. HTTP GETs go through `SNS_HTTP`, which tests replace.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from core.events import DeliveryReceipt, InboundMessage, SentMessage, digits_msisdn
from receiver.errors import Forbidden, InvalidJson, ServiceUnavailable, Unauthorized, UnknownCallbackType
from receiver.fields import MESSAGE_TEXT, Address, StrictInteger, VendorTime, described
from receiver.parsing import parse_json
from receiver.vendors.base import CallbackContext, KindSpec, VendorAdapter, load, shared_schema
from receiver.vendors.sending import sent_message, stated

log = logging.getLogger(__name__)
VENDOR = "aws_sms"
# SNS's own hosts: sns.<region>.amazonaws.com, and .amazonaws.com.cn in the China regions
DEFAULT_HOST_PATTERN = r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$"
# SNS retries an HTTP/S delivery for at most 3,600 s (a hard limit), with the same signed Timestamp; plus clock skew
SNS_MAX_AGE_SECONDS = 3600 + 300
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
# the signed fields, in the order SNS signs them (alphabetical); Subject only when the message has one
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SNS_TYPES = {"Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"}

# What the event's suffix means (TEXT_ for SMS, MEDIA_ for MMS), from the event-types page of the user guide.
EVENT_STATUSES = {
    "DELIVERED": "delivered",  # the handset's delivery receipt
    # TEXT_SUCCESSFUL: accepted by the recipient's carrier; "used interchangeably" with DELIVERED in some countries,
    # so it is delivered when final and pending while AWS still waits for a handset receipt (isFinal false)
    "SUCCESSFUL": "delivered",
    "QUEUED": "pending",  # queued for delivery, not sent yet
    "PENDING": "pending",  # being delivered
    "BLOCKED": "rejected",  # the recipient's device or carrier blocks messages to this recipient
    "CARRIER_BLOCKED": "rejected",  # the carrier blocked it as malicious or abusive
    "SPAM": "rejected",  # the carrier blocked it as unsolicited commercial content
    "PROTECT_BLOCKED": "rejected",  # blocked by the account's own Protect configuration
    "INVALID": "rejected",  # the destination number is not valid
    "INVALID_MESSAGE": "rejected",  # the message body is not valid and cannot be sent
    "TTL_EXPIRED": "expired",  # not delivered within the TTL given at send time
    "CARRIER_UNREACHABLE": "failed",  # a (temporary) error on the carrier's network; the event is still final
    "UNREACHABLE": "failed",  # the device is off or not on the network
    "UNKNOWN": "unknown",  # not delivered for a reason no other type covers; AWS sends it after 72 h without news
}
MESSAGE_EVENT_PREFIXES = ("TEXT_", "MEDIA_")  # VOICE_* and registration events are not messages we reconcile


def canonical_message_id(message_id: str) -> str:
    """AWS message ids are UUIDs, lower case in events and send responses alike."""
    return message_id.strip().lower()


class FetchFailed(Exception):
    """A GET to SNS failed; `transient` when a retry may succeed (network, 5xx), not for a 4xx (no such URL)."""

    def __init__(self, text: str, transient: bool):
        super().__init__(text)
        self.transient = transient


Fetch = Callable[[str], bytes]


def fetch_https(url: str, timeout: float = 5.0) -> bytes:
    """GET a URL over HTTPS with certificate checks; the body, or FetchFailed."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - https only, checked by callers
            return response.read(65536)
    except urllib.error.HTTPError as exc:
        raise FetchFailed(f"HTTP {exc.code}", transient=exc.code >= 500 or exc.code == 429) from None
    except (urllib.error.URLError, OSError) as exc:
        raise FetchFailed(type(exc).__name__, transient=True) from None


class SnsHttp:
    """Our only outgoing calls, to SNS's own hosts: signing certificates (cached by URL) and confirmations."""

    def __init__(self, fetch: Fetch = fetch_https, cache_size: int = 32):
        self.fetch, self.cache_size = fetch, cache_size
        self.certificates: OrderedDict[str, x509.Certificate] = OrderedDict()

    def certificate(self, url: str) -> x509.Certificate:
        """The signing certificate at `url`, fetched once and kept (SNS rotates them rarely, under a new name)."""
        if url in self.certificates:
            self.certificates.move_to_end(url)
            return self.certificates[url]
        pem = self.fetch(url)
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise FetchFailed("not a PEM certificate", transient=False) from None
        self.certificates[url] = certificate
        if len(self.certificates) > self.cache_size:
            self.certificates.popitem(last=False)
        return certificate

    def confirm(self, subscribe_url: str) -> None:
        """Confirm a subscription: SNS's ConfirmSubscription answers the GET of the SubscribeURL."""
        self.fetch(subscribe_url)


SNS_HTTP = SnsHttp()  # replaced in tests: the network is never reached there


def sns_url_allowed(url: str, host_pattern: str, path_suffix: str = "") -> bool:
    """An https URL on an SNS host (no credentials, no odd port), its path ending as required."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (parts.scheme == "https" and not parts.username and port in (None, 443)
            and re.fullmatch(host_pattern, parts.hostname or "") is not None
            and parts.path.endswith(path_suffix))


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical text SNS signs: `name\\nvalue\\n` for each signed field of the message's Type, in order."""
    names = NOTIFICATION_FIELDS if message.get("Type") == "Notification" else CONFIRMATION_FIELDS
    return "".join(f"{name}\n{message[name]}\n" for name in names
                   if not (name == "Subject" and message.get(name) is None)).encode()


def _signed_at(message: dict[str, Any]) -> float:
    """The message's signed Timestamp (ISO 8601 UTC) as epoch seconds."""
    try:
        return datetime.fromisoformat(str(message["Timestamp"]).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise Unauthorized("The SNS Timestamp is not an ISO 8601 time.") from None


def verify_message(message: Any, host_pattern: str, tolerance: int, now: float, http: SnsHttp) -> None:
    """Verify one SNS envelope as AWS documents it; Unauthorized when it is not SNS's, 503 when the certificate
    cannot be fetched now (SNS retries a 5xx)."""
    if not isinstance(message, dict) or message.get("Type") not in SNS_TYPES:
        raise Unauthorized("The body is not a signed SNS message (turn raw message delivery off).")
    names = NOTIFICATION_FIELDS if message["Type"] == "Notification" else CONFIRMATION_FIELDS
    missing = [n for n in names if n != "Subject" and not isinstance(message.get(n), str)]
    if missing or not isinstance(message.get("Signature"), str):
        raise Unauthorized(f"The SNS message lacks signed fields: {', '.join(missing) or 'Signature'}.")
    algorithm = SIGNATURE_HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise Unauthorized("The SNS SignatureVersion is not 1 or 2.")
    cert_url = message.get("SigningCertURL")
    if not isinstance(cert_url, str) or not sns_url_allowed(cert_url, host_pattern, ".pem"):
        raise Unauthorized("The SNS SigningCertURL is not an https .pem URL on an allowed SNS host.")
    if message["Type"] != "Notification" and not sns_url_allowed(message["SubscribeURL"], host_pattern):
        raise Unauthorized("The SNS SubscribeURL is not an https URL on an allowed SNS host.")
    if abs(now - _signed_at(message)) > tolerance:
        raise Unauthorized("The SNS Timestamp is outside the replay window.")
    try:
        certificate = http.certificate(cert_url)
    except FetchFailed as exc:
        log.warning("SNS signing certificate not fetched: %s", exc)
        if exc.transient:
            raise ServiceUnavailable("The SNS signing certificate cannot be fetched now; retry later.") from None
        raise Unauthorized("The SNS signing certificate cannot be had from SigningCertURL.") from None
    when = datetime.fromtimestamp(now, UTC)
    if not certificate.not_valid_before_utc <= when <= certificate.not_valid_after_utc:
        raise Unauthorized("The SNS signing certificate is not valid now.")
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise Unauthorized("The SNS signing certificate has no RSA key.")
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
        public_key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unauthorized("The SNS signature does not match.") from None


class SubscriptionNotConfirmed(Forbidden):
    code = "sns_subscription_not_confirmed"
    text = ("A SubscriptionConfirmation is confirmed only when its SNS signature was verified (scheme sns_signature); "
            "this one is kept on the rejected topic, where its SubscribeURL can be opened by hand.")


class SnsSchema(Schema):
    """Base for SNS and AWS payloads."""

    class Meta:
        unknown = INCLUDE  # AWS adds fields (carrierName, isoCountryCode came later): keep them


class EnvelopeSchema(SnsSchema):
    """The SNS envelope: what routes it, and what we keep (the signature was checked over the raw body)."""

    type = fields.String(required=True, data_key="Type", validate=validate.OneOf(sorted(SNS_TYPES)))
    message_id = fields.String(required=True, data_key="MessageId", validate=validate.Length(1, 128))
    topic_arn = fields.String(data_key="TopicArn", allow_none=True, validate=validate.Length(max=512))
    message = fields.String(required=True, data_key="Message")
    timestamp = described(VendorTime)("iso", data_key="Timestamp", allow_none=True)
    subscribe_url = fields.String(data_key="SubscribeURL", allow_none=True)


class SmsEventSchema(SnsSchema):
    """An SMS (or MMS) event of a configuration set's SNS event destination: a delivery receipt."""

    event_type = fields.String(required=True, data_key="eventType", validate=validate.Length(1, 64))
    message_id = fields.String(required=True, data_key="messageId", validate=validate.Length(1, 128))
    is_final = described(fields.Boolean)(data_key="isFinal", allow_none=True)
    event_timestamp = described(VendorTime)("epoch", data_key="eventTimestamp", allow_none=True)  # epoch ms
    destination = described(Address)(data_key="destinationPhoneNumber", allow_none=True)
    origination = described(Address)(data_key="originationPhoneNumber", allow_none=True)  # or a sender id
    message_status = described(fields.String)(data_key="messageStatus", allow_none=True,
                                              validate=validate.Length(max=64))
    status_description = described(fields.String)(data_key="messageStatusDescription", allow_none=True,
                                                  validate=validate.Length(max=512))
    mcc = described(fields.String)(allow_none=True, validate=validate.Regexp(r"^\d{3}$"))
    mnc = described(fields.String)(allow_none=True, validate=validate.Regexp(r"^\d{2,3}$"))
    parts = described(StrictInteger)(data_key="totalMessageParts", allow_none=True, validate=validate.Range(1, 255))
    price = described(fields.Decimal)(data_key="totalMessagePrice", allow_none=True, allow_nan=False)
    # the older Pinpoint SMS event carried its price in thousandths of a US cent
    price_millicents = described(fields.Decimal)(data_key="priceInMillicentsUSD", allow_none=True, allow_nan=False)


class InboundSchema(SnsSchema):
    """A two-way SMS message AWS publishes to the number's SNS topic."""

    origination = Address(required=True, data_key="originationNumber")  # the subscriber
    destination = Address(required=True, data_key="destinationNumber")  # our number
    body = fields.String(required=True, data_key="messageBody", validate=validate.Length(max=MESSAGE_TEXT))
    inbound_message_id = described(fields.String)(data_key="inboundMessageId", allow_none=True,
                                                  validate=validate.Length(1, 128))
    keyword = described(fields.String)(data_key="messageKeyword", allow_none=True, validate=validate.Length(max=64))
    # the id of the message the subscriber answers (documented so; the example shows an opaque string)
    previous_message_id = described(fields.String)(data_key="previousPublishedMessageId", allow_none=True,
                                                   validate=validate.Length(max=256))


def receipt_status(event_type: str, is_final: bool | None) -> str:
    """Our status for an event type; a type AWS adds later is `unknown`, never a 4xx (SNS would drop it)."""
    suffix = event_type.strip().upper().split("_", 1)[1] if "_" in event_type else ""
    status = EVENT_STATUSES.get(suffix, "unknown")
    if suffix == "SUCCESSFUL" and is_final is False:
        return "pending"  # the carrier took it; AWS says a handset receipt may still come
    return status


def _price(event: dict[str, Any]) -> str | None:
    """The message's price in US dollars, from totalMessagePrice or the older priceInMillicentsUSD."""
    if event.get("price") is not None:
        return str(event["price"])
    millicents = event.get("price_millicents")
    if millicents is None:
        return None
    try:
        return str((Decimal(millicents) / 100_000).normalize())
    except InvalidOperation:
        return None


def _decoded_message(envelope: dict[str, Any]) -> dict[str, Any]:
    """The Notification's Message, a JSON object in a string, read as strictly as a body."""
    try:
        message = parse_json(envelope["message"].encode(), "application/json")
    except InvalidJson:
        raise ValidationError({"Message": ["Invalid format: not a JSON object."]}) from None
    if not isinstance(message, dict):
        raise ValidationError({"Message": ["Invalid format: not a JSON object."]})
    return message


def _raw(payload: dict[str, Any], message: dict[str, Any] | None, ctx: CallbackContext, vendor_time: Any) -> dict:
    """The envelope as received, with its Message decoded beside it."""
    return ctx.raw(payload, vendor_time, **({"message": message} if message is not None else {}))


def sms_event(payload: dict, envelope: dict, message: dict, ctx: CallbackContext) -> list[DeliveryReceipt]:
    """An SMS/MMS event: one receipt for one message to one destination."""
    event_type = message.get("eventType")
    if isinstance(event_type, str) and not event_type.upper().startswith(MESSAGE_EVENT_PREFIXES):
        raise UnknownCallbackType(f"AWS event type {event_type[:64]!r} is not a message receipt.")
    try:
        event = load(shared_schema(SmsEventSchema), message)
    except ValidationError as exc:
        raise ValidationError({"Message": exc.messages}) from None
    status = receipt_status(event["event_type"], event.get("is_final"))
    mcc, mnc = event.get("mcc"), event.get("mnc")
    return [DeliveryReceipt(
        vendor=VENDOR, message_id=canonical_message_id(event["message_id"]), status=status,
        vendor_status=event["event_type"], received_at=ctx.received_at, occurred_at=event.get("event_timestamp"),
        recipient=digits_msisdn(event.get("destination")), sender=digits_msisdn(event.get("origination")),
        error_description=None if status in {"delivered", "pending"} else event.get("status_description"),
        parts=event.get("parts"), price=_price(event), currency="USD" if _price(event) is not None else None,
        network=f"{mcc}{mnc}" if mcc and mnc else None, account=ctx.account, signature_valid=ctx.signature_valid,
        raw=_raw(payload, message, ctx, message.get("eventTimestamp")),
    )]


def inbound_message(payload: dict, envelope: dict, message: dict, ctx: CallbackContext) -> list[InboundMessage]:
    """A two-way SMS message; the SNS MessageId stands in when AWS gives no inboundMessageId."""
    try:
        inbound = load(shared_schema(InboundSchema), message)
    except ValidationError as exc:
        raise ValidationError({"Message": exc.messages}) from None
    return [InboundMessage(
        vendor=VENDOR, message_id=canonical_message_id(inbound.get("inbound_message_id")
                                                       or envelope["message_id"]),
        from_=digits_msisdn(inbound["origination"]), to=digits_msisdn(inbound["destination"]),
        received_at=ctx.received_at, occurred_at=envelope.get("timestamp"), text=inbound["body"],
        keyword=inbound.get("keyword"), in_reply_to=inbound.get("previous_message_id"), account=ctx.account,
        signature_valid=ctx.signature_valid, raw=_raw(payload, message, ctx, payload.get("Timestamp")),
    )]


def confirm_subscription(envelope: dict[str, Any], ctx: CallbackContext) -> list:
    """Confirm a subscription whose signature we verified; otherwise keep it for an operator (403, recorded)."""
    topic = envelope.get("topic_arn")
    if ctx.signature_valid is not True:
        raise SubscriptionNotConfirmed()
    try:
        SNS_HTTP.confirm(envelope["subscribe_url"])
    except FetchFailed as exc:
        log.warning("SNS subscription to %s not confirmed: %s", topic, exc)
        if exc.transient:
            raise ServiceUnavailable("The SNS subscription could not be confirmed now; retry later.") from None
        raise Forbidden("SNS refused the confirmation (expired or used token); subscribe again.") from None
    log.info("SNS subscription to %s confirmed", topic)
    return []


def callback(wanted: str) -> Callable[[Any, CallbackContext], list]:
    """The normalizer of one kind: SNS handshakes on either URL, and that kind's AWS messages."""
    route = {"receipt": sms_event, "inbound": inbound_message}[wanted]

    def normalize(payload: Any, ctx: CallbackContext) -> list:
        if not isinstance(payload, dict):
            raise ValidationError({"_schema": ["Invalid input type: expected an SNS message object."]})
        envelope = load(shared_schema(EnvelopeSchema), payload)
        ctx.check_account(envelope.get("topic_arn"))  # account_ids: the TopicArns we subscribed to
        if envelope["type"] == "SubscriptionConfirmation":
            return confirm_subscription(envelope, ctx)
        if envelope["type"] == "UnsubscribeConfirmation":
            log.info("SNS subscription to %s ended", envelope.get("topic_arn"))  # nothing to do: no event
            return []
        message = _decoded_message(envelope)
        # an AWS event names its eventType; a two-way message its body: the other kind's topic is a 403
        if wanted == "receipt" and "eventType" not in message and {"messageBody", "inboundMessageId"} & set(message):
            raise UnknownCallbackType(f"This SNS topic sends two-way SMS messages, not accepted on {ctx.kind}.")
        if wanted == "inbound" and "eventType" in message:
            raise UnknownCallbackType(f"This SNS topic sends AWS events, not accepted on {ctx.kind}.")
        return route(payload, envelope, message, ctx)

    return normalize




class AwsSendTextMessageSchema(Schema):
    """AWS End User Messaging SMS SendTextMessage (or SendMediaMessage) response: one MessageId."""

    class Meta:
        unknown = INCLUDE

    message_id = fields.String(required=True, data_key="MessageId", validate=validate.Length(1, 128))



def send_response(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
    """SendTextMessage sends to one number and answers only its MessageId: the caller names the recipient."""
    response = shared_schema(AwsSendTextMessageSchema).load(item["response"])
    recipients = wrapper.get("recipients") or []
    if len(recipients) != 1:
        raise ValidationError({"recipients": ["Required with an aws_sms response: the one destination number."]})
    return [sent_message("aws_sms", canonical_message_id(response["message_id"]), recipients[0], received_at,
                  item, **stated(wrapper))]


ADAPTER = VendorAdapter(
    name=VENDOR,
    docs="https://docs.aws.amazon.com/sms-voice/latest/userguide/configuration-sets-event-format.html",
    auth_schemes=("sns_signature", "url_token", "ip_allow_list"),  # SNS signs; a URL token fits its https endpoint
    canonical_id=canonical_message_id,
    send_response=send_response,
    kinds={
        "delivery-receipts": KindSpec(
            callback("receipt"), formats=("json", "text-json"), schemas=(EnvelopeSchema, SmsEventSchema),
            summary="AWS End User Messaging SMS events (TEXT_*/MEDIA_*) through an SNS HTTPS subscription",
        ),
        "inbound-messages": KindSpec(
            callback("inbound"), formats=("json", "text-json"), schemas=(EnvelopeSchema, InboundSchema),
            summary="AWS End User Messaging two-way SMS messages through an SNS HTTPS subscription",
        ),
    },
)
