"""Re-run a rejected callback (a `sms.callbacks.rejected` record) through today's adapters and settings.

Authentication is not repeated: a callback was recorded only after its credentials passed (401s are never
recorded), and the record keeps no secrets to check them with. Event ids are the vendor's deterministic ids, so a
callback that passes now gets the ids it would have had, and a second replay publishes the same ids again.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from core.events import Envelope
from core.settings import Settings
from receiver.errors import ApiError, ConstraintViolation, NotFound, PayloadTooLarge
from receiver.parsing import payload_format
from receiver.vendors.base import CallbackContext, VendorAdapter
from receiver.views import events_from


class StillRejected(Exception):
    """The callback does not pass today either; `error` says why, as the receiver would answer."""

    def __init__(self, error: ApiError):
        super().__init__(error.text)
        self.error = error


def replay(record: dict[str, Any], adapters: dict[str, VendorAdapter], settings: Settings) -> list[Envelope]:
    """The events a rejected callback yields today, or StillRejected with today's reason."""
    try:
        return _events(record, adapters, settings)
    except ApiError as error:
        raise StillRejected(error) from None


def _events(record: dict[str, Any], adapters: dict[str, VendorAdapter], settings: Settings) -> list[Envelope]:
    vendor, kind = record.get("vendor", ""), record.get("kind", "")
    adapter = adapters.get(vendor)
    spec = adapter.kinds.get(kind) if adapter else None
    vendor_settings = settings.vendor(vendor)
    if spec is None or not vendor_settings.enabled:
        raise NotFound(f"{vendor}/{kind} is not served (any more).")
    if record.get("truncated"):
        raise PayloadTooLarge("The record keeps only the first bytes of a body over the size limit.")
    try:
        body = base64.b64decode(record.get("body_base64") or "", validate=True)
    except (binascii.Error, ValueError):
        raise ConstraintViolation("The record's body is not base64.") from None
    query_string = (record.get("query") or "").encode()
    account_name = dict(parse_qsl(record.get("query") or "")).get("account")
    account = vendor_settings.accounts.get(account_name) if account_name else None
    if account_name and account is None:
        raise NotFound(f"Unknown account {account_name[:40]!r} for {vendor}.")
    method, content_type = record.get("method", "POST"), record.get("content_type") or None
    ctx = CallbackContext(
        vendor=vendor, kind=kind, request_id=record.get("request_id", ""),
        received_at=datetime.fromisoformat(record["received_at"].replace("Z", "+00:00")),
        method=method, payload_format=payload_format(method, content_type, spec.formats),
        account=account_name, account_ids=(account or vendor_settings).account_ids,
    )
    envelopes = events_from(spec, body, content_type, query_string, ctx)
    if ctx.rejections:  # a bundle entry that still does not pass
        raise ctx.rejections[0].error
    return envelopes
