"""Opt-outs: classify inbound messages, keep consent state and its history, emit sms.opt_out.v1."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from processors.db.models import OptOutHistory, OptOutState
from processors.db.uow import UnitOfWork
from processors.handlers import keywords
from receiver.contract import Envelope, InboundMessage, OptOut, digits_msisdn

ACCOUNT_WIDE = "*"


def scope_key(scope: str, sender: str | None) -> str:
    """The key consent is stored under: our number for scope "sender", "*" for scope "account"."""
    if scope == "account":
        return ACCOUNT_WIDE
    if scope != "sender":
        raise ValueError(f"unknown opt-out scope {scope!r}")
    return digits_msisdn(sender) or ACCOUNT_WIDE


def is_opted_out(session: Session, msisdn: str, sender: str | None, scope: str) -> bool:
    """True when the subscriber's latest keyword for this scope key was a STOP (one indexed lookup)."""
    statement = select(OptOutState.opted_out).where(
        OptOutState.msisdn == digits_msisdn(msisdn), OptOutState.scope_key == scope_key(scope, sender)
    )
    return bool(session.scalar(statement))


def handle_inbound_message(envelope: Envelope, uow: UnitOfWork) -> None:
    """Record STOP/START/HELP, change consent when it differs, and emit an OptOut for changes and help."""
    message = envelope.payload
    assert isinstance(message, InboundMessage)
    settings = uow.settings
    found = keywords.classify(message.text, settings.opt_out_locales, settings.opt_out_match_in_sentence)
    if found is None:
        return  # ordinary replies are not consent signals
    msisdn = digits_msisdn(message.from_) or message.from_
    sender = digits_msisdn(message.to)
    scope = settings.opt_out_scope
    key = scope_key(scope, sender)
    session = uow.session
    state = session.scalars(
        select(OptOutState).where(OptOutState.msisdn == msisdn, OptOutState.scope_key == key)
    ).first()
    currently_out = bool(state and state.opted_out)
    changed = False
    if found.action != keywords.HELP:
        wanted = found.action == keywords.OPT_OUT
        changed = wanted != currently_out  # a repeated STOP (or START while opted in) is history only
        if changed:
            if state is None:
                state = OptOutState(msisdn=msisdn, scope_key=key)
                session.add(state)
            state.opted_out = wanted
            state.updated_at = message.received_at
            state.last_keyword = found.keyword
            state.source_event_id = envelope.id
            currently_out = wanted
    session.add(
        OptOutHistory(
            msisdn=msisdn,
            scope=scope,
            scope_key=key,
            sender=sender,
            action=found.action,
            keyword=found.keyword,
            text=message.text,
            changed=changed,
            vendor=message.vendor,
            source_event_id=envelope.id,
            occurred_at=message.occurred_at,
            received_at=message.received_at,
        )
    )
    if changed or found.action == keywords.HELP:
        uow.add_outbox(
            Envelope.wrap(
                OptOut(
                    msisdn=msisdn,
                    scope=scope,
                    sender=sender,
                    action=found.action,
                    keyword=found.keyword,
                    source_event_id=envelope.id,
                    occurred_at=message.occurred_at or message.received_at,
                    received_at=message.received_at,
                    vendor=message.vendor,
                    opted_out=currently_out,
                )
            )
        )
