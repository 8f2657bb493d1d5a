"""Consent: keep each number's opt-out state and its history, from keywords and vendor refusals alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.events import DeliveryReceipt, Envelope, OptOut, digits_msisdn
from processors.db.models import OptOutHistory, OptOutState
from processors.db.uow import UnitOfWork
from processors.domain import aggregates, keywords

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



KEYWORD = "keyword"



VENDOR = "vendor"



@dataclass(frozen=True)
class ConsentSignal:
    """One consent signal: a keyword the subscriber wrote, or a vendor's refusal that says they opted out."""

    msisdn: str
    sender: str | None
    action: str  # opt_out | opt_in | help
    keyword: str
    source: str  # keyword | vendor
    vendor: str
    source_event_id: str
    received_at: datetime
    occurred_at: datetime | None = None
    text: str | None = None
    evidence: str | None = None



def record_vendor_refusal(
    uow: UnitOfWork, receipt: DeliveryReceipt, event_id: str, recipient: str, sender: str | None
) -> None:
    """A vendor refused a message because the recipient opted out (or blocked us): record that opt-out as evidence.

    Called by reconciliation for receipts whose vendor module set `recipient_opted_out`; the evidence names the
    vendor's code and description, so an audit can tell it from a STOP the subscriber wrote to us.
    """
    code = receipt.vendor_code or "?"
    evidence = f"{receipt.vendor} refused the message {receipt.message_id}: code {code}"
    if receipt.error_description:
        evidence += f" ({receipt.error_description})"
    record_consent(uow, ConsentSignal(
        msisdn=recipient, sender=sender, action=keywords.OPT_OUT, keyword=f"{receipt.vendor}:{code}"[:64],
        source=VENDOR, vendor=receipt.vendor, source_event_id=event_id, received_at=receipt.received_at,
        occurred_at=receipt.occurred_at, evidence=evidence,
    ))



def record_consent(uow: UnitOfWork, signal: ConsentSignal) -> None:
    """Keep the signal as history, change the consent state when it differs, emit an OptOut for changes and help."""
    scope = uow.settings.opt_out_scope
    key = scope_key(scope, signal.sender)
    session = uow.session
    state = session.scalars(
        select(OptOutState).where(OptOutState.msisdn == signal.msisdn, OptOutState.scope_key == key)
    ).first()
    currently_out = bool(state and state.opted_out)
    changed = False
    if signal.action != keywords.HELP:
        wanted = signal.action == keywords.OPT_OUT
        changed = wanted != currently_out  # a repeated STOP (or START while opted in) is history only
        if changed:
            if state is None:
                state = OptOutState(msisdn=signal.msisdn, scope_key=key)
                session.add(state)
            state.opted_out = wanted
            state.updated_at = signal.received_at
            state.last_keyword = signal.keyword
            state.source_event_id = signal.source_event_id
            currently_out = wanted
            aggregates.record_consent_change(uow, signal.vendor, signal.sender, signal.received_at, signal.action)
    session.add(
        OptOutHistory(
            msisdn=signal.msisdn,
            scope=scope,
            scope_key=key,
            sender=signal.sender,
            action=signal.action,
            source=signal.source,
            evidence=signal.evidence,
            keyword=signal.keyword,
            text=signal.text,
            changed=changed,
            vendor=signal.vendor,
            source_event_id=signal.source_event_id,
            occurred_at=signal.occurred_at,
            received_at=signal.received_at,
        )
    )
    if changed or signal.action == keywords.HELP:
        uow.add_outbox(
            Envelope.wrap(
                OptOut(
                    msisdn=signal.msisdn,
                    scope=scope,
                    sender=signal.sender,
                    action=signal.action,
                    keyword=signal.keyword,
                    source_event_id=signal.source_event_id,
                    occurred_at=signal.occurred_at or signal.received_at,
                    received_at=signal.received_at,
                    vendor=signal.vendor,
                    opted_out=currently_out,
                )
            )
        )
