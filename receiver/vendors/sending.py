"""What the vendors' send-response readers share: a SentMessage from what a response and its wrapper say."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from core.events import SentMessage, digits_msisdn
from receiver.phones import country_iso2

MAX_MESSAGES = 10_000  # sent messages one request may register (a Sinch batch may name this many recipients)


def sent_message(vendor: str, message_id: str, recipient: str, received_at: datetime, raw: dict[str, Any],
                 **values: Any) -> SentMessage:
    """A SentMessage with our receive time standing in for a missing send time."""
    digits = digits_msisdn(recipient) or recipient
    return SentMessage(
        vendor=vendor, message_id=message_id, recipient=digits, sent_at=values.pop("sent_at", None) or received_at,
        received_at=received_at, country_iso2=country_iso2(digits), raw={"format": "json", "payload": raw},
        **{name: value for name, value in values.items() if value is not None},
    )


def stated(wrapper: dict[str, Any]) -> dict[str, Any]:
    """What the sending system stated alongside the response; it wins over what the response implies."""
    return {name: wrapper[name] for name in ("sender", "sent_at", "campaign_id", "client_ref", "account")
            if wrapper.get(name) is not None}


def entry_reader(vendor: str, canonical_id: Callable[[str], str],
                 parse: Callable[[Any], list[tuple[str, str, dict[str, Any], dict[str, Any]]]]):
    """A send-response reader from a vendor module's `sent(response)`: (id, recipient, values, cut response) each."""

    def read(wrapper: dict[str, Any], item: dict[str, Any], received_at: datetime) -> list[SentMessage]:
        return [
            sent_message(vendor, canonical_id(message_id), recipient, received_at, dict(item, response=cut),
                         **{**{k: v for k, v in values.items() if v is not None}, **stated(wrapper)})
            for message_id, recipient, values, cut in parse(item["response"])
        ]

    return read
