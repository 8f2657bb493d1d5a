"""Opt-out handler on real databases: STOP/START/STOP for both scopes, HELP, history and OptOut events."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.events import Envelope
from processors.db.models import OptOutHistory, OptOutState
from processors.domain.consent import is_opted_out
from processors.handlers.opt_outs import handle_inbound_message
from tests.processors.factories import inbound

SUBSCRIBER = "+447700900123"
OUR_A = "+447700900999"
OUR_B = "+447700900888"


def send(make_uow, *messages, **overrides):
    """Handle inbound messages, one unit of work each; return emitted OptOut payloads."""
    emitted = []
    for message in messages:
        uow = make_uow(**overrides)
        with uow:
            handle_inbound_message(Envelope.wrap(message), uow)
            uow.commit()
        emitted.extend(e.payload for e in uow.published)
    return emitted


def test_stop_start_stop_sender_scope(make_uow, session):
    emitted = send(
        make_uow,
        inbound("STOP", to=OUR_A, n=1),
        inbound("stop", to=OUR_A, n=2),  # repeat: history only
        inbound("START", to=OUR_A, n=3),
        inbound("Stop!", to=OUR_A, n=4),
        inbound("hello there", to=OUR_A, n=5),  # not a keyword: nothing recorded
        opt_out_scope="sender",
    )
    assert [(e.action, e.opted_out, e.scope, e.sender) for e in emitted] == [
        ("opt_out", True, "sender", "447700900999"),
        ("opt_in", False, "sender", "447700900999"),
        ("opt_out", True, "sender", "447700900999"),
    ]
    session.rollback()
    assert is_opted_out(session, SUBSCRIBER, OUR_A, "sender") is True
    assert is_opted_out(session, "447700900123", "447700900999", "sender") is True
    assert is_opted_out(session, SUBSCRIBER, OUR_B, "sender") is False  # another of our numbers
    history = session.scalars(select(OptOutHistory).order_by(OptOutHistory.id)).all()
    assert [(h.action, h.changed) for h in history] == [
        ("opt_out", True), ("opt_out", False), ("opt_in", True), ("opt_out", True),
    ]
    assert len({h.source_event_id for h in history}) == 4
    (state,) = session.scalars(select(OptOutState)).all()
    assert (state.msisdn, state.scope_key, state.opted_out) == ("447700900123", "447700900999", True)
    assert state.source_event_id == history[-1].source_event_id


def test_stop_start_stop_account_scope(make_uow, session):
    emitted = send(
        make_uow,
        inbound("STOP", to=OUR_A, n=1),
        inbound("UNSTOP", to=OUR_B, n=2),  # account-wide: a START to any number opts back in
        inbound("quit", to=OUR_B, n=3),
        opt_out_scope="account",
    )
    assert [(e.action, e.opted_out, e.scope) for e in emitted] == [
        ("opt_out", True, "account"), ("opt_in", False, "account"), ("opt_out", True, "account"),
    ]
    session.rollback()
    assert is_opted_out(session, SUBSCRIBER, OUR_A, "account") is True
    assert is_opted_out(session, SUBSCRIBER, None, "account") is True
    (state,) = session.scalars(select(OptOutState)).all()
    assert state.scope_key == "*"


def test_help_is_recorded_and_emitted_without_state_change(make_uow, session):
    emitted = send(make_uow, inbound("HELP", n=1), inbound("info", n=2))
    assert [(e.action, e.opted_out) for e in emitted] == [("help", False), ("help", False)]
    session.rollback()
    assert session.scalars(select(OptOutState)).all() == []
    assert [h.action for h in session.scalars(select(OptOutHistory))] == ["help", "help"]


@pytest.mark.parametrize("in_sentence", [False, True])
def test_stop_in_a_sentence_counts_only_when_configured(make_uow, session, in_sentence):
    send(make_uow, inbound("can you stop sending these", n=1), opt_out_match_in_sentence=in_sentence)
    session.rollback()
    assert is_opted_out(session, SUBSCRIBER, OUR_A, "sender") is in_sentence


def test_locales_setting_limits_keywords(make_uow, session):
    send(make_uow, inbound("ARRET", n=1), opt_out_locales="en")
    session.rollback()
    assert is_opted_out(session, SUBSCRIBER, OUR_A, "sender") is False
    send(make_uow, inbound("ARRET", n=2), opt_out_locales="en,fr")
    session.rollback()
    assert is_opted_out(session, SUBSCRIBER, OUR_A, "sender") is True
