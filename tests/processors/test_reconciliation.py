"""Reconciliation and sent-message handlers on real databases (SQLite and PostgreSQL), without Kafka."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.events import Envelope, MessageStatus
from processors.db.models import Receipt, SentMessage
from processors.handlers.reconciliation import handle_receipt
from processors.handlers.sent_messages import handle_sent_message
from processors.reports.queries import count_missing_receipts, count_unmatched_receipts
from tests.processors.factories import BASE, at, receipt, sent


def apply(make_uow, *payloads, **overrides):
    """Handle each payload in its own committed unit of work; return the MessageStatus payloads emitted."""
    emitted = []
    for payload in payloads:
        uow = make_uow(**overrides)
        with uow:
            envelope = Envelope.wrap(payload)
            handler = handle_sent_message if envelope.type == "sms.sent_message.v1" else handle_receipt
            handler(envelope, uow)
            uow.commit()
        emitted.extend(e.payload for e in uow.published)
    return emitted


def one_sent(session, vendor, message_id) -> SentMessage:
    session.rollback()  # a fresh snapshot
    return session.scalars(select(SentMessage).filter_by(vendor=vendor, message_id=message_id)).one()


def receipts_of(session, vendor):
    session.rollback()  # a fresh snapshot
    return session.scalars(select(Receipt).filter_by(vendor=vendor).order_by(Receipt.id)).all()


def test_forward_progress_emits_message_status(make_uow, session):
    emitted = apply(
        make_uow,
        sent("twilio", "SMabc"),
        receipt("twilio", "SMABC", "pending", 5),
        receipt("twilio", "smabc", "delivered", 9),
    )
    message = one_sent(session, "twilio", "smabc")
    assert message.status == "delivered"
    assert message.delivered_at == at(9) and message.final_at == at(9)
    assert message.first_receipt_received_at == at(5)
    assert [(e.previous_status, e.status, e.conflict) for e in emitted] == [
        ("submitted", "pending", False),
        ("pending", "delivered", False),
    ]
    assert all(isinstance(e, MessageStatus) for e in emitted)
    assert [r.outcome for r in receipts_of(session, "twilio")] == ["applied", "applied"]


def test_delivered_then_late_pending_stays_delivered(make_uow, session):
    emitted = apply(
        make_uow,
        sent("sinch", "01ARZ3NDEKTSV4RRFFQ69G5FAV:447700900001"),
        receipt("sinch", "01arz3ndektsv4rrffq69g5fav:+447700900001", "delivered", 5),
        receipt("sinch", "01ARZ3NDEKTSV4RRFFQ69G5FAV:447700900001", "pending", 9, vendor_status="Dispatched"),
    )
    message = one_sent(session, "sinch", "01ARZ3NDEKTSV4RRFFQ69G5FAV:447700900001")
    assert message.status == "delivered"
    assert [r.outcome for r in receipts_of(session, "sinch")] == ["applied", "ignored_older"]
    assert len(emitted) == 1


def test_conflicting_finals_keep_first_and_flag(make_uow, session):
    emitted = apply(
        make_uow,
        sent("vonage", "0A00000012345678"),
        receipt("vonage", "0a00000012345678", "delivered", 5),
        receipt("vonage", "0A00000012345678", "failed", 9, vendor_code="5"),
        receipt("vonage", "0A00000012345678", "delivered", 12, vendor_status="DELIVRD"),
    )
    message = one_sent(session, "vonage", "0a00000012345678")
    assert message.status == "delivered" and message.conflict is True
    history = receipts_of(session, "vonage")
    assert [(r.status, r.outcome) for r in history] == [
        ("delivered", "applied"),
        ("failed", "conflict"),
        ("delivered", "duplicate"),
    ]
    assert history[1].raw["vendor_code"] == "5"
    assert [(e.status, e.conflict, e.vendor_code) for e in emitted] == [
        ("delivered", False, None),
        ("delivered", True, "5"),
    ]


def test_receipt_before_sent_is_parked_then_matched_in_order(make_uow, session):
    emitted = apply(
        make_uow,
        receipt("fortytwo", "000123", "delivered", 20),
        receipt("fortytwo", "123", "pending", 10),
    )
    assert emitted == []
    assert [(r.parked, r.outcome, r.sent_message_id) for r in receipts_of(session, "fortytwo")] == [
        (True, "parked", None),
        (True, "parked", None),
    ]
    emitted = apply(make_uow, sent("fortytwo", "0123"))
    message = one_sent(session, "fortytwo", "123")
    assert message.status == "delivered"
    history = receipts_of(session, "fortytwo")
    assert all(not r.parked and r.sent_message_id == message.id for r in history)
    # applied in vendor-time order: the pending (t=10) first, then the delivered (t=20)
    assert [(r.status, r.outcome) for r in history] == [("delivered", "applied"), ("pending", "applied")]
    assert [e.status for e in emitted] == ["pending", "delivered"]


def test_fallback_matching_by_client_ref_and_batch_recipient(make_uow, session):
    apply(
        make_uow,
        sent("mobivate", "aa01", client_ref="order-7"),
        sent("mobivate", "aa02", recipient="+44 7700 900002", batch_id="B1"),
        receipt("mobivate", "unknown-1", "delivered", 5, client_ref="order-7"),
        receipt("mobivate", "unknown-2", "failed", 6, batch_id="B1", recipient="447700900002"),
    )
    assert one_sent(session, "mobivate", "aa01").status == "delivered"
    assert one_sent(session, "mobivate", "aa02").status == "failed"


def test_parked_receipt_matched_by_client_ref_when_sent_arrives(make_uow, session):
    apply(make_uow, receipt("generic", "vendor-side-id", "delivered", 5, client_ref="ref-9"))
    apply(make_uow, sent("generic", "our-id", client_ref="ref-9"))
    assert one_sent(session, "generic", "our-id").status == "delivered"


def test_sinch_summary_report_is_history_only(make_uow, session):
    emitted = apply(
        make_uow,
        sent("sinch", "01ARZ3NDEKTSV4RRFFQ69G5FAV:447700900001"),
        receipt("sinch", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "delivered", 5, count=3, batch_id="01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    )
    assert emitted == []
    (row,) = receipts_of(session, "sinch")
    assert (row.outcome, row.parked, row.count) == ("summary", False, 3)
    assert one_sent(session, "sinch", "01ARZ3NDEKTSV4RRFFQ69G5FAV:447700900001").status == "submitted"


def test_resent_sent_message_updates_details_not_status(make_uow, session):
    apply(make_uow, sent("twilio", "SM1"), receipt("twilio", "SM1", "delivered", 5))
    apply(make_uow, sent("twilio", "SM1", recipient="+447700900077", campaign_id="spring"))
    message = one_sent(session, "twilio", "sm1")
    assert (message.status, message.campaign_id, message.recipient) == ("delivered", "spring", "447700900077")


def test_unmatched_and_missing_counters(make_uow, session):
    apply(
        make_uow,
        sent("twilio", "SMold", sent_at=BASE - timedelta(hours=100)),
        sent("twilio", "SMnew", sent_at=BASE - timedelta(hours=1)),
        sent("fortytwo", "77", sent_at=BASE - timedelta(hours=30)),
        sent("fortytwo", "78", sent_at=BASE - timedelta(hours=30)),
        receipt("fortytwo", "78", "delivered", 1),
        receipt("twilio", "SMnobody", "delivered", -30 * 3600),
        receipt("twilio", "SMnobody2", "delivered", 60),
    )
    settings = make_uow(vendors={"fortytwo": {"missing_receipt_hours": 24}}).settings
    now = BASE + timedelta(minutes=5)
    assert count_missing_receipts(session, settings, now) == {"twilio": 1, "fortytwo": 1}
    assert count_unmatched_receipts(session, settings, now) == 1
    default = make_uow().settings
    assert count_missing_receipts(session, default, now) == {"twilio": 1}


def test_sweep_matches_a_receipt_stranded_by_concurrent_commits(make_uow, session):
    """Both processors committing at once: the send is stored without seeing the parked receipt; the sweep fixes it."""
    from processors.handlers.reconciliation import sweep_parked
    from receiver.vendors import canonical_message_id

    apply(make_uow, receipt("mobivate", "ABC", "delivered", 20))
    payload = sent("mobivate", "abc")
    # what the sent-messages processor leaves when its re-match ran before the receipt's commit was visible
    session.add(SentMessage(vendor="mobivate", message_id=canonical_message_id("mobivate", "abc"),
                            raw_message_id="abc", recipient=payload.recipient, parts=1, sent_at=payload.sent_at,
                            received_at=payload.received_at, status="submitted", conflict=False,
                            source_event_id=Envelope.wrap(payload).id))
    session.commit()
    assert [r.parked for r in receipts_of(session, "mobivate")] == [True]
    uow = make_uow()
    with uow:
        assert sweep_parked(uow) == 1
        uow.commit()
    assert one_sent(session, "mobivate", "abc").status == "delivered"
    assert [(r.parked, r.outcome) for r in receipts_of(session, "mobivate")] == [(False, "applied")]
    assert [e.payload.status for e in uow.published] == ["delivered"]
    uow = make_uow()
    with uow:
        assert sweep_parked(uow) == 0  # nothing left to sweep, nothing applied twice
        uow.commit()


def test_click_sweep_attributes_a_click_stranded_by_concurrent_commits(make_uow, session):
    """A click consumed while its sent message was being committed is attributed by the clicks sweep."""
    from processors.db.models import Click
    from processors.handlers.clicks import handle_click, sweep_unattributed_clicks
    from receiver.vendors import canonical_message_id
    from tests.processors.factories import click

    uow = make_uow()
    with uow:
        handle_click(Envelope.wrap(click("mobivate", "C1")), uow)
        uow.commit()
    payload = sent("mobivate", "c1", campaign_id="spring")
    session.add(SentMessage(vendor="mobivate", message_id=canonical_message_id("mobivate", "c1"),
                            raw_message_id="c1", recipient=payload.recipient, parts=1, sent_at=payload.sent_at,
                            received_at=payload.received_at, status="submitted", conflict=False,
                            campaign_id="spring", source_event_id=Envelope.wrap(payload).id))
    session.commit()
    uow = make_uow()
    with uow:
        assert sweep_unattributed_clicks(uow) == 1
        uow.commit()
    session.rollback()
    [stored] = session.scalars(select(Click)).all()
    assert stored.sent_message_id == one_sent(session, "mobivate", "c1").id and stored.campaign_id == "spring"


def test_settle_looks_up_the_parked_receipts_sent_messages_in_one_query(make_uow, engine, session):
    """A backlog parks receipts before their sends; the settle re-checks them all, and must not pay one sent-message
    query per receipt (it did: 2 statements each, the cost of draining such a backlog)."""
    from sqlalchemy import event

    from processors.handlers.reconciliation import settle_parked

    receipts = [receipt("sinch", f"BATCH{n:03d}", "delivered", 5) for n in range(30)]
    apply(make_uow, *receipts)  # no sent message yet: all parked
    with make_uow() as uow:  # the sends committed without re-matching, as when both commit in the same instant
        uow.session.add_all(SentMessage(vendor="sinch", message_id=f"BATCH{n:03d}", raw_message_id=f"BATCH{n:03d}",
                                        recipient="447700900001", sent_at=at(0), received_at=at(1),
                                        source_event_id=f"e{n}") for n in range(30))
        uow.commit()
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        with make_uow() as uow:
            applied = settle_parked([Envelope.wrap(r) for r in receipts], uow)
            uow.commit()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert applied == 30
    assert [r.outcome for r in receipts_of(session, "sinch")] == ["applied"] * 30
    lookups = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM sent_messages" in s]
    assert len(lookups) == 1, lookups
