"""What a vendor module provides: per callback kind, its methods, formats, schemas, normalizer and ack."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError

from core.events import Envelope, Payload, SentMessage
from receiver.errors import ApiError, UnknownAccount, UnknownCallbackType, validation_error

KINDS = ("delivery-receipts", "inbound-messages", "link-clicks")


@dataclass(frozen=True)
class EntryRejection:
    """One entry of a bundle we do not serve: kept on the rejected topic while its siblings are published."""

    index: int
    error: ApiError
    body: Any  # the bundle cut down to this entry, so that it can be replayed alone after a fix


@dataclass(frozen=True)
class CallbackContext:
    """Facts about one request that normalizers need besides the payload."""

    vendor: str
    kind: str
    request_id: str
    received_at: datetime
    method: str
    payload_format: str  # "json", "form" or "query"
    account: str | None = None
    account_ids: tuple[str, ...] = ()
    signature_valid: bool | None = None
    idempotency_token: str | None = None  # the vendor's per-callback token, the same on its retries (Twilio)
    # bundle entries we do not serve; the view records each on the rejected topic after publishing the rest
    rejections: list[EntryRejection] = field(default_factory=list, compare=False)

    def reject_entry(self, index: int, error: ApiError | ValidationError, body: Any) -> None:
        """Keep one bundle entry for the rejected topic instead of refusing the whole bundle."""
        if isinstance(error, ValidationError):
            error = validation_error(error.messages)
        self.rejections.append(EntryRejection(index, error, body))

    def check_account(self, account_id: str | None) -> None:
        """403 when the payload names an account we are not configured for (only if ids are configured)."""
        if self.account_ids and (account_id or "") not in self.account_ids:
            raise UnknownAccount(f"Account {account_id!r} is not configured for {self.vendor}.")

    def raw(self, payload: Any, vendor_time: str | None = None, **extra: Any) -> dict[str, Any]:
        """The `raw` of an event: the payload as received, its format, and the vendor's own time string."""
        raw = {"format": self.payload_format, "payload": payload}
        if vendor_time is not None:
            raw["vendor_time"] = str(vendor_time)
        if self.idempotency_token is not None:
            raw["idempotency_token"] = self.idempotency_token
        raw.update(extra)
        return raw


Normalizer = Callable[[Any, CallbackContext], list[Payload]]
# (body, mimetype) a vendor requires as its acknowledgement, or None for our JSON answer
Ack = Callable[[list[Envelope], CallbackContext], tuple[str, str] | None]


@dataclass(frozen=True)
class KindSpec:
    """How one vendor calls one of our kinds."""

    normalize: Normalizer
    methods: tuple[str, ...] = ("POST",)
    formats: tuple[str, ...] = ("json",)
    schemas: tuple[type[Schema], ...] = ()
    ack: Ack | None = None
    summary: str = ""


def as_given(message_id: str) -> str:
    """A vendor whose ids need no canonical spelling: the id as given, without surrounding spaces."""
    return message_id.strip()


# A send-response reader: (the sending system's wrapper as loaded, the item as posted, our receive time) -> messages
SendResponse = Callable[[dict[str, Any], dict[str, Any], datetime], list[SentMessage]]


@dataclass(frozen=True)
class VendorAdapter:
    """A vendor: everything the receiver, the processors and the application need to know about it, in one place."""

    name: str
    docs: str  # the vendor's own documentation of its callbacks (or send API), for README and config check
    # the auth schemes its software can really send; a configured scheme it cannot satisfy stops the service at start
    auth_schemes: tuple[str, ...] = ()
    kinds: dict[str, KindSpec] = field(default_factory=dict)
    idempotency_header: str | None = None  # a header whose value is kept in each event's raw (idempotency_token)
    # one canonical spelling of its message ids, so receipts match sends despite case, zeros and dashes
    canonical_id: Callable[[str], str] = as_given
    send_response: SendResponse | None = None  # reads its send API's response for POST /v1/sent-messages


@functools.cache
def shared_schema(schema_class: type[Schema]) -> Schema:
    """One instance per schema class: building a schema deep-copies its fields, loading leaves it unchanged."""
    return schema_class()


def load(schema: Schema, payload: Any) -> Any:
    """Validate with marshmallow; a ValidationError propagates and the view answers 400."""
    return schema.load(payload)


def dispatch(
    payload: Any, ctx: CallbackContext, by_type: dict[str, Normalizer], type_field: str = "type"
) -> list[Payload]:
    """Route a payload on its `type` discriminator; an unknown type for this endpoint is a 403."""
    from marshmallow import ValidationError

    if not isinstance(payload, dict):
        raise ValidationError({"_schema": ["Invalid input type: expected an object."]})
    kind_type = payload.get(type_field)
    if kind_type is None:
        raise ValidationError({type_field: ["Missing data for required field."]})
    if not isinstance(kind_type, str):
        raise ValidationError({type_field: ["Not a valid string."]})
    normalizer = by_type.get(kind_type.lower())
    if normalizer is None:
        raise UnknownCallbackType(f"Callback type {kind_type[:64]!r} is not accepted on {ctx.kind}.")
    return normalizer(payload, ctx)


def served_entries(
    entries: Iterable[tuple[Any, Any]], normalize_entry: Callable[[Any], list[Payload]], ctx: CallbackContext
) -> list[Payload]:
    """The events of a bundle's (replay body, entry) pairs; an entry that fails is kept as a rejection and the
    others are published. A bundle of which no entry is served is answered with its first entry's error."""
    payloads: list[Payload] = []
    for index, (body, entry) in enumerate(entries):
        try:
            payloads.extend(normalize_entry(entry))
        except (ValidationError, ApiError) as exc:
            ctx.reject_entry(index, exc, body)
    if not payloads and ctx.rejections:
        first = ctx.rejections[0].error
        ctx.rejections.clear()  # the whole request is refused and recorded once, as any refused callback
        raise first
    return payloads


def text_ack(body: str) -> Ack:
    """An ack that answers a fixed text body (Jasmin `ACK/Jasmin`, Fortytwo HTTP API `OK`)."""

    def ack(envelopes: list[Envelope], ctx: CallbackContext) -> tuple[str, str]:
        return body, "text/plain"

    return ack
