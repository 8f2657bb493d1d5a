"""The two processors that meet on a parked receipt, committing at the same time (SQLite and PostgreSQL).

Reconciliation parks a receipt whose sent message it cannot see; sent-messages stores that sent message and
re-matches the receipts it can see parked. Committing together, each misses the other's row. Each re-checks
after its commit (settle_parked, settle_sent_messages) and row versions keep a receipt from being applied twice.
Clicks and sent messages meet the same way (settle_clicks).
On SQLite writers are serialized (BEGIN IMMEDIATE), so the interleaving itself is only possible on PostgreSQL.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.events import Envelope
from processors.db.aggregate_deltas import TABLES
from processors.db.models import Click, Receipt, SentMessage
from processors.domain.delivery import apply_receipt, prefetch_sent_messages, rematch_parked
from processors.handlers.clicks import handle_click, settle_clicks
from processors.handlers.reconciliation import handle_receipt, settle_parked, sweep_parked
from processors.handlers.sent_messages import handle_sent_message, settle_sent_messages
from processors.reports.aggregates import from_rows, from_tables
from processors.runtime import is_transient
from receiver.vendors import canonical_message_id
from tests.processors.factories import click, receipt, sent
from tests.processors.test_reconciliation import apply, one_sent, receipts_of

MESSAGE_ID = canonical_message_id("sinch", "01abc")


def assert_aggregates_match_rows(engine) -> None:
    """The report aggregates the racing units added to are what the rows they left add up to."""
    with engine.connect() as connection:
        kept = from_tables(connection, "0000-00-00", "9999-99-99")
        computed = from_rows(connection)
    assert {m.__tablename__: kept.rows(m) for m in TABLES} == {m.__tablename__: computed.rows(m) for m in TABLES}


def commit_both_without_seeing_each_other(make_uow, receipt_envelope: Envelope, sent_envelope: Envelope) -> None:
    """Reconciliation parks the receipt and sent-messages stores its sent message in overlapping transactions."""
    reconciliation, sent_messages = make_uow(), make_uow()
    with reconciliation, sent_messages:
        handle_receipt(receipt_envelope, reconciliation)
        reconciliation.flush_queued()  # the parked row exists, uncommitted
        handle_sent_message(sent_envelope, sent_messages)  # sees no parked receipt
        sent_messages.commit()
        reconciliation.commit()


@pytest.mark.parametrize("settler", ["reconciliation", "sent-messages"])
def test_receipt_parked_while_its_sent_message_commits_is_applied_by_the_next_settle(
    make_uow, session, migrated_url, settler, monkeypatch, engine
):
    receipt_envelope = Envelope.wrap(receipt("sinch", "01ABC", "delivered", 20))
    sent_envelope = Envelope.wrap(sent("sinch", "01abc"))
    if migrated_url.startswith("postgresql"):
        commit_both_without_seeing_each_other(make_uow, receipt_envelope, sent_envelope)
    else:  # the same end state: the sent message stored by a re-match that ran before the receipt was there
        apply(make_uow, receipt_envelope.payload)
        with monkeypatch.context() as patched:
            patched.setattr("processors.handlers.sent_messages.rematch_parked", lambda uow, sent: 0)
            apply(make_uow, sent_envelope.payload)
    assert [r.parked for r in receipts_of(session, "sinch")] == [True]
    assert one_sent(session, "sinch", MESSAGE_ID).status == "submitted"

    first, second = (settle_parked, settle_sent_messages)[:: 1 if settler == "reconciliation" else -1]
    envelopes = [receipt_envelope, sent_envelope]
    uow = make_uow()
    with uow:
        assert first(envelopes, uow) == 1
        uow.commit()
    assert [e.payload.status for e in uow.published] == ["delivered"]
    assert one_sent(session, "sinch", MESSAGE_ID).status == "delivered"
    assert [(r.parked, r.outcome) for r in receipts_of(session, "sinch")] == [(False, "applied")]
    for settle in (second, first):  # the other processor's re-check, and a repeat, find nothing left
        with make_uow() as uow:
            assert settle(envelopes, uow) == 0
            uow.commit()
    with make_uow() as uow:
        assert sweep_parked(uow) == 0
    assert_aggregates_match_rows(engine)  # parked +1 by one unit, -1 and delivered +1 by the settle


def test_settles_find_nothing_when_nothing_was_hidden(make_uow):
    """The usual case: every receipt matched or truly unknown; the re-checks apply nothing and emit nothing."""
    envelopes = [Envelope.wrap(p) for p in (sent("twilio", "SM1"), receipt("twilio", "SM1", "delivered", 5),
                                            receipt("twilio", "SMnobody", "failed", 6))]
    apply(make_uow, *(e.payload for e in envelopes))
    for settle in (settle_parked, settle_sent_messages):
        uow = make_uow()
        with uow:
            assert settle(envelopes, uow) == 0
            uow.commit()
        assert uow.published == []


def test_a_receipt_re_matched_twice_at_once_is_applied_once(make_uow, session):
    """Two re-matches of the same parked receipt that both read it before either committed: the second fails."""
    apply(make_uow, receipt("fortytwo", "77", "delivered", 20))
    with make_uow() as uow:  # the sent message, stored by a re-match that saw nothing parked
        uow.session.add(SentMessage(vendor="fortytwo", message_id="77", raw_message_id="77", recipient="447700900001",
                                    sent_at=sent("x", "y").sent_at, received_at=sent("x", "y").received_at,
                                    status="submitted", conflict=False, source_event_id="e-77"))
        uow.commit()
    late = make_uow()
    with late:
        stale_sent = late.session.scalars(select(SentMessage)).one()
        [stale_receipt] = late.session.scalars(select(Receipt)).all()  # read as parked by a concurrent re-match
        late.session.commit()  # ends the read (SQLite's write lock) and keeps the objects, not expired
        early = make_uow()
        with early:
            assert rematch_parked(early, early.session.scalars(select(SentMessage)).one()) == 1
            early.commit()
        with pytest.raises(StaleDataError) as raised:
            apply_receipt(late, stale_sent, stale_receipt)  # what the re-match goes on to do with what it read
            late.commit()
    assert is_transient(raised.value)  # the runtime retries the batch, which then finds nothing parked
    assert one_sent(session, "fortytwo", "77").status == "delivered"
    assert [(r.parked, r.outcome) for r in receipts_of(session, "fortytwo")] == [(False, "applied")]


@pytest.mark.parametrize("settler", ["clicks", "sent-messages"])
def test_click_stored_while_its_sent_message_commits_is_attributed_by_the_next_settle(
    make_uow, session, migrated_url, settler, monkeypatch
):
    click_envelope = Envelope.wrap(click("mobivate", "C9"))
    sent_envelope = Envelope.wrap(sent("mobivate", "c9", campaign_id="autumn"))
    if migrated_url.startswith("postgresql"):
        clicks, sent_messages = make_uow(), make_uow()
        with clicks, sent_messages:
            handle_click(click_envelope, clicks)
            clicks.session.flush()  # the click row exists, uncommitted
            handle_sent_message(sent_envelope, sent_messages)  # its attribution UPDATE cannot see it
            sent_messages.commit()
            clicks.commit()
    else:  # the same end state: the sent message stored by an attribution that ran before the click was there
        with make_uow() as uow:
            handle_click(click_envelope, uow)
            uow.commit()
        with monkeypatch.context() as patched:
            patched.setattr("processors.handlers.sent_messages.attribute_clicks_of", lambda uow, sent: None)
            apply(make_uow, sent_envelope.payload)
    session.rollback()
    assert session.scalars(select(Click.sent_message_id)).all() == [None]

    settle = settle_clicks if settler == "clicks" else settle_sent_messages
    with make_uow() as uow:
        assert settle([click_envelope, sent_envelope], uow) == 1
        uow.commit()
    session.rollback()
    [stored] = session.scalars(select(Click)).all()
    assert (stored.sent_message_id, stored.campaign_id) == (one_sent(session, "mobivate", "c9").id, "autumn")
    for again in (settle_clicks, settle_sent_messages):  # nothing left waiting
        with make_uow() as uow:
            assert again([click_envelope, sent_envelope], uow) == 0


def test_a_late_receipt_and_a_re_match_of_an_earlier_one_never_overwrite_each_other(make_uow, session, engine):
    """Reconciliation applies a new `pending` while sent-messages re-matches the parked `delivered` of the same
    message: whichever reads second must see the other's status, or `delivered` is undone by an older `pending`."""
    stranded = receipt("twilio", "SMrace", "delivered", 20)
    late_pending = Envelope.wrap(receipt("twilio", "SMrace", "pending", 10, vendor_status="ACCEPTED-RETRY"))
    sent_envelope = Envelope.wrap(sent("twilio", "SMrace"))
    apply(make_uow, stranded)
    with pytest.MonkeyPatch.context() as patched:  # the send stored by a re-match that ran before the receipt was there
        patched.setattr("processors.handlers.sent_messages.rematch_parked", lambda uow, sent: 0)
        apply(make_uow, sent_envelope.payload)

    reconciliation = make_uow()
    with reconciliation:
        prefetch_sent_messages([late_pending], reconciliation)  # reads (and locks) the message: submitted
        settled: dict[str, object] = {}

        def settle_meanwhile() -> None:
            try:
                with make_uow() as uow:
                    settled["applied"] = settle_sent_messages([sent_envelope], uow)
                    uow.commit()
            except Exception as error:  # noqa: BLE001 - handed to the test thread
                settled["error"] = error

        other = threading.Thread(target=settle_meanwhile)
        other.start()
        other.join(timeout=1.5)  # without the lock it would commit `delivered` here, before the late pending
        handle_receipt(late_pending, reconciliation)
        reconciliation.commit()
    other.join(timeout=30)
    assert not other.is_alive() and "error" not in settled, settled
    assert settled["applied"] == 1
    message = one_sent(session, "twilio", "smrace")
    assert message.status == "delivered"
    outcomes = {r.vendor_status: r.outcome for r in receipts_of(session, "twilio")}
    assert outcomes == {"DELIVERED": "applied", "ACCEPTED-RETRY": "applied"}
    assert_aggregates_match_rows(engine)  # both units moved the same aggregate row's counts, neither lost


def test_corrected_sends_and_receipts_lock_shared_messages_in_one_order(postgres_url):
    """A batch of corrected sends (B, then A) and a batch of receipts (A and B) overlap. Locked in batch order they
    deadlocked (PostgreSQL aborted one batch after a second); both now lock in (vendor, message id) order, so one
    waits for the other and both commit. Only PostgreSQL: SQLite serializes writers, so they cannot interleave."""
    import sqlalchemy

    from processors.db import upgrade
    from processors.db.engine import make_engine, make_session_factory
    from tests.processors.conftest import FakeUnitOfWork
    from tests.processors.factories import settings_for

    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    watcher = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        def make_uow() -> FakeUnitOfWork:
            return FakeUnitOfWork(make_session_factory(engine), settings_for("127.0.0.1:1", "", postgres_url),
                                  canonical_message_id)

        apply(make_uow, sent("sinch", "aaa"), sent("sinch", "bbb"))
        corrections = [Envelope.wrap(sent("sinch", name, client_ref="corrected")) for name in ("bbb", "aaa")]
        receipts = [Envelope.wrap(receipt("sinch", name, "delivered", 30)) for name in ("aaa", "bbb")]
        outcome: dict[str, object] = {}

        def reconcile() -> None:
            try:
                with make_uow() as uow:
                    prefetch_sent_messages(receipts, uow)
                    for envelope in receipts:
                        handle_receipt(envelope, uow)
                    uow.commit()
                outcome["receipts"] = "committed"
            except Exception as error:  # noqa: BLE001 - handed to the test thread
                outcome["receipts"] = error

        def waiting_for_a_lock() -> int:
            with watcher.connect() as connection:
                return connection.scalar(sqlalchemy.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"))

        sends = make_uow()
        try:
            with sends:
                prefetch_sent_messages(corrections, sends)
                handle_sent_message(corrections[0], sends)  # B
                reconciliation = threading.Thread(target=reconcile)
                reconciliation.start()
                deadline = time.monotonic() + 10
                while not waiting_for_a_lock() and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert waiting_for_a_lock(), "the receipts batch never waited for the sends batch's locks"
                handle_sent_message(corrections[1], sends)  # A: in batch order, the receipts batch held it
                sends.commit()
            outcome["sends"] = "committed"
        except Exception as error:  # noqa: BLE001
            outcome["sends"] = error
        reconciliation.join(timeout=30)
        assert outcome == {"sends": "committed", "receipts": "committed"}, outcome
        with Session(engine) as session:
            rows = session.scalars(select(SentMessage).where(SentMessage.vendor == "sinch")).all()
            assert {(r.message_id, r.client_ref, r.status) for r in rows} == {
                ("AAA", "corrected", "delivered"), ("BBB", "corrected", "delivered")}
    finally:
        watcher.dispose()
        engine.dispose()
