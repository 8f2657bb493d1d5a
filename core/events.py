"""The event contract shared by receiver and processors: payloads, topics, keys and the CloudEvents codec.

Pure Python on purpose: processors import this module and nothing else from the receiver.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
# Fixed namespace so that ids are stable across processes, hosts and releases.
EVENT_ID_NAMESPACE = uuid.UUID("6f1d7f0e-5a2b-4c1e-9a57-3d5c2b9e8a10")

UUID_SHAPE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FINAL_STATUSES = frozenset({"delivered", "failed", "expired", "rejected"})
RECEIPT_STATUSES = FINAL_STATUSES | {"pending", "unknown"}

TOPIC_DELIVERY_RECEIPTS = "sms.delivery-receipts"
TOPIC_INBOUND_MESSAGES = "sms.inbound-messages"
TOPIC_LINK_CLICKS = "sms.link-clicks"
TOPIC_SENT_MESSAGES = "sms.sent-messages"
TOPIC_CALLBACKS_REJECTED = "sms.callbacks.rejected"
TOPIC_MESSAGE_STATUS = "sms.message-status"
TOPIC_OPT_OUTS = "sms.opt-outs"
ALL_TOPICS = (
    TOPIC_DELIVERY_RECEIPTS,
    TOPIC_INBOUND_MESSAGES,
    TOPIC_LINK_CLICKS,
    TOPIC_SENT_MESSAGES,
    TOPIC_CALLBACKS_REJECTED,
    TOPIC_MESSAGE_STATUS,
    TOPIC_OPT_OUTS,
)


class InvalidEvent(ValueError):
    """A Kafka record that is not a valid smshooks event; processors send it to the DLQ."""


def topic_name(prefix: str, topic: str) -> str:
    """The broker-side topic name under the configured prefix."""
    return f"{prefix}{topic}" if prefix else topic


def utc_now() -> datetime:
    """Our clock, always timezone-aware UTC."""
    return datetime.now(UTC)


def digits_msisdn(value: str | None) -> str | None:
    """Digits-only E.164 form of a phone number; alphanumeric sender ids are returned unchanged."""
    if value is None:
        return None
    text = value.strip()
    compact = re.sub(r"[\s\-().]", "", text)
    if compact.startswith("+"):
        compact = compact[1:]
    elif compact.startswith("00") and compact[2:].isdigit():
        compact = compact[2:]
    return compact if compact.isdigit() else text


# one encoder for every event value: json.dumps builds a new JSONEncoder per call when given options; NaN and
# Infinity are not JSON, so the encoder refuses them (ValueError) rather than publish an invalid value
EVENT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def deterministic_id(*parts: Any) -> str:
    """A UUIDv5 over the identifying fields, so a vendor retry produces the same event id."""
    material = "\x1f".join("" if p is None else str(p) for p in parts)
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, material))


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_iso(name: str, value: Any) -> datetime | None:
    """Parse an ISO timestamp written by _iso."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"{name}: not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidEvent(f"{name}: time without a timezone: {value!r}")
    return parsed.astimezone(UTC)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """A payload class's field names, in order (dataclasses.fields() rebuilds the list on every call)."""
    return tuple(item.name for item in dataclasses.fields(cls))


def _json_check(annotation: Any) -> tuple[Callable[[Any], bool], str]:
    """Whether a JSON value fits a payload annotation (str, int, bool, datetime, dict[...], tuple[X, ...], Any),
    and what the expected JSON type is called in errors."""
    if annotation is Any:
        return (lambda value: True), "any value"
    if annotation is str:
        return (lambda value: type(value) is str), "a string"
    if annotation is datetime:  # parsed after this check
        return (lambda value: type(value) is str), "an ISO 8601 time string"
    if annotation is bool:
        return (lambda value: type(value) is bool), "a boolean"
    if annotation is int:
        return (lambda value: type(value) is int), "an integer"  # not bool: True is an int to isinstance
    if typing.get_origin(annotation) is dict:
        return (lambda value: type(value) is dict), "an object"
    if typing.get_origin(annotation) is tuple:
        item_fits, item_expected = _json_check(typing.get_args(annotation)[0])
        expected = f"a list whose items are each {item_expected}"
        return (lambda value: type(value) is list and all(map(item_fits, value))), expected
    raise TypeError(f"no JSON check for payload annotation {annotation!r}")


@dataclass(frozen=True)
class _FieldCheck:
    """How one payload field is read from event `data`: its type check, whether null is allowed, its default."""

    name: str
    fits: Callable[[Any], bool]
    expected: str
    nullable: bool
    required: bool
    is_time: bool


@functools.cache
def _field_checks(cls: type) -> tuple[_FieldCheck, ...]:
    """Every field's check, built once per payload class from its annotations."""
    hints = typing.get_type_hints(cls)
    checks = []
    for item in dataclasses.fields(cls):
        annotation = hints[item.name]
        members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
        nullable = type(None) in members
        (base,) = [member for member in members if member is not type(None)]
        fits, expected = _json_check(base)
        required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        checks.append(_FieldCheck(item.name, fits, expected, nullable, required, base is datetime))
    return tuple(checks)


class Payload:
    """Shared codec for event payload dataclasses: to and from the JSON `data` of an event."""

    ce_type: ClassVar[str]
    topic: ClassVar[str]

    def to_data(self) -> dict[str, Any]:
        """The JSON-ready `data` of the event."""
        data = {}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = _iso(value)
            elif isinstance(value, tuple):
                value = list(value)
            data[name] = value
        return data

    @classmethod
    def from_data(cls, data: Any) -> Payload:
        """Rebuild the payload from event `data`, raising InvalidEvent on anything off-contract: a missing or null
        required field, a value of the wrong JSON type, a time that does not parse. A record that decodes must
        fit the database, or it would fail there (NOT NULL) on every retry instead of going to the DLQ."""
        if type(data) is not dict:
            raise InvalidEvent(f"{cls.__name__}: data is not an object")
        values = {}
        for check in _field_checks(cls):
            if check.name not in data:
                if check.required:
                    raise InvalidEvent(f"{cls.__name__}: missing field {check.name!r}")
                continue
            value = data[check.name]
            if value is None:
                if not check.nullable:
                    raise InvalidEvent(f"{cls.__name__}: {check.name} is null")
            elif not check.fits(value):
                raise InvalidEvent(f"{cls.__name__}: {check.name} is not {check.expected}: {type(value).__name__}")
            elif check.is_time:
                value = _parse_iso(check.name, value)
            elif type(value) is list:
                value = tuple(value)
            values[check.name] = value
        payload = cls(**values)
        payload.check()
        return payload

    def check(self) -> None:
        """Invariants beyond presence; subclasses add theirs."""

    def event_id(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def key(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def subject(self) -> str:
        """`ce_subject`: what the event is about."""
        return self.key()

    def source_vendor(self) -> str:
        """The vendor part of `ce_source`."""
        return getattr(self, "vendor", "smshooks")

    def occurred(self) -> datetime:
        """`ce_time`: the vendor's time when known, else ours."""
        return getattr(self, "occurred_at", None) or self.received_at  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DeliveryReceipt(Payload):
    """A vendor's report on the fate of one sent message (or a batch summary line, with a count)."""

    ce_type: ClassVar[str] = "sms.delivery_receipt.v1"
    topic: ClassVar[str] = TOPIC_DELIVERY_RECEIPTS

    vendor: str
    message_id: str
    status: str
    vendor_status: str
    received_at: datetime
    occurred_at: datetime | None = None
    batch_id: str | None = None
    client_ref: str | None = None
    recipient: str | None = None
    sender: str | None = None
    vendor_code: str | None = None
    error_description: str | None = None
    parts: int | None = None
    price: str | None = None
    currency: str | None = None
    network: str | None = None
    operator_done_at: datetime | None = None
    account: str | None = None
    count: int | None = None
    signature_valid: bool | None = None
    # described fields that did not parse ({"field", "reason"}): their text stays in raw, their value is null
    parse_warnings: tuple[dict[str, str], ...] = ()
    # True when the vendor refused the message because the recipient opted out of (or blocked) the sender:
    # evidence of an opt-out, recorded by the processors beside keyword opt-outs
    recipient_opted_out: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_final(self) -> bool:
        """Delivered, failed, expired and rejected end a message's life; pending and unknown do not."""
        return self.status in FINAL_STATUSES

    def check(self) -> None:
        if self.status not in RECEIPT_STATUSES:
            raise InvalidEvent(f"DeliveryReceipt: unknown status {self.status!r}")
        if not self.message_id:
            raise InvalidEvent("DeliveryReceipt: empty message_id")

    def to_data(self) -> dict[str, Any]:
        data = super().to_data()
        data["is_final"] = self.is_final
        return data

    @classmethod
    def from_data(cls, data: Any) -> Payload:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "is_final"}
        return super().from_data(data)

    def event_id(self) -> str:
        raw_time = self.raw.get("vendor_time") if self.raw else None
        return deterministic_id(
            self.vendor,
            "delivery_receipt",
            self.message_id,
            self.recipient,
            self.vendor_status,
            self.vendor_code,
            raw_time or _iso(self.occurred_at),
            self.count,
        )

    def key(self) -> str:
        return f"{self.vendor}:{self.message_id}"


@dataclass(frozen=True)
class InboundMessage(Payload):
    """A message a subscriber sent to one of our numbers (MO)."""

    ce_type: ClassVar[str] = "sms.inbound_message.v1"
    topic: ClassVar[str] = TOPIC_INBOUND_MESSAGES

    vendor: str
    message_id: str
    from_: str
    to: str
    received_at: datetime
    occurred_at: datetime | None = None
    text: str | None = None
    binary: str | None = None
    udh: str | None = None
    media: tuple[dict[str, Any], ...] = ()
    subject_line: str | None = None
    in_reply_to: str | None = None
    client_ref: str | None = None
    batch_id: str | None = None
    keyword: str | None = None
    sent_at: datetime | None = None
    network: str | None = None
    concat: dict[str, Any] | None = None
    account: str | None = None
    signature_valid: bool | None = None
    # described fields that did not parse ({"field", "reason"}): their text stays in raw, their value is null
    parse_warnings: tuple[dict[str, str], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def check(self) -> None:
        if not self.from_:
            raise InvalidEvent("InboundMessage: empty from_")

    def event_id(self) -> str:
        return deterministic_id(self.vendor, "inbound_message", self.message_id, self.from_, self.to)

    def key(self) -> str:
        return self.from_


@dataclass(frozen=True)
class LinkClick(Payload):
    """A subscriber clicked a vendor-shortened link in a message we sent."""

    ce_type: ClassVar[str] = "sms.link_click.v1"
    topic: ClassVar[str] = TOPIC_LINK_CLICKS

    vendor: str
    message_id: str
    recipient: str
    url: str
    received_at: datetime
    clicked_at: datetime
    batch_id: str | None = None
    client_ref: str | None = None
    ip_address: str | None = None
    browser: str | None = None
    os: str | None = None
    country: str | None = None
    country_iso2: str | None = None
    account: str | None = None
    signature_valid: bool | None = None
    # described fields that did not parse ({"field", "reason"}): their text stays in raw, their value is null
    parse_warnings: tuple[dict[str, str], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def event_id(self) -> str:
        # Mobivate sends no click time: a retry and a second identical click are indistinguishable.
        clicked = self.raw.get("vendor_time") if self.raw else None
        return deterministic_id(
            self.vendor, "link_click", self.message_id, self.recipient, self.url, self.ip_address, clicked
        )

    def key(self) -> str:
        return f"{self.vendor}:{self.message_id}"

    def occurred(self) -> datetime:
        return self.clicked_at


@dataclass(frozen=True)
class SentMessage(Payload):
    """A message a sending system says it handed to a vendor."""

    ce_type: ClassVar[str] = "sms.sent_message.v1"
    topic: ClassVar[str] = TOPIC_SENT_MESSAGES

    vendor: str
    message_id: str
    recipient: str
    sent_at: datetime
    received_at: datetime
    sender: str | None = None
    batch_id: str | None = None
    campaign_id: str | None = None
    client_ref: str | None = None
    parts: int = 1
    country_iso2: str | None = None
    account: str | None = None
    # what the sender expected to pay for the whole message (all parts), a decimal string, in `currency`
    expected_price: str | None = None
    currency: str | None = None
    # the vendor's message id of every part, in order, when the vendor gives each part its own (Vonage)
    part_ids: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def check(self) -> None:
        if not self.message_id:
            raise InvalidEvent("SentMessage: empty message_id")
        if not isinstance(self.parts, int) or self.parts < 1:
            raise InvalidEvent("SentMessage: parts must be a positive integer")

    def event_id(self) -> str:
        return deterministic_id(self.vendor, "sent_message", self.message_id, self.recipient)

    def key(self) -> str:
        return f"{self.vendor}:{self.message_id}"

    def occurred(self) -> datetime:
        return self.sent_at


@dataclass(frozen=True)
class MessageStatus(Payload):
    """Reconciliation's verdict: a sent message's status changed (or a conflicting final arrived)."""

    ce_type: ClassVar[str] = "sms.message_status.v1"
    topic: ClassVar[str] = TOPIC_MESSAGE_STATUS

    vendor: str
    message_id: str
    status: str
    previous_status: str | None
    is_final: bool
    conflict: bool
    receipt_event_id: str
    changed_at: datetime
    received_at: datetime
    vendor_status: str | None = None
    vendor_code: str | None = None
    recipient: str | None = None
    client_ref: str | None = None
    batch_id: str | None = None

    def event_id(self) -> str:
        return deterministic_id("message_status", self.vendor, self.message_id, self.receipt_event_id)

    def key(self) -> str:
        return f"{self.vendor}:{self.message_id}"

    def source_vendor(self) -> str:
        return "reconciliation"

    def occurred(self) -> datetime:
        return self.changed_at


@dataclass(frozen=True)
class OptOut(Payload):
    """A subscriber's consent changed (opt_out, opt_in) or they asked for help."""

    ce_type: ClassVar[str] = "sms.opt_out.v1"
    topic: ClassVar[str] = TOPIC_OPT_OUTS

    msisdn: str
    scope: str
    sender: str | None
    action: str
    keyword: str
    source_event_id: str
    occurred_at: datetime
    received_at: datetime
    vendor: str | None = None
    opted_out: bool | None = None

    def event_id(self) -> str:
        return deterministic_id("opt_out", self.msisdn, self.scope, self.sender, self.source_event_id)

    def key(self) -> str:
        # Keyed by number so STOP and START from one subscriber stay in order.
        return self.msisdn

    def source_vendor(self) -> str:
        return "opt-outs"


PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.ce_type: cls for cls in (DeliveryReceipt, InboundMessage, LinkClick, SentMessage, MessageStatus, OptOut)
}
for _payload_type in PAYLOAD_TYPES.values():
    _field_checks(_payload_type)  # at import: an annotation the decoder cannot check fails here, not per record


@dataclass(frozen=True)
class Envelope:
    """A CloudEvent in Kafka binary mode: attributes in headers, `data` as the JSON value."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    key: str
    topic: str
    payload: Payload
    # the receiver's request id (extension attribute `requestid`): traces a callback into processor logs;
    # not part of the event's identity, so a vendor retry keeps its ce_id but carries its own request id
    request_id: str | None = None

    @classmethod
    def wrap(cls, payload: Payload, request_id: str | None = None) -> Envelope:
        """The envelope of a payload, with its deterministic id and partition key."""
        return cls(
            id=payload.event_id(),
            type=payload.ce_type,
            source=f"smshooks/{payload.source_vendor()}",
            subject=payload.subject(),
            time=payload.occurred(),
            key=payload.key(),
            topic=payload.topic,
            payload=payload,
            request_id=request_id,
        )

    def headers(self) -> list[tuple[str, bytes]]:
        """CloudEvents Kafka binding headers."""
        return [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", (_iso(self.time) or "").encode()),
            ("ce_subject", self.subject.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ] + ([("ce_requestid", self.request_id.encode())] if self.request_id else [])

    def value(self) -> bytes:
        """The JSON `data`."""
        return EVENT_JSON.encode(self.payload.to_data()).encode()

    @classmethod
    def decode(cls, topic: str, key: bytes | None, headers: list[tuple[str, bytes]], value: bytes) -> Envelope:
        """Decode a consumed record; raise InvalidEvent for anything that is not our contract."""
        try:
            attributes = {name: raw.decode() for name, raw in headers or []}
        except (UnicodeDecodeError, AttributeError):
            raise InvalidEvent("headers are not UTF-8") from None
        for required in ("ce_id", "ce_type", "ce_source"):
            if not attributes.get(required):
                raise InvalidEvent(f"missing header {required}")
        payload_type = PAYLOAD_TYPES.get(attributes["ce_type"])
        if payload_type is None:
            raise InvalidEvent(f"unknown ce_type {attributes['ce_type']!r}")
        try:
            data = json.loads(value)
        except (TypeError, ValueError):
            raise InvalidEvent("value is not JSON") from None
        payload = payload_type.from_data(data)
        return cls(
            id=attributes["ce_id"],
            type=attributes["ce_type"],
            source=attributes["ce_source"],
            subject=attributes.get("ce_subject", ""),
            time=_parse_iso("ce_time", attributes.get("ce_time")) or payload.occurred(),
            key=(key or b"").decode("utf-8", "replace"),
            topic=topic,
            payload=payload,
            request_id=attributes.get("ce_requestid") or None,
        )


def rejected_record(
    *,
    request_id: str,
    vendor: str,
    kind: str,
    status: int,
    code: str,
    text: str,
    method: str,
    path: str,
    query: str,
    content_type: str,
    headers: dict[str, str],
    body_base64: str,
    truncated: bool,
    received_at: datetime,
    errors: dict[str, Any] | None = None,
    entry: int | None = None,
) -> tuple[str, list[tuple[str, bytes]], bytes]:
    """Key, headers and value of a `sms.callbacks.rejected` record: enough to inspect and replay. A rejected entry
    of a bundle (`entry`, its index) gets its own id, `<request id>/<entry>`, and the entry alone as body."""
    value = {
        "request_id": request_id,
        "vendor": vendor,
        "kind": kind,
        "status": status,
        "code": code,
        "text": text,
        "errors": errors,
        "method": method,
        "path": path,
        "query": query,
        "content_type": content_type,
        "headers": headers,
        "body_base64": body_base64,
        "truncated": truncated,
        "received_at": _iso(received_at),
    }
    if entry is not None:
        value["entry"] = entry
    record_headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", (request_id if entry is None else f"{request_id}/{entry}").encode()),
        ("ce_source", f"smshooks/{vendor}".encode()),
        ("ce_type", b"sms.callback_rejected.v1"),
        ("ce_time", (_iso(received_at) or "").encode()),
        ("content-type", CONTENT_TYPE.encode()),
        ("reason", code.encode()),
    ]
    return f"{vendor}:{kind}", record_headers, json.dumps(value, separators=(",", ":")).encode()
