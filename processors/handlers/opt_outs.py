"""Opt-outs: classify inbound messages, keep consent state and its history, emit sms.opt_out.v1."""

from __future__ import annotations

from core.events import Envelope, InboundMessage, digits_msisdn
from processors.db.uow import UnitOfWork
from processors.domain import keywords
from processors.domain.consent import KEYWORD, ConsentSignal, record_consent


def handle_inbound_message(envelope: Envelope, uow: UnitOfWork) -> None:
    """Record STOP/START/HELP, change consent when it differs, and emit an OptOut for changes and help."""
    message = envelope.payload
    assert isinstance(message, InboundMessage)
    settings = uow.settings
    found = keywords.classify(message.text, settings.opt_out_locales, settings.opt_out_match_in_sentence)
    if found is None:
        return  # ordinary replies are not consent signals
    record_consent(uow, ConsentSignal(
        msisdn=digits_msisdn(message.from_) or message.from_, sender=digits_msisdn(message.to),
        action=found.action, keyword=found.keyword, source=KEYWORD, vendor=message.vendor,
        source_event_id=envelope.id, received_at=message.received_at, occurred_at=message.occurred_at,
        text=message.text,
    ))




