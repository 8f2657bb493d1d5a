"""The CloudEvents envelope: how a payload travels on Kafka (binary mode: ce_* headers, JSON value, key)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from core.events.payloads import PAYLOAD_TYPES, Payload, iso_text, parse_iso_text
from core.events.vocabulary import CONTENT_TYPE, SPEC_VERSION, InvalidEvent

# one encoder for every event value: json.dumps builds a new JSONEncoder per call when given options; NaN and
# Infinity are not JSON, so the encoder refuses them (ValueError) rather than publish an invalid value
EVENT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_json(data: dict[str, Any]) -> bytes:
    """`data` as UTF-8 JSON: orjson (~6x faster) when its output reads back as exactly `data`, else EVENT_JSON, whose
    refusals stand: orjson writes NaN as null and a tuple as a list, and raises on >64-bit ints and surrogates."""
    try:
        encoded = orjson.dumps(data)
    except orjson.JSONEncodeError:
        return EVENT_JSON.encode(data).encode()
    return encoded if orjson.loads(encoded) == data else EVENT_JSON.encode(data).encode()


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
            ("ce_time", (iso_text(self.time) or "").encode()),
            ("ce_subject", self.subject.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ] + ([("ce_requestid", self.request_id.encode())] if self.request_id else [])

    def value(self) -> bytes:
        """The JSON `data`."""
        return event_json(self.payload.to_data())

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
            time=parse_iso_text("ce_time", attributes.get("ce_time")) or payload.occurred(),
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
        "received_at": iso_text(received_at),
    }
    if entry is not None:
        value["entry"] = entry
    record_headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", (request_id if entry is None else f"{request_id}/{entry}").encode()),
        ("ce_source", f"smshooks/{vendor}".encode()),
        ("ce_type", b"sms.callback_rejected.v1"),
        ("ce_time", (iso_text(received_at) or "").encode()),
        ("content-type", CONTENT_TYPE.encode()),
        ("reason", code.encode()),
    ]
    return f"{vendor}:{kind}", record_headers, json.dumps(value, separators=(",", ":")).encode()
